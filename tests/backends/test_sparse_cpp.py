"""The generated C++ dataflow top (module templates + top.cpp) compiles, and, compiled as a
program, computes the same tokens as the token simulator on real event frames and on light-zoo
networks (ResNet-50, Inception v2, SqueezeNet), its weight ROMs read from the files beside it."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from sparse_helpers import DIGITS, EVENTS, compiled, flatten_fc_cnn, masked, pooling_cnn, squeezenet_small, zoo_small
from tcc.backends.sparse import compile_sparse
from tcc.backends.sparse.hls import emit_cpp
from tcc.backends.sparse.target import DEFAULT_SPARSE_TARGET
from tcc.runtime.sparse_session import SparseSession

U250 = DEFAULT_SPARSE_TARGET.parent / "u250.toml"

GXX = shutil.which("g++")
pytestmark = pytest.mark.skipif(GXX is None, reason="needs g++")
FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", "-pthread"]


def _tokens_text(stream) -> str:
    rows = [" ".join(map(str, [*c, *f])) for c, f in zip(stream.coords, stream.feats)]
    return f"{len(stream)}\n" + "\n".join(rows) + "\n"


def _compare(tmp_path, artifact, session, feeds_list):
    top = emit_cpp(artifact, tmp_path)
    assert "#pragma HLS DATAFLOW" in top.read_text()
    program = tmp_path / "tb"
    subprocess.run([GXX, *FLAGS, "-O0", "-DTCC_TESTBENCH", "-o", str(program), str(top)], check=True,
                   capture_output=True)
    first = artifact.modules[0]["output"]
    for feeds in feeds_list:
        session.run_dict(feeds)
        streams = session.last_result.streams
        printed = subprocess.run([str(program)], input=_tokens_text(streams[first]), capture_output=True, text=True,
                                 check=True, timeout=120, cwd=tmp_path).stdout.splitlines()
        assert printed[0].startswith("stream ")
        expected = streams[printed[0].split()[1]]
        got = np.array([[int(v) for v in line.split()] for line in printed[1:]])
        np.testing.assert_array_equal(got, np.concatenate([expected.coords, expected.feats], axis=1))


@pytest.mark.parametrize("name,mode", [("events", "submanifold"), ("events", "exact"), ("digits", "exact")])
def test_generated_top_runs_like_the_simulator(tmp_path, name, mode):
    artifact, session = compiled(name, mode)
    frames = np.load(EVENTS / "events_test.npz")["input"][[3, 11]] if name == "events" else \
        masked(np.load(DIGITS / "digits_test.npz")["input"][:2], 0.3, seed=1)
    _compare(tmp_path, artifact, session, [{"input": frame[None]} for frame in frames])


def test_generated_squeezenet_top_concat_and_padded_pooling(tmp_path):
    module, name, x = squeezenet_small(tmp_path, size=32)
    artifact = compile_sparse(module, "exact")
    feeds = {name: masked(x, 0.3, seed=2)}
    _compare(tmp_path, artifact, SparseSession(artifact), [feeds])


@pytest.mark.parametrize("mode", ["exact", "submanifold"])
def test_generated_top_average_pools_and_classifier_conv(tmp_path, mode):
    module, name, x = pooling_cnn(tmp_path, mode)
    artifact = compile_sparse(module, mode)
    assert [s["kind"] for s in artifact.modules].count("avgpool") == 2
    _compare(tmp_path, artifact, SparseSession(artifact), [{name: masked(x, 0.3, seed=3)}])


def test_generated_top_fc_on_a_flattened_map(tmp_path):
    module, name, x = flatten_fc_cnn(tmp_path)
    artifact = compile_sparse(module, "exact")
    _compare(tmp_path, artifact, SparseSession(artifact), [{name: masked(x, 0.3, seed=4)}])


@pytest.mark.parametrize("name,size,mode,concats", [("resnet50", 32, "submanifold", 0), ("inception_v2", 32, "exact", 10)])
def test_generated_zoo_top_runs_like_the_simulator(tmp_path, name, size, mode, concats):
    """ResNet-50 (25 M weights: the ROM files keep top.cpp at about a megabyte, so g++ builds it in
    a few hundred MB) and Inception v2 (three- and four-way concats, padded average pools), on the
    U250 budget; small inputs for test time."""
    module, inp, x = zoo_small(tmp_path, name, size, mode)
    artifact = compile_sparse(module, mode, U250)
    assert [s["kind"] for s in artifact.modules].count("concat") == concats
    _compare(tmp_path, artifact, SparseSession(artifact), [{inp: masked(x, 0.2, seed=5)}])
    assert (tmp_path / "top.cpp").stat().st_size < 4 << 20
    assert sum(f.stat().st_size for f in (tmp_path / "weights").iterdir()) > 4 * sum(
        artifact.weights[s["weight"]].size for s in artifact.modules if "weight" in s) // 2


def test_testbench_names_a_missing_or_short_rom_file(tmp_path):
    module, name, x = flatten_fc_cnn(tmp_path)
    artifact = compile_sparse(module, "exact")
    program = _build(tmp_path, artifact)
    # the synthesis form (__SYNTHESIS__: the ROM files #included as initializers) compiles too, with
    # stand-in vendor headers that forward to the shim
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    for header in ("ap_int.h", "hls_stream.h"):
        (vendor / header).write_text(f'#include "{tmp_path / "hls_shim" / header}"\n')
    subprocess.run([GXX, *FLAGS, "-fsyntax-only", "-D__SYNTHESIS__", "-I", str(vendor), str(tmp_path / "top.cpp")],
                   check=True, capture_output=True)
    rom = sorted((tmp_path / "weights").iterdir())[0]
    text = rom.read_text()
    rom.write_text(text[:text.rindex(",", 0, len(text) - 2)] + ",\n")  # one value short
    run = subprocess.run([str(program)], input="0\n", capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert run.returncode == 2 and f"the ROM file weights/{rom.name} holds" in run.stderr
    rom.unlink()
    run = subprocess.run([str(program)], input="0\n", capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert run.returncode == 2 and f"cannot open the ROM file weights/{rom.name}" in run.stderr


def _build(tmp_path, artifact):
    top = emit_cpp(artifact, tmp_path)
    program = tmp_path / "tb"
    subprocess.run([GXX, *FLAGS, "-O1", "-DTCC_TESTBENCH", "-o", str(program), str(top)], check=True,
                   capture_output=True)
    return program


def _run_measured(program, text: str) -> tuple[list[str], int]:
    """(printed lines, peak resident memory in KiB as the testbench reports it) of one run."""
    run = subprocess.run([str(program)], input=text, capture_output=True, text=True, check=True, timeout=300,
                         cwd=program.parent)
    (peak,) = [line for line in run.stderr.splitlines() if line.startswith("peak memory:")]
    return run.stdout.splitlines(), int(peak.split()[2])


def test_memory_stays_flat_from_64x64_to_1024x1024_frames(tmp_path):
    """Line buffers of K rows, bounded FIFOs and a thread per module: the testbench's max RSS on a
    1024 x 1024 frame is that of a 64 x 64 one (the frame itself is never held), and both frames
    give the token simulator's outputs bit for bit."""
    from sparse_helpers import streaming_cnn

    rss = {}
    for size in (64, 1024):
        folder = tmp_path / str(size)
        folder.mkdir()
        module, name, frame = streaming_cnn(folder, size)
        artifact = compile_sparse(module, "submanifold")
        session = SparseSession(artifact)
        session.run_dict({name: frame})
        streams = session.last_result.streams
        text = _tokens_text(streams[artifact.modules[0]["output"]])
        printed, rss[size] = _run_measured(_build(folder, artifact), text)
        expected = streams[printed[0].split()[1]]
        got = np.array([[int(v) for v in line.split()] for line in printed[1:]])
        np.testing.assert_array_equal(got, np.concatenate([expected.coords, expected.feats], axis=1))
        assert len(streams[artifact.modules[0]["output"]]) > size  # a real frame, not a few tokens
    print(f"testbench max RSS: 64x64 {rss[64]} KiB, 1024x1024 {rss[1024]} KiB")
    assert rss[1024] <= rss[64] + 2048  # line buffers grow by K x W x C bytes: tens of KiB here
