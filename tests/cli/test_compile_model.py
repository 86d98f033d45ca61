"""The typed driver: one ``compile_model`` behind the CLI and the Python API, pipelines built from pass
objects (user values never pass through the pipeline syntax), and pass-manager instrumentation."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DIGITS, CALIB = EXAMPLES / "digits" / "digits_cnn.onnx", EXAMPLES / "digits" / "digits_calib.npz"
PASS_SOURCES = Path(__file__).resolve().parents[2] / "passes"


def test_weights_cannot_inject_passes(tmp_path, tcc_cli):
    out = tmp_path / "m.tir"
    out.write_text("old")
    code, stdout, err = tcc_cli("compile", DIGITS, "--calib", CALIB, "--weights", "int8},dce,quantize{calib=x",
                                "-o", out)
    assert code == 2 and stdout == ""
    assert err.startswith("error: unknown weight format 'int8},dce,quantize{calib=x'")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out.read_text() == "old"


def test_calibration_path_may_hold_pipeline_punctuation(tmp_path, tcc_cli):
    """The old string pipeline refused ',' and '}' in --calib; the path is now only a path."""
    folder = tmp_path / "a,b}c{d=e"
    folder.mkdir()
    shutil.copy(CALIB, folder / "calib,x}.npz")
    code, odd, err = tcc_cli("compile", DIGITS, "--calib", folder / "calib,x}.npz")
    assert code == 0, err
    code, plain, _ = tcc_cli("compile", DIGITS, "--calib", CALIB)
    assert code == 0 and odd == plain


def test_compile_model_is_the_cli_flow(tmp_path, tcc_cli):
    """The Python API's artifact is the CLI's, byte for byte; -t ir gives the CLI's IR text."""
    from tcc.backends.overlay import Artifact
    from tcc.driver import CompileOptions, compile_model
    from tcc.ir import Module, print_module

    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "--weights", "int4",
                           "-o", tmp_path / "cli.tcc")
    assert code == 0, err
    artifact = compile_model(DIGITS, "overlay", CompileOptions(calib=str(CALIB), weights="int4"))
    assert isinstance(artifact, Artifact)
    assert artifact.to_bytes() == (tmp_path / "cli.tcc").read_bytes()
    module = compile_model(DIGITS, "ir", CompileOptions(calib=str(CALIB)))
    code, text, _ = tcc_cli("compile", DIGITS, "--calib", CALIB)
    assert isinstance(module, Module) and print_module(module) == text


def recorder():
    """An instrumentation that writes down every hook call."""
    from tcc.passes import PassInstrumentation

    class Recorder(PassInstrumentation):
        def __init__(self):
            self.calls = []

        def before_pipeline(self, module, passes):
            self.calls.append(("pipeline", len(passes)))

        def before_pass(self, p, module):
            self.calls.append(("before", p.name))

        def after_pass(self, p, module):
            self.calls.append(("after", p.name))

        def progress(self, label, done, total):
            self.calls.append(("progress", label, done, total))

    return Recorder()


def test_instrumentation_sees_every_pass_and_the_calibration_progress():
    from tcc.driver import CompileOptions, compile_model, compile_pipeline

    hooks = recorder()
    options = CompileOptions(calib=str(CALIB), instrumentations=[hooks])
    compile_model(DIGITS, "overlay", options)
    names = [p.name for p in compile_pipeline("overlay", options)]
    assert hooks.calls[0] == ("pipeline", len(names))
    around = [c for c in hooks.calls if c[0] in ("before", "after")]
    assert around == [(kind, name) for name in names for kind in ("before", "after")]
    samples = len(np.load(CALIB)["input"])
    calibrating = [c for c in hooks.calls if c[:2] == ("progress", "calibrating")]
    assert calibrating == [("progress", "calibrating", i, samples) for i in range(1, samples + 1)]
    start, end = hooks.calls.index(("before", "quantize")), hooks.calls.index(("after", "quantize"))
    assert all(start < hooks.calls.index(c) < end for c in calibrating)
    backend = [c for c in hooks.calls if c[0] == "progress" and c[1].startswith("compiling")]
    assert backend and backend[-1][2] == backend[-1][3]  # the overlay backend reports to the same hooks


def test_no_pass_draws_on_the_terminal():
    offenders = [str(p.relative_to(PASS_SOURCES)) for p in PASS_SOURCES.rglob("*.py")
                 if "click" in p.read_text() or "isatty" in p.read_text()]
    assert offenders == []


def test_terminal_shows_pass_status_and_progress(tmp_path, tcc_cli, monkeypatch):
    import tcc.cli

    monkeypatch.setattr(tcc.cli, "_stderr_is_tty", lambda: True)
    code, _, err = tcc_cli("compile", DIGITS, "--calib", CALIB, "-t", "overlay", "-o", tmp_path / "d.tcc")
    assert code == 0, err
    total = re.search(r"pass 1/(\d+): fold-constants", err)
    assert total and f"pass {total[1]}/{total[1]}: schedule-modes" in err
    assert "calibrating" in err and "compiling" in err
