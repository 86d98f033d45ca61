"""The int8 kernel (int8_kernel.py): its hand-serialized model, the probe that keeps an inexact
kernel out, the switch and lazy import, and the matrix unit's products on it against Python
integers (with a one-bit error in the kernel's result showing)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from isa_helpers import setr
from tcc.isa.assembler import assemble
from tcc.isa.encoding import encode_program
from tcc.isa.simulator import Machine, int8_kernel, native
from tcc.isa.simulator.exact_product import exact_product
from tcc.isa.target import load_target


@pytest.mark.parametrize("rank", [2, 3])
def test_the_model_is_what_onnx_helper_makes(rank):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    batch = [f"d{i}" for i in range(rank - 2)]
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B", "Z"], ["Y"])], "int8_product",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, batch + ["M", "K"]),
         helper.make_tensor_value_info("B", TensorProto.INT8, batch + ["K", "N"]),
         helper.make_tensor_value_info("Z", TensorProto.UINT8, [])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, batch + ["M", "N"])])
    expected = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    got = onnx.load_from_string(int8_kernel._model(rank))
    onnx.checker.check_model(got)
    assert got == expected


def saturating_kernel(a: np.ndarray, w: np.ndarray, zp: int) -> np.ndarray:
    """VPMADDUBSW's product (x86 without VNNI): neighbouring u8 * s8 products added into an int16
    with saturation, the pair sums then added in int32; the zero point taken out after."""
    a64, w64 = a.astype(np.int64), w.astype(np.int64)
    if a.shape[-1] % 2:
        a64 = np.concatenate([a64, np.zeros(a.shape[:-1] + (1,), np.int64)], axis=-1)
        w64 = np.concatenate([w64, np.zeros(w.shape[:-2] + (1, w.shape[-1]), np.int64)], axis=-2)
    pairs = a64[..., 0::2, None] * w64[..., None, 0::2, :] + a64[..., 1::2, None] * w64[..., None, 1::2, :]
    total = np.clip(pairs, -2**15, 2**15 - 1).sum(axis=-2)
    return (total - (zp + 128) * w64.sum(axis=-2, keepdims=True)).astype(np.int32)


def exact_kernel(a: np.ndarray, w: np.ndarray, zp: int) -> np.ndarray:
    return np.matmul(a.astype(np.int64) - (zp + 128), w.astype(np.int64)).astype(np.int32)


def test_the_probe_rejects_a_kernel_that_saturates_int16_pairs(monkeypatch):
    monkeypatch.setattr(int8_kernel, "product", exact_kernel)
    assert int8_kernel._probe()
    monkeypatch.setattr(int8_kernel, "product", saturating_kernel)
    assert not int8_kernel._probe()


def test_a_rejected_kernel_leaves_the_products_to_the_float_path(monkeypatch):
    monkeypatch.setattr(int8_kernel, "_exact", False)
    monkeypatch.setattr(int8_kernel, "product", saturating_kernel)
    a = np.full((2, 300), 127, np.int8)
    w = np.full((3, 300), 127, np.int8)
    assert not int8_kernel.usable(300, -128, 128)
    assert exact_product(int8_kernel.biased(a), w, -128, 128).tolist() == [[300 * 255 * 127] * 3] * 2


def test_onnxruntime_is_loaded_only_for_a_product_and_the_switch_turns_the_kernel_off():
    code = ("import sys\nimport tcc.cli, tcc.runtime, tcc.isa.simulator.impl_matrix\n"
            "from tcc.isa.simulator import int8_kernel\n"
            "print('onnxruntime' in sys.modules, int8_kernel.enabled)")
    env = dict(os.environ)
    for switch, expected in (("1", "False True"), ("0", "False False")):
        env["TCC_SIM_INT8"] = switch
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.split() == expected.split()


def gemm(a: np.ndarray, w: np.ndarray, zp: int) -> np.ndarray:
    """(M, K) int8 A against (N, K) int8 weights through one `matmul gemm`: the int32 accumulators."""
    (m, k), n = a.shape, w.shape[0]
    machine = Machine(load_target(), np.zeros(16, np.uint8))
    machine.buffers["abuf"][:a.size] = a.reshape(-1).view(np.uint8)
    machine.buffers["wbuf"][:w.size] = w.reshape(-1).view(np.uint8)
    program = (setr({"mm.m": m, "mm.n": n, "mm.k": k, "mm.a_row": k, "mm.w_row": k, "mm.acc_row": n, "mm.a_zp": zp})
               + "matmul gemm, 0, int8, 0, 0, 0\nhalt\n")
    machine.run(encode_program(assemble(program)))
    return machine.buffers["acc"][:4 * m * n].view("<i4").reshape(m, n)


@pytest.mark.parametrize("enabled", [False, True])
def test_a_gemm_the_kernel_is_chosen_for_sums_exactly(monkeypatch, enabled):
    """64 x 576 x 64 (above int8_kernel.MIN_MACS): the extremes and random values, on each path; a
    one-bit error in the kernel's result shows on the kernel's path.  (The C kernel, native.c mm,
    which takes products up to impl_matrix.NATIVE_MACS where it is built, is off here.)"""
    monkeypatch.setattr(int8_kernel, "enabled", enabled)
    monkeypatch.setattr(native, "enabled", False)
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (64, 576)).astype(np.int8)
    w = rng.integers(-128, 128, (64, 576)).astype(np.int8)
    a[:2], w[:2] = np.array([[-128], [127]], np.int8), np.array([[-128], [127]], np.int8)  # every pairing of extremes
    assert int8_kernel.chosen(64, 576, 64, -128, 128) == (enabled and int8_kernel.usable(576, -128, 128))
    for zp in (-128, 0, 127):
        expected = (a.astype(object) - zp) @ w.T.astype(object)
        assert gemm(a, w, zp).tolist() == expected.tolist()
    real, calls = int8_kernel.product, []
    monkeypatch.setattr(int8_kernel, "product", lambda *args: calls.append(1) or real(*args) ^ 1)
    broken = gemm(a, w, 0)
    assert (broken.tolist() != (a.astype(object) @ w.T.astype(object)).tolist()) == bool(calls)
    assert bool(calls) == int8_kernel.chosen(64, 576, 64, 0, 128)


def test_the_kernel_passes_the_probe_where_the_cpu_has_int8_dot_products():
    """On x86 with VNNI (or AMX int8) onnxruntime's u8s8 kernel accumulates in int32, exact: the probe
    must accept it there (else every product silently takes the slower float path)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split())
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags")
    if not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        pytest.skip("no VNNI: onnxruntime's u8s8 kernel may saturate (the probe decides)")
    pytest.importorskip("onnxruntime")
    assert int8_kernel._probe()


def test_a_weight_int8_does_not_hold_keeps_the_float_path():
    """|w| <= 128 admits +128, which int8 wraps to -128: such weights have no int8 copy."""
    from tcc.isa.simulator.exact_product import Weights

    w = np.full((2, 70), 128, np.int16)
    a = np.full((3, 70), -128, np.int8)
    assert Weights(w, 128).int8_columns() is None
    assert exact_product(int8_kernel.biased(a), Weights(w, 128), 5, 128).tolist() == [[70 * -133 * 128] * 2] * 3
