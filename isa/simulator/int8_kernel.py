"""The PE array's sum of products on an int8 kernel: onnxruntime's ``MatMulInteger`` (uint8 x int8).

``(a - zp) @ w`` in int32 for ``a`` holding int8 values, given *biased* (``a + 128`` as uint8, the
operand form this module's callers make: ``biased``), the zero point as ``zp + 128`` and ``w``
(K, N) int8.  A padding position holds ``zp`` (``zp + 128`` biased), so it contributes
``(zp + 128) - (zp + 128) = 0``; this needs zp in int8 range.  Several times faster than the
float32 product (exact_product.py) on the sizes a CNN's layers have: a VNNI / AMX int8 dot product
against float32 FMAs, a quarter of the bytes read, and the result already the int32 the
accumulators hold.

What is proven.  With |w| <= 2**7, ``a + 128`` in [0, 255] and K terms, every sum the kernel
forms -- ``sum (a + 128) * w`` over any subset of the K terms (any order, any blocking), the
zero point's ``(zp + 128) * sum w`` and their difference -- has magnitude at most
``2 * K * 255 * 2**7``.  ``fits`` requires that below 2**31 (K < 32896): an int32 accumulator
(VPDPBUSD, AMX TDPBUSD, int32 adds) then holds each of them exactly, without relying on
wrap-around, and the result is the exact ``(a - zp) @ w`` (which ``int32_fits`` of
exact_product.py then admits too).

What is checked, and why.  The bound does not cover a kernel with a narrower intermediate: on x86
without VNNI, onnxruntime's U8S8 kernel multiplies with VPMADDUBSW, which adds two u8 * s8
products into an int16 *with saturation* (255 * 127 * 2 > 32767), and so is not exact.  Which
kernel runs depends on the CPU (MLAS dispatches on its features once per process) and on the
shape (a matrix-vector path for one row, packing for large ones).  So before the first product
(``usable``) the process runs the kernel on operands that saturate any int16 pair sum (a + 128 =
255 and 0 patterns against w = 127 and -128, the zero point at both ends) and on random ones, in
every shape class the simulator uses (one row, a few rows, many rows; K odd, K a multiple of 64,
K past 1024; N of 1 and odd; the batched form grouped convolutions use), and compares each result
with numpy's float64 product (exact: every partial sum is an integer below 2**53).  If any element
differs, or onnxruntime cannot be loaded, the process keeps the float path (exact_product.py) for
good.  The probe is a check of this process's kernel
on those classes, not a proof for every shape; the float path stays what the int8 path is
compared against (tests/isa/test_exact_product.py runs every extreme on both paths).

``TCC_SIM_INT8=0`` in the environment (or ``enabled = False`` here) forces the float path.
onnxruntime is imported when the first qualifying product is prepared, not before (``tcc --help``
never loads it).  Each product runs on ``THREADS`` threads (one: measured below it).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

enabled = os.environ.get("TCC_SIM_INT8", "1") != "0"
# onnxruntime's intra-op threads for a product.  One: warm runs alternated at load 2-3, ResNet-50
# 118-132 ms on one thread, 138-147 on two (spinning off), 252-281 on two spinning (onnxruntime's
# default: its idle threads spin on the core the simulator's numpy work needs), float path 241-246.
THREADS = 1
# Products of fewer multiply-adds take the float path (a session run costs ~10 us); warm runs with
# 0, 2**16, 2**18, 2**20 differ within the noise but for the small real models (CRNN 16 ms at 0, 10-11 above)
MIN_MACS = 2**18
_BIAS = 128
_INT32 = 2**31
_OUTPUT = ["Y"]  # named: run(None, ...) lists the model's outputs on every call

_sessions: dict[int, Any] = {}  # by operand rank (2: a product, 3: a batch of them)
_exact: bool | None = None  # the probe's verdict, once per process


def fits(k: int, zp: int, w_max: int) -> bool:
    """Whether a product over ``k`` terms with zero point ``zp`` and weights of magnitude at most
    ``w_max`` qualifies: zp in int8 range, weights of at most 2**7 (a weight of +128 still keeps
    the float path: Weights.int8_columns) and every sum the kernel forms within int32 (the
    module's bound)."""
    return -_BIAS <= zp < _BIAS and w_max <= _BIAS and 2 * k * 255 * _BIAS < _INT32


def usable(k: int, zp: int, w_max: int) -> bool:
    """``fits`` and the kernel enabled, loaded and exact on this machine (the probe, run once)."""
    return enabled and fits(k, zp, w_max) and _probed()


def chosen(m: int, k: int, n: int, zp: int, w_max: int) -> bool:
    """Whether an (m, k) x (k, n) product should run here: ``usable`` and large enough to gain."""
    return m * k * n >= MIN_MACS and usable(k, zp, w_max)


def biased(a: np.ndarray) -> np.ndarray:
    """int8 values (any integer dtype holding them) as this module's operand: ``a + 128`` as uint8."""
    return np.bitwise_xor(np.asarray(a).astype(np.int8, copy=False).view(np.uint8), 0x80)


def unbiased(a: np.ndarray) -> np.ndarray:
    """The int8 values of a biased operand."""
    return np.bitwise_xor(a, 0x80).view(np.int8)


def product(a: np.ndarray, w: np.ndarray, zp: int) -> np.ndarray:
    """``(a - zp) @ w`` as int32 for a biased ``a`` (..., M, K) and int8 ``w`` (..., K, N), batch
    dimensions broadcast as numpy's matmul does; the caller has checked ``usable``."""
    session = _sessions.get(a.ndim) or _session(a.ndim)
    return session.run(_OUTPUT, {"A": a, "B": w, "Z": np.array(zp + _BIAS, np.uint8)})[0]


def _probed() -> bool:
    global _exact
    if _exact is None:
        try:
            _exact = _probe()
        except Exception:  # onnxruntime missing or refusing the model: the float path is exact too
            _exact = False
    return _exact


def _probe() -> bool:
    from threadpoolctl import threadpool_limits  # one BLAS thread for the expected values, as in a run (run.py)

    with threadpool_limits(limits=1, user_api="blas"):
        return _probe_products()


def _probe_products() -> bool:
    """The kernel against numpy's product on saturating and random operands (docstring): one product
    per shape class, whose rows are the operand patterns (a + 128 all 255, all 0, 255 / 0 alternating,
    random) and whose columns are the weight patterns (all 127, all -128, 127 / -128 alternating,
    random), so that every pattern meets every other; the zero point -128, 127 and 0 in turn."""
    rng = np.random.default_rng(16)
    shapes = ((1, 2048, 130), (1, 1027, 33), (4, 64, 1), (5, 1151, 17), (7, 2, 64), (64, 576, 64), (130, 1025, 31),
              (40, 4608, 9), (600, 63, 48), (3, 97, 288, 32), (2, 50, 1025, 7))
    for i, shape in enumerate(shapes):
        *batch, m, k, n = shape
        a = rng.integers(0, 256, (*batch, m, k), dtype=np.uint8)
        singles = [a.copy(), a] if m == 1 else [a]  # one row: random, and all 255 (below)
        w = rng.integers(-128, 128, (*batch, k, n), dtype=np.int8)
        alternate = np.arange(k) % 2 == 0
        a_rows = (np.full(k, 255), np.zeros(k), np.where(alternate, 255, 0))
        w_columns = (np.full(k, 127), np.full(k, -128), np.where(alternate, 127, -128))
        for j, row in enumerate(a_rows[:m]):
            a[..., j, :] = row
        for j, column in enumerate(w_columns[:n]):
            w[..., :, j] = column
        for operand in singles:
            zp = (-128, 127, 0)[i % 3]
            got = product(operand, w, zp)
            # the expected value in float64: every partial sum is an integer below 2 * K * 255 * 2**7 < 2**53
            expected = np.matmul(operand.astype(np.float64) - (zp + _BIAS), w.astype(np.float64))
            if got.dtype != np.int32 or not np.array_equal(got, expected):
                return False
    return True


def _session(rank: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # with more than one thread
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(_model(rank), options, providers=["CPUExecutionProvider"])
    _sessions[rank] = session
    return session


def _model(rank: int) -> bytes:
    """The ONNX model ``Y = MatMulInteger(A, B, Z)`` (A uint8, B int8, Z the uint8 scalar zero point of
    A, Y int32; every dimension symbolic), serialized by hand: importing the onnx package takes longer
    than the products it would serve (tests/isa/test_int8_kernel.py checks it equals onnx.helper's)."""
    batch = [f"d{i}" for i in range(rank - 2)]
    graph = (_field(1, _node()) + _field(2, b"int8_product")
             + _field(11, _value("A", 2, batch + ["M", "K"])) + _field(11, _value("B", 3, batch + ["K", "N"]))
             + _field(11, _value("Z", 2, [])) + _field(12, _value("Y", 6, batch + ["M", "N"])))
    opset = _field(1, b"") + _varint_field(2, 13)
    return _varint_field(1, 8) + _field(7, graph) + _field(8, opset)


def _node() -> bytes:
    return (_field(1, b"A") + _field(1, b"B") + _field(1, b"Z") + _field(2, b"Y") + _field(4, b"MatMulInteger"))


def _value(name: str, elem_type: int, dims: list[str]) -> bytes:
    shape = b"".join(_field(1, _field(2, d.encode())) for d in dims)
    tensor = _varint_field(1, elem_type) + _field(2, shape)
    return _field(1, name.encode()) + _field(2, _field(1, tensor))


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
