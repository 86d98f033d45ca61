"""write_atomic leaves the file mode a plain open(path, "w") would: new files 0666 minus the umask,
existing files keep theirs; no temporary files stay behind."""
import os
import stat

import pytest

from tcc.ir.fileio import write_atomic


@pytest.fixture
def umask():
    def set_umask(mask):
        previous.append(os.umask(mask))
    previous = []
    yield set_umask
    for mask in reversed(previous):
        os.umask(mask)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_new_files_get_0666_minus_the_umask_like_open(tmp_path, umask, mask):
    umask(mask)
    with open(tmp_path / "plain", "w") as f:
        f.write("x")
    write_atomic(tmp_path / "atomic", "x")
    assert mode(tmp_path / "atomic") == mode(tmp_path / "plain") == 0o666 & ~mask


def test_existing_files_keep_their_mode_like_open(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "out.tir"
    path.write_text("old")
    os.chmod(path, 0o640)
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o640
    assert os.listdir(tmp_path) == ["out.tir"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.tir"
    path.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(path, 123)
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "\ud800")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.tir"]
