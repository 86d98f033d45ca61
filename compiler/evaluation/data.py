"""Evaluation data, read lazily: samples come in contiguous ranges, never the whole set at once.

* ``.npz``: one key per model input (axis 0 indexes samples) and optionally a label key. Each member's
  shape and dtype are read from its ``.npy`` header before any data: an uncompressed member is
  memory-mapped, a compressed one is decompressed as a stream, front to back (a reader keeps its
  position, so consecutive ranges cost one pass over the member).  The data is streamed, so a set
  may be larger than memory; what the header declares is checked before anything is decompressed
  (``_check_declared``): it must be what the archive records for the member and what its compressed
  bytes can hold, one sample at most ``NPZ_LIMIT_BYTES``, and labels (read whole) at most that.
* ``.npy``: the samples of a model with one input, memory-mapped.
* an image folder: one subfolder per class (sorted names are the labels 0..K-1), ImageNet-style
  preprocessing (resize of the shorter side, center crop, mean/std, NCHW or NHWC); needs Pillow.

A sample's array has the input's full shape, or its shape without a leading batch dim of 1
(the calibration files' convention, passes/quantize/calibration.py).
"""
from __future__ import annotations

import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from tcc.ir.errors import TccError
from tcc.ir.npz import NPZ_LIMIT_BYTES, DataFileError, npy_header

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff")


class EvalError(TccError):
    """Bad evaluation data or options (the user's to fix)."""


@dataclass(frozen=True)
class Sample:
    feeds: dict
    label: int | None


# -- one array of an .npz archive ---------------------------------------------------------------
class _Member:
    """Rows of one ``.npy`` member of a zip archive: shape and dtype from its header, data on demand."""

    def __init__(self, path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo):
        self.path, self.info = path, info
        self.key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        self.where = f"{path}: key {self.key!r}"
        try:
            with archive.open(info) as stream:
                self.shape, self.dtype, header_bytes = _npy_header(stream, self.where)
        except _CORRUPT as exc:
            raise EvalError(f"{self.where}: not a .npy array ({exc})") from None
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape, dtype=object)) * self.dtype.itemsize
        self.nbytes = int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize
        _check_declared(self, info, header_bytes)
        self._mapped: np.ndarray | None = None
        if info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb") as f:
                f.seek(info.header_offset)
                local = f.read(30)
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            offset = info.header_offset + 30 + name_len + extra_len + header_bytes
            if offset + self.nbytes > os.path.getsize(path):
                raise EvalError(f"{self.where}: declares {_declared(self)}, past the end of the file (truncated?)")
            self._mapped = np.memmap(path, self.dtype, "r", offset=offset, shape=self.shape)
        self._stream: IO[bytes] | None = None
        self._position = 0

    def rows(self, start: int, stop: int) -> np.ndarray:
        if self._mapped is not None:
            return np.array(self._mapped[start:stop])
        if self._stream is None or start < self._position:
            self._reopen()
        skip = (start - self._position) * self.row_bytes
        want = (stop - start) * self.row_bytes
        try:
            while skip:
                got = len(self._stream.read(min(skip, 1 << 24)))
                if not got:
                    break
                skip -= got
            raw = self._stream.read(want) if not skip else b""
        except _CORRUPT as exc:
            raise EvalError(f"{self.where}: corrupt compressed data at sample {start} ({exc})") from None
        if len(raw) != want:
            raise EvalError(f"{self.where}: the data ends before sample {stop - 1} of the {self.shape[0]} its header "
                            "declares (truncated or damaged archive)")
        self._position = stop
        return np.frombuffer(raw, self.dtype).reshape((stop - start, *self.row_shape)).copy()

    def _reopen(self) -> None:
        self.close()
        self._archive = zipfile.ZipFile(self.path)
        self._stream = self._archive.open(self.info)
        _npy_header(self._stream, str(self.path))
        self._position = 0

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._archive.close()
            self._stream = None


#: What zipfile and zlib raise on a damaged member (a bad CRC is a BadZipFile, bad deflate data zlib.error).
_CORRUPT = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)
#: Deflate's largest expansion: a compressed byte yields at most 1032 (RFC 1951's longest match
#: every bit); a member declaring more than that per compressed byte cannot hold what it declares.
_DEFLATE_MAX_RATIO = 1032


def _declared(member: "_Member") -> str:
    return f"{list(member.shape)} {member.dtype} ({member.nbytes} bytes)"


def _check_declared(member: "_Member", info: zipfile.ZipInfo, header_bytes: int) -> None:
    """Refuse, before any data is decompressed, a member whose ``.npy`` header declares other than
    what the archive records for it, or more than its compressed bytes can hold.  (The size of one
    sample is checked by ``ArrayDataset``, for ``.npy`` files too.)"""
    if header_bytes + member.nbytes != info.file_size:
        raise EvalError(f"{member.where}: the header declares {_declared(member)}, but the archive records "
                        f"{info.file_size - header_bytes} bytes of data for it (damaged or crafted archive)")
    if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
        raise EvalError(f"{member.where}: declares {_declared(member)} in {info.compress_size} compressed bytes, "
                        f"more than deflate can hold (a crafted archive)")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise EvalError(f"{member.where}: compression method {info.compress_type}; tcc eval streams stored or "
                        "deflated members (np.savez, np.savez_compressed)")


def _npy_header(stream, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length in bytes) of the ``.npy`` data in ``stream`` (read by ir/npz.py)."""
    try:
        shape, fortran, dtype, length = npy_header(stream, where)
    except DataFileError as exc:
        raise EvalError(str(exc)) from None
    if fortran and len(shape) > 1:
        raise EvalError(f"{where}: is stored in Fortran order; save it C-contiguous (np.ascontiguousarray)")
    return shape, dtype, length


# -- datasets ----------------------------------------------------------------------------------
class ArrayDataset:
    """Samples from an ``.npz`` (key per input) or an ``.npy`` (one-input models)."""

    def __init__(self, path, inputs: dict[str, tuple[int, ...]], labels: str | None = None):
        self.path = Path(path)
        self.inputs = inputs
        self._members: dict[str, Any] = {}
        self._labels = None
        if not self.path.is_file():
            raise EvalError(f"{path}: no such data file")
        if self.path.suffix == ".npy" or not zipfile.is_zipfile(self.path):
            self._open_npy()
        else:
            self._open_npz()
        for name in self._members:
            shape = self._shape_of(name)
            if not shape:
                raise EvalError(f"{path}: key {name!r} is a scalar; samples go along axis 0 of an array")
            row_bytes = int(np.prod(shape[1:], dtype=object)) * self._members[name].dtype.itemsize
            if row_bytes > NPZ_LIMIT_BYTES:
                raise EvalError(f"{path}: key {name!r}: one sample of {list(shape)} takes {row_bytes} bytes, more "
                                f"than the {NPZ_LIMIT_BYTES} tcc reads at once")
        counts = {name: self._shape_of(name)[0] for name in self._members}
        if len(set(counts.values())) != 1:
            raise EvalError(f"{path}: keys have different sample counts {counts}")
        self.count = next(iter(counts.values()))
        if self.count == 0:
            raise EvalError(f"{path}: holds no samples")
        for name, shape in inputs.items():
            self._row_layout(name, shape)
        if labels is not None:
            self._labels = self._read_labels(labels)

    def _open_npy(self) -> None:
        if len(self.inputs) != 1:
            raise EvalError(f"{self.path}: an .npy holds one array, but the model has inputs "
                            f"{sorted(self.inputs)}; use an .npz with one key per input")
        with open(self.path, "rb") as f:
            magic = f.read(6)
        if magic.startswith(b"PK"):
            raise EvalError(f"{self.path}: damaged or truncated .npz archive (its zip directory is unreadable)")
        if magic != b"\x93NUMPY":
            raise EvalError(f"{self.path}: not an .npy or .npz file (write one with np.save or np.savez)")
        try:
            array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise EvalError(f"{self.path}: not an .npy or .npz file ({exc})") from None
        if array.dtype.hasobject or array.dtype.kind not in "biuf":
            raise EvalError(f"{self.path}: element type {array.dtype} is not numeric")
        self._members[next(iter(self.inputs))] = array

    def _open_npz(self) -> None:
        try:
            archive = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, *_CORRUPT) as exc:
            raise EvalError(f"{self.path}: damaged .npz archive ({exc})") from None
        with archive:
            members = {}
            for info in archive.infolist():
                member = _Member(self.path, archive, info)
                if member.key in members:
                    raise EvalError(f"{member.where} appears twice in the archive")
                members[member.key] = member
        missing = sorted(set(self.inputs) - set(members))
        if missing:
            raise EvalError(f"{self.path}: no samples for input(s) {', '.join(map(repr, missing))}; "
                            f"keys present: {', '.join(map(repr, sorted(members)))}")
        self._members = {name: members[name] for name in self.inputs}
        self._all_members = members

    def _read_labels(self, labels: str) -> np.ndarray:
        members = getattr(self, "_all_members", {})
        if labels in members:
            member = members[labels]
            _check_labels(labels, member.shape, member.dtype, self.count)  # before reading them whole
            values = member.rows(0, member.shape[0])
        elif Path(labels).suffix == ".npy" and Path(labels).is_file():
            try:
                values = np.load(labels, mmap_mode="r", allow_pickle=False)
            except ValueError as exc:
                raise EvalError(f"labels {labels!r}: not a .npy array ({exc})") from None
            _check_labels(labels, values.shape, values.dtype, self.count)
            values = np.array(values)
        else:
            raise EvalError(f"{self.path}: no label key {labels!r} (keys: {', '.join(sorted(members)) or 'none'}), "
                            "and it is not an .npy file")
        return np.asarray(values, np.int64)

    def _shape_of(self, name: str) -> tuple[int, ...]:
        member = self._members[name]
        return tuple(member.shape)

    def _row_layout(self, name: str, full: tuple[int, ...]) -> bool:
        """True when rows need a leading batch dim of 1 added."""
        row = self._shape_of(name)[1:]
        if _matches(row, full):
            return False
        if full and full[0] in (1, -1) and _matches(row, full[1:]):
            return True
        raise EvalError(f"{self.path}: key {name!r} has shape {list(self._shape_of(name))}; expected "
                        f"[N, {', '.join(map(str, full))}] (axis 0 indexes samples)")

    def __len__(self) -> int:
        return self.count

    def read(self, start: int, stop: int) -> list[Sample]:
        columns = {}
        for name, shape in self.inputs.items():
            member = self._members[name]
            rows = member.rows(start, stop) if isinstance(member, _Member) else np.array(member[start:stop])
            if self._row_layout(name, shape):
                rows = rows[:, None]
            columns[name] = rows
        return [Sample({name: rows[i] for name, rows in columns.items()},
                       None if self._labels is None else int(self._labels[start + i]))
                for i in range(stop - start)]


def _check_labels(labels: str, shape: tuple, dtype: np.dtype, count: int) -> None:
    if len(shape) != 1 or dtype.kind not in "iu":
        raise EvalError(f"labels {labels!r}: expected one integer class per sample, got "
                        f"{'a scalar' if not shape else f'{dtype}{list(shape)}'}")
    if shape[0] != count:
        raise EvalError(f"labels {labels!r}: {shape[0]} labels for {count} samples")
    if shape[0] * dtype.itemsize > NPZ_LIMIT_BYTES:
        raise EvalError(f"labels {labels!r}: {shape[0]} labels of {dtype} take more than the {NPZ_LIMIT_BYTES} "
                        "bytes tcc reads at once")


def _matches(shape, pattern) -> bool:
    """``shape`` fits ``pattern``, whose -1 dims (dynamic in the model) take any size."""
    return len(shape) == len(pattern) and all(p in (-1, d) for d, p in zip(shape, pattern))


@dataclass(frozen=True)
class Preprocess:
    """ImageNet-style preprocessing of an image folder (the torchvision recipe by default)."""

    resize: int | None = None  # shorter side; default crop / 0.875
    crop: int | None = None  # default: the input's spatial size
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    layout: str = "nchw"
    scale: float = 1 / 255


class ImageFolderDataset:
    """``root/<class>/<image>``: labels are the sorted class folders' indices."""

    def __init__(self, root, inputs: dict[str, tuple[int, ...]], preprocess: Preprocess = Preprocess()):
        self.root = Path(root)
        if len(inputs) != 1:
            raise EvalError(f"{root}: an image folder feeds one input, but the model has {sorted(inputs)}")
        (self.input, self.shape), = inputs.items()
        if len(self.shape) != 4 or self.shape[0] != 1:
            raise EvalError(f"{root}: input {self.input!r} has shape {list(self.shape)}; an image folder "
                            "needs a [1,C,H,W] (or [1,H,W,C] with --layout nhwc) input")
        if preprocess.layout not in ("nchw", "nhwc"):
            raise EvalError(f"--layout {preprocess.layout!r}: choose nchw or nhwc")
        channels, height, width = (self.shape[1:] if preprocess.layout == "nchw"
                                   else (self.shape[3], self.shape[1], self.shape[2]))
        if channels not in (1, 3):
            raise EvalError(f"{root}: input {self.input!r} has {channels} channels; images give 1 or 3")
        if len(preprocess.mean) not in (1, channels) or len(preprocess.std) not in (1, channels):
            raise EvalError(f"--mean/--std: give 1 or {channels} values")
        self.channels, self.height, self.width = channels, height, width
        self.pre = preprocess
        classes = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
        self.files = [(f, label) for label, c in enumerate(classes)
                      for f in sorted((self.root / c).iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
        if not self.files:
            raise EvalError(f"{root}: no images found (expected one subfolder per class holding "
                            f"{', '.join(IMAGE_SUFFIXES)} files)")
        self.classes = classes

    def __len__(self) -> int:
        return len(self.files)

    def read(self, start: int, stop: int) -> list[Sample]:
        return [Sample({self.input: self._load(path)}, label) for path, label in self.files[start:stop]]

    def _load(self, path: Path) -> np.ndarray:
        try:
            from PIL import Image
        except ImportError:
            raise EvalError("reading an image folder needs Pillow: pip install -e '.[images]'") from None
        crop_h, crop_w = (self.pre.crop, self.pre.crop) if self.pre.crop else (self.height, self.width)
        if (crop_h, crop_w) != (self.height, self.width):
            raise EvalError(f"--crop {self.pre.crop}: the input {self.input!r} takes {self.height}x{self.width}")
        resize = self.pre.resize or round(min(crop_h, crop_w) / 0.875)
        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB" if self.channels == 3 else "L")
                w, h = image.size
                ratio = resize / min(w, h)
                image = image.resize((max(crop_w, round(w * ratio)), max(crop_h, round(h * ratio))),
                                     Image.Resampling.BILINEAR)
                w, h = image.size
                left, top = (w - crop_w) // 2, (h - crop_h) // 2
                pixels: np.ndarray = np.asarray(image.crop((left, top, left + crop_w, top + crop_h)), np.float32)
        except OSError as exc:
            raise EvalError(f"{path}: not a readable image ({exc})") from None
        pixels = pixels.reshape(crop_h, crop_w, self.channels) * np.float32(self.pre.scale)
        pixels = (pixels - np.asarray(self.pre.mean, np.float32)) / np.asarray(self.pre.std, np.float32)
        if self.pre.layout == "nchw":
            pixels = pixels.transpose(2, 0, 1)
        return np.ascontiguousarray(pixels[None], np.float32)


def open_dataset(path, inputs: dict[str, tuple[int, ...]], labels: str | None = None,
                 preprocess: Preprocess | None = None):
    if Path(path).is_dir():
        if labels is not None:
            raise EvalError(f"{path}: an image folder's labels are its class subfolders; drop --labels")
        return ImageFolderDataset(path, inputs, preprocess or Preprocess())
    return ArrayDataset(path, inputs, labels)
