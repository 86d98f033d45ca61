"""ir/npz.py: a user's .npz is read member by member, each header checked before its data is
decompressed; every malformed file is one DataFileError line naming it."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from npz_cases import bad_files, header_bomb

from tcc.ir.npz import DataFileError, read_npz


def test_reads_plain_and_compressed_archives(tmp_path):
    a, b = np.arange(12, dtype=np.float32).reshape(3, 4), np.array([True, False])
    np.savez(tmp_path / "plain.npz", a=a, b=b)
    np.savez_compressed(tmp_path / "packed.npz", a=a, b=b)
    for name in ("plain.npz", "packed.npz"):
        got = read_npz(tmp_path / name)
        assert sorted(got) == ["a", "b"]
        np.testing.assert_array_equal(got["a"], a)
        np.testing.assert_array_equal(got["b"], b)


def test_each_malformed_file_is_one_line_naming_it(tmp_path):
    for name, fragment in bad_files(tmp_path).items():
        with pytest.raises(DataFileError) as info:
            read_npz(tmp_path / name, "calibration file")
        message = str(info.value)
        assert message.startswith(str(tmp_path / name)) and fragment in message, (name, message)
        assert "\n" not in message and "allow_pickle" not in message


def test_declared_size_is_refused_before_decompressing(tmp_path):
    bomb = header_bomb(tmp_path / "bomb.npz", (2**22, 1, 16, 16))  # 4 GiB of float32 declared
    with pytest.raises(DataFileError, match=r"key 'input': \[4194304, 1, 16, 16\] float32 .* more than"):
        read_npz(bomb)
    seen = []

    def check(key, shape, dtype):
        seen.append((key, shape, dtype))
        raise DataFileError(f"{key}: shape {list(shape)} does not fit")

    with pytest.raises(DataFileError, match=r"shape \[4194304, 1, 16, 16\] does not fit"):
        read_npz(bomb, check=check, limit_bytes=2**40)
    assert seen == [("input", (2**22, 1, 16, 16), np.dtype("<f4"))]


def test_a_member_the_check_declines_is_never_read(tmp_path):
    np.savez(tmp_path / "two.npz", wanted=np.ones(3, np.float32))
    header_bomb(tmp_path / "bomb.npz", (2**30,), key="other")
    with zipfile.ZipFile(tmp_path / "two.npz", "a") as archive, zipfile.ZipFile(tmp_path / "bomb.npz") as bomb:
        archive.writestr("other.npy", bomb.read("other.npy"))
    got = read_npz(tmp_path / "two.npz", check=lambda key, shape, dtype: key == "wanted")
    assert list(got) == ["wanted"]
