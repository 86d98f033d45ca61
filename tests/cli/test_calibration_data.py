"""Calibration and input data through the CLI: malformed archives, archives that would not fit in
memory, and non-finite values are each one line naming the file (and input and sample), exit 2."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from npz_cases import bad_files, header_bomb

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DIGITS, CALIB = EXAMPLES / "digits" / "digits_cnn.onnx", EXAMPLES / "digits" / "digits_calib.npz"


def one_line_error(code, out, err):
    assert code == 2 and out == "" and "Traceback" not in err and "RuntimeWarning" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_malformed_calibration_archives(tmp_path, tcc_cli):
    for name, fragment in bad_files(tmp_path).items():
        err = one_line_error(*tcc_cli("compile", DIGITS, "--calib", tmp_path / name))
        assert name in err and fragment in err, (name, err)


@pytest.fixture(scope="module")
def samples():
    with np.load(CALIB) as data:
        return data["input"][:6].copy()


@pytest.mark.parametrize("sample, value, shown", [(3, np.inf, "+Inf"), (4, -np.inf, "-Inf"), (5, np.nan, "NaN")])
def test_a_non_finite_calibration_value_names_input_and_sample(tmp_path, tcc_cli, samples, sample, value, shown):
    data = samples.copy()
    data[sample, 0, 7, 9] = value
    np.savez(tmp_path / "c.npz", input=data)
    err = one_line_error(*tcc_cli("compile", DIGITS, "--calib", tmp_path / "c.npz"))
    assert f"input 'input' sample {sample} holds {shown} (1 of 6 samples are not finite)" in err


def test_all_nan_calibration_is_refused(tmp_path, tcc_cli, samples):
    np.savez(tmp_path / "c.npz", input=np.full_like(samples, np.nan))
    err = one_line_error(*tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", tmp_path / "c.npz",
                                  "-o", tmp_path / "d.tcc"))
    assert "sample 0 holds NaN (6 of 6 samples are not finite)" in err
    assert not (tmp_path / "d.tcc").exists()


def test_values_near_the_float32_limit_name_the_overflowing_tensor(tmp_path, tcc_cli, samples):
    data = samples.copy()
    data[2, 0, :, :] = np.float32(3.0e38)
    np.savez(tmp_path / "c.npz", input=data)
    err = one_line_error(*tcc_cli("compile", DIGITS, "--calib", tmp_path / "c.npz"))
    assert "calibration sample 2: tensor" in err and "overflows float32" in err


def test_a_zip_bomb_is_refused_from_its_headers(tmp_path, tcc_cli):
    bomb = header_bomb(tmp_path / "bomb.npz", (2**22, 1, 16, 16))  # declares 4 GiB of samples
    err = one_line_error(*tcc_cli("compile", DIGITS, "--calib", bomb))
    assert "more than 1073741824 bytes" in err
    code, _, _ = tcc_cli("compile", DIGITS, "-o", tmp_path / "d.tir")
    assert code == 0
    err = one_line_error(*tcc_cli("run", tmp_path / "d.tir", "--inputs", bomb, "-o", tmp_path / "o.npz"))
    assert "key 'input' has shape [4194304, 1, 16, 16] (float32), expected f32[1,1,16,16]" in err
    assert not (tmp_path / "o.npz").exists()


def test_inputs_with_a_key_that_is_no_input(tmp_path, tcc_cli):
    code, _, _ = tcc_cli("compile", DIGITS, "-o", tmp_path / "d.tir")
    assert code == 0
    np.savez(tmp_path / "in.npz", input=np.zeros((1, 1, 16, 16), np.float32), extra=np.zeros(3))
    err = one_line_error(*tcc_cli("run", tmp_path / "d.tir", "--inputs", tmp_path / "in.npz", "-o", tmp_path / "o.npz"))
    assert "key 'extra' is not an input of the model" in err
