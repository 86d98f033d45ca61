import os
import sys
from pathlib import Path

# `pytest -n 2` runs one worker per core: BLAS threads on top of that oversubscribe the cores and
# OpenBLAS's spinning threads then slow small matmuls down by 10x or more. Must precede numpy.
if "numpy" not in sys.modules:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import pytest
from hypothesis import settings

# Speed is measured in bench/, not in tests: no hypothesis deadline (under load on 2 shared cores a
# 200 ms deadline failed property tests that were correct).
settings.register_profile("tcc", deadline=None)
settings.load_profile("tcc")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # shared test helpers (overlay_run.py)


@pytest.fixture
def tcc_cli(capsys):
    """Run the `tcc` CLI in-process: returns (exit code, stdout, stderr)."""
    from tcc.cli import main

    def run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite the exact golden files of tests/golden from the current output")
