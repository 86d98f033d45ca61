"""Malformed and oversized .npz files, shared by the loader's and the CLI's tests."""
from __future__ import annotations

import io
import zipfile

import numpy as np


def header_bomb(path, shape, key="input", dtype="<f4"):
    """A compressed .npz whose member declares ``shape`` but holds only its header and 1 MiB of zeros:
    the loader must refuse it from the header alone (a real bomb compresses 4 GiB into 4 MB)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{key}.npy", header.getvalue() + bytes(1 << 20))
    return path


def bad_files(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npy").rename(tmp_path / "npy_as.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("input = [1, 2, 3]\n")
    (tmp_path / "random.npz").write_bytes(np.random.default_rng(0).bytes(4096))
    np.savez(tmp_path / "objects.npz", input=np.array([{"a": 1}, None], dtype=object))
    np.savez(tmp_path / "strings.npz", input=np.array(["a", "b"]))
    np.savez(tmp_path / "good.npz", input=np.zeros((64, 64), np.float32))
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(tmp_path / "short_member.npz", "w") as archive:  # 16 digits samples declared, 8 bytes follow
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (16, 1, 16, 16)})
        archive.writestr("input.npy", header.getvalue() + bytes(8))
    with zipfile.ZipFile(tmp_path / "not_npy.npz", "w") as archive:
        archive.writestr("input.npy", b"this is no array")
    return BAD_FILES


#: The files ``bad_files`` writes, each with a fragment of the loader's one-line message.
BAD_FILES = {
        "npy_as.npz": "a single .npy array, not an .npz archive",
        "empty.npz": "empty file, not an .npz archive",
        "text.npz": "not an .npz archive",
        "random.npz": "not an .npz archive",
        "objects.npz": "element type object is not numeric",
        "strings.npz": "is not numeric",
        "truncated.npz": "not an .npz archive",
        "short_member.npz": "truncated or corrupt array data",
        "not_npy.npz": "key 'input': not a .npy array",
        "absent.npz": "no such calibration file",
}
