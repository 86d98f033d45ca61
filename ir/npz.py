"""Reading a user's ``.npz`` archive (calibration samples, inputs) without trusting it.

``np.load`` would unpickle object arrays if asked, misreads a lone ``.npy`` or text as "pickled
data", and decompresses a member before anyone can see its shape: a 4 MB archive can hold 4 GiB
of zeros. ``read_npz`` opens the zip itself, reads each member's ``.npy`` header (a few hundred
bytes), lets the caller check the declared shape and dtype against the model, checks the total
against a size cap, and only then decompresses the data.  Every problem is one ``DataFileError``
line naming the file (and the member).
"""
from __future__ import annotations

import tokenize
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import TccError

#: Archives whose arrays would take more than this are refused before anything is decompressed.
NPZ_LIMIT_BYTES = 2**30
_NPY_MAGIC = b"\x93NUMPY"
#: What zipfile and numpy raise on a damaged archive or member (NotImplementedError: an unknown zip
#: version or compression method; zlib.error: corrupt deflate data; RuntimeError: an encrypted member;
#: UnicodeDecodeError, a ValueError: a member name that is not UTF-8).
_CORRUPT = (ValueError, OSError, EOFError, RuntimeError, zipfile.BadZipFile, NotImplementedError, zlib.error)


class DataFileError(TccError):
    """An .npz data file that cannot be read or does not fit the model."""


#: ``check(key, shape, dtype)`` raises DataFileError for a member the caller cannot use, and returns
#: whether to read it (False: a key the caller ignores, never decompressed).
MemberCheck = Callable[[str, tuple[int, ...], np.dtype], bool]


def read_npz(path, what: str = "data file", check: MemberCheck | None = None,
             limit_bytes: int = NPZ_LIMIT_BYTES, error: type[DataFileError] = DataFileError) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` archive at ``path`` by key; ``what`` names the file in errors, which
    are raised as ``error`` (a DataFileError subclass of the caller's layer)."""
    try:
        return _read_npz(Path(path), what, check, limit_bytes)
    except DataFileError as exc:
        raise (exc if isinstance(exc, error) else error(str(exc))) from None


def _read_npz(path: Path, what: str, check: MemberCheck | None, limit_bytes: int) -> dict[str, np.ndarray]:
    head = b""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_NPY_MAGIC))
            archive = zipfile.ZipFile(f) if head else None
            if archive is None:
                raise DataFileError(f"{path}: empty file, not an .npz archive ({what})")
            with archive:
                return _read_members(path, archive, what, check, limit_bytes)
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise DataFileError(f"{path}: is a folder, not an .npz {what}") from None
    except zipfile.BadZipFile:
        if head == _NPY_MAGIC:
            raise DataFileError(f"{path}: a single .npy array, not an .npz archive; save the {what} with "
                                f"np.savez(path, NAME=array) (one key per model input)") from None
        raise DataFileError(f"{path}: not an .npz archive ({what}; write one with np.savez)") from None
    except (ValueError, EOFError, RuntimeError, NotImplementedError, zlib.error) as exc:  # see _CORRUPT
        raise DataFileError(f"{path}: damaged or unsupported .npz archive ({exc})") from None


def _read_members(path: Path, archive: zipfile.ZipFile, what: str, check: MemberCheck | None,
                  limit_bytes: int) -> dict[str, np.ndarray]:
    headers = {}
    total = 0
    for info in archive.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        where = f"{path}: key {key!r}"
        if key in headers:
            raise DataFileError(f"{where} appears twice in the archive")
        shape, dtype = _member_header(archive, info, where)
        if check is not None and not check(key, shape, dtype):
            continue
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        total += nbytes
        if total > limit_bytes:
            raise DataFileError(f"{where}: {list(shape)} {dtype} makes the {what} hold more than "
                                f"{limit_bytes} bytes of arrays; tcc refuses data this large")
        headers[key] = (info, nbytes)
    arrays = {}
    for key, (info, _) in headers.items():
        try:
            with archive.open(info) as member:
                arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
        except _CORRUPT as exc:
            raise DataFileError(f"{path}: key {key!r}: truncated or corrupt array data ({exc})") from None
    return arrays


def _member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a member's .npy header: only its first bytes are decompressed."""
    try:
        with archive.open(info) as member:
            shape, _, dtype, _ = npy_header(member, where)
    except _CORRUPT as exc:
        raise DataFileError(f"{where}: not a .npy array ({exc})") from None
    return shape, dtype


def npy_header(stream, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, Fortran order, dtype, header length in bytes) of the ``.npy`` data at the start of
    ``stream``; a DataFileError unless it is a numeric array (objects would need unpickling)."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        reader = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0,
                  (3, 0): fmt.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran, dtype = reader(stream)
    except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as exc:  # numpy parses the header as Python
        raise DataFileError(f"{where}: not a .npy array ({exc})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataFileError(f"{where}: element type {dtype} is not numeric (tcc reads bool, integer and "
                            f"float arrays; it never unpickles objects)")
    return tuple(int(d) for d in shape), bool(fortran), dtype, stream.tell()
