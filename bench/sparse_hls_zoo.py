"""The HLS C-simulation of light-zoo networks on the sparse target: `tcc hls` output built with g++
and run on one frame, its tokens compared with the token simulator's, with g++'s and the
testbench's peak memory and times (random weights, U250 budget, 20% of the input sites active).

    python bench/sparse_hls_zoo.py [--models resnet50,densenet121,inception_v2] [--size 32] [-O0]

The tests run ResNet-50 and Inception v2 at 32 x 32 (tests/backends/test_sparse_cpp.py);
DenseNet-121's 247 modules take g++ about half a minute more, so it runs here.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "backends"), str(ROOT / "examples")]
from sparse_helpers import masked, zoo_small  # noqa: E402

from tcc.backends.sparse import compile_sparse  # noqa: E402
from tcc.backends.sparse.hls import emit_cpp  # noqa: E402
from tcc.backends.sparse.target import DEFAULT_SPARSE_TARGET  # noqa: E402
from tcc.runtime.sparse_session import SparseSession  # noqa: E402

MODES = {"resnet50": "submanifold", "densenet121": "submanifold", "inception_v2": "exact"}
FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", "-pthread", "-DTCC_TESTBENCH"]


def peak_kib(stderr: str) -> int:
    """GNU time's '%M' line (max RSS in KiB), the last line of stderr."""
    return int(stderr.strip().splitlines()[-1])


def one(work: Path, name: str, size: int, opt: str) -> str:
    mode = MODES[name]
    start = time.perf_counter()
    module, inp, x = zoo_small(work, name, size, mode)
    artifact = compile_sparse(module, mode, DEFAULT_SPARSE_TARGET.parent / "u250.toml")
    compiled = time.perf_counter() - start
    start = time.perf_counter()
    top = emit_cpp(artifact, work)
    emitted = time.perf_counter() - start
    rom_bytes = sum(f.stat().st_size for f in (work / "weights").iterdir())
    start = time.perf_counter()
    build = subprocess.run(["/usr/bin/time", "-f", "%M", "g++", *FLAGS, opt, "-o", str(work / "tb"), str(top)],
                           capture_output=True, text=True)
    built = time.perf_counter() - start
    if build.returncode:
        return f"  {name}: g++ failed: {build.stderr[-500:]}"
    session = SparseSession(artifact)
    session.run_dict({inp: masked(x, 0.2, seed=5)})
    streams = session.last_result.streams
    first = streams[artifact.modules[0]["output"]]
    text = f"{len(first)}\n" + "".join(" ".join(map(str, [*c, *f])) + "\n" for c, f in zip(first.coords, first.feats))
    start = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-f", "%M", str(work / "tb")], input=text, capture_output=True, text=True,
                         cwd=work)
    ran = time.perf_counter() - start
    printed = run.stdout.splitlines()
    expected = streams[printed[0].split()[1]]
    got = np.array([[int(v) for v in line.split()] for line in printed[1:]])
    equal = got.shape == (len(expected), 2 + expected.channels) and np.array_equal(
        got, np.concatenate([expected.coords, expected.feats], axis=1))
    return (f"  {name} ({mode}, {size} x {size}, {len(artifact.modules)} modules): compiled {compiled:.0f} s, "
            f"tcc hls {emitted:.1f} s (top.cpp {top.stat().st_size / 1e6:.1f} MB, weights/ {rom_bytes / 1e6:.0f} MB); "
            f"g++ {opt} {built:.0f} s, peak {peak_kib(build.stderr) / 1024:.0f} MB; testbench {ran:.1f} s, "
            f"peak {peak_kib(run.stderr) / 1024:.0f} MB; tokens equal to the token simulator: {equal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODES))
    parser.add_argument("--size", type=int, default=32, help="input size (a multiple of 32)")
    parser.add_argument("-O", dest="opt", default="0", help="g++ optimisation level")
    args = parser.parse_args()
    if shutil.which("g++") is None or not Path("/usr/bin/time").exists():
        sys.exit("needs g++ and /usr/bin/time")
    print("== tcc hls C-simulation of light-zoo networks (U250 budget, 20% active input sites)")
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as work:
            print(one(Path(work), name, args.size, f"-O{args.opt}"), flush=True)


if __name__ == "__main__":
    main()
