"""The artifact files the backends write and the runtime loads: one container, three payloads.

Container (every kind)::

    offset 0   magic (8 bytes: b"TCCARTF\\0" overlay, b"TCCSPRS\\0" sparse, b"TCCHETR\\0" heterogeneous)
           8   format version (u32 little-endian)
               heterogeneous only: the number of sections n (u32)
               n section lengths (u64 each; the overlay's program section counts u64 words, not bytes)
               n SHA-256 digests (32 bytes each), one per section
               the sections, in order

Overlay (``Artifact``, n = 4): metadata JSON | program (u64 little-endian words) | DRAM image | IR
text.  The metadata holds input/output names, shapes, device addresses and layouts (``perm``), the
target config and per-layer roofline inputs and live DRAM bytes.

Sparse (``SparseArtifact``, n = 3): metadata JSON | weights (raw little-endian arrays) | IR text.
The metadata holds the mode, the target budget, one entry per module, the FIFO graph, the host ops
and where each weight array lies in the weights section.

Heterogeneous (``HeteroArtifact``, n >= 2): metadata JSON | whole-model IR text | one section per
partition: a complete overlay artifact for a device partition, the textual IR of its ops for a
host one.  The metadata lists the partitions in execution order with the value names each reads
and writes, and the model's inputs and outputs as (name, value) pairs.

Loading checks magic, version, lengths and checksums before anything else; the overlay's IR text,
which only people and the reference interpreter read, is read from the opened file, checked and
decoded when first asked for (``Artifact.ir_text``), so opening a session reads only what the
simulator needs.  This
module imports no backend, so the runtime can load artifacts without the compiler.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import weakref
from dataclasses import dataclass
from typing import BinaryIO, Callable

import numpy as np

from tcc.ir.errors import TccError
from tcc.ir.escape import one_line
from tcc.ir.fileio import write_atomic
from tcc.ir.schema import SchemaError

from .artifact_metadata import check_overlay_metadata, check_sparse_metadata

FORMAT_VERSION = 4  # 4: a checksum per section (the IR is read when asked for); 3: the metadata carries the model-boundary ops (the IR is parsed when asked for); 2: the bf16 vector instructions replaced vop
MAGICS = {"overlay": b"TCCARTF\0", "sparse": b"TCCSPRS\0", "heterogeneous": b"TCCHETR\0"}
# Per kind: the bytes counted by one unit of each stored section length; None: any number of
# sections, counted in the header, lengths in bytes.
_UNITS: dict[str, tuple[int, ...] | None] = {"overlay": (1, 8, 1, 1), "sparse": (1, 1, 1), "heterogeneous": None}
_NAMES = {"overlay": "tcc artifact", "sparse": "sparse tcc artifact", "heterogeneous": "heterogeneous tcc artifact"}
_HOW_TO_COMPILE = {"overlay": "; compile one with `tcc compile MODEL.onnx -t overlay`",
                   "sparse": "; compile one with `tcc compile MODEL.onnx -t sparse --calib CALIB.npz`",
                   "heterogeneous": ""}
_HEAD = struct.Struct("<8sI")


class ArtifactError(TccError):
    """An artifact that cannot be loaded: not a tcc artifact, another format version, corrupted."""


def artifact_kind(path) -> str | None:
    """'overlay', 'sparse', 'heterogeneous', or None when PATH is not a tcc artifact (or cannot be read)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    return next((kind for kind, magic in MAGICS.items() if magic == head), None)


def pack(kind: str, sections: list[bytes]) -> bytes:
    """The container of ``kind`` around ``sections``."""
    units = _UNITS[kind]
    head = _HEAD.pack(MAGICS[kind], FORMAT_VERSION)
    if units is None:
        units = (1,) * len(sections)
        head += struct.pack("<I", len(sections))
    lengths = [len(s) // unit for s, unit in zip(sections, units)]
    digests = b"".join(hashlib.sha256(s).digest() for s in sections)
    return head + struct.pack(f"<{len(lengths)}Q", *lengths) + digests + b"".join(sections)


def unpack(kind: str, data: bytes | memoryview, source: str) -> list[bytes]:
    """The sections of a ``kind`` container, after checking magic, version, lengths and checksums."""
    return [bytes(section) for section in _checked_sections(kind, data, source)]


def _header(kind: str, data: bytes | memoryview, source: str) -> tuple[int, list[int], list[bytes]]:
    """(offset of the first section, section sizes in bytes, their digests) from the container's
    header at the start of ``data`` (which may stop after the header)."""
    if len(data) < _HEAD.size or data[:8] != MAGICS[kind]:
        raise ArtifactError(f"{source}: not a {_NAMES[kind]} (no {MAGICS[kind][:7].decode()} header)"
                            f"{_HOW_TO_COMPILE[kind]}")
    _, version = _HEAD.unpack_from(data)
    if version != FORMAT_VERSION:
        what = _NAMES[kind].replace("tcc artifact", "artifact")
        raise ArtifactError(f"{source}: {what} format version {version}, this tcc reads version "
                            f"{FORMAT_VERSION}; recompile the model with this tcc")
    at, units = _HEAD.size, _UNITS[kind]
    if units is None:
        count = struct.unpack_from("<I", data, at)[0] if len(data) >= at + 4 else 0
        if len(data) < at + 4 + 40 * count:  # before making a tuple of up to 2**32 units
            raise ArtifactError(f"{source}: truncated {_NAMES[kind]} header ({count} sections declared)")
        units, at = (1,) * count, at + 4
    start = at + 40 * len(units)
    if len(data) < start:
        raise ArtifactError(f"{source}: truncated {_NAMES[kind]} header")
    lengths = struct.unpack_from(f"<{len(units)}Q", data, at)
    at += 8 * len(units)
    digests = [bytes(data[at + 32 * i:at + 32 * (i + 1)]) for i in range(len(units))]
    return start, [n * unit for n, unit in zip(lengths, units)], digests


def _sections(kind: str, data: bytes | memoryview, source: str) -> tuple[list[memoryview], list[bytes]]:
    """The sections of a container as views of ``data``, not copies (an artifact can be tens of
    megabytes), with their digests, unchecked (``_check``)."""
    start, sizes, digests = _header(kind, data, source)
    body = memoryview(data)[start:]
    if len(body) != sum(sizes):
        raise ArtifactError(f"{source}: truncated or padded artifact ({len(body)} bytes of sections, "
                            f"the header says {sum(sizes)})")
    sections, at = [], 0
    for size in sizes:
        sections.append(body[at:at + size])
        at += size
    return sections, digests


def _check(section: bytes | memoryview, digest: bytes, source: str) -> None:
    if hashlib.sha256(section).digest() != digest:
        raise ArtifactError(f"{source}: checksum mismatch: the artifact is corrupted")


def _checked_sections(kind: str, data: bytes | memoryview, source: str) -> list[memoryview]:
    sections, digests = _sections(kind, data, source)
    for section, digest in zip(sections, digests):
        _check(section, digest, source)
    return sections


def read_file(path) -> bytes:
    with _open(path) as f:
        return f.read()


def _open(path) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ArtifactError(f"{path}: is a directory, not an artifact") from None


def _json(meta: dict) -> bytes:
    return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode("utf-8")


# -- physical layouts: how device tensors are laid out in DRAM ------------------------------------
def to_physical(array: np.ndarray, perm) -> np.ndarray:
    """The array's elements in physical order (``perm``: logical axes outer-to-inner)."""
    return np.ascontiguousarray(physical_axes(array, perm))


def physical_axes(array: np.ndarray, perm) -> np.ndarray:
    """A view of the array with its axes in physical order: its elements, read in C order, are
    ``to_physical``'s."""
    return np.transpose(array, tuple(perm))


def from_physical(flat: np.ndarray, shape, perm) -> np.ndarray:
    """The logical array of ``shape`` whose elements lie in ``flat`` in physical order."""
    phys = flat.reshape([shape[a] for a in perm])
    return np.ascontiguousarray(np.transpose(phys, np.argsort(perm)))


# -- the overlay artifact -------------------------------------------------------------------------
class Artifact:
    """An overlay artifact: metadata, program words, DRAM image and the quantized IR's text.

    ``ir_text`` may be given as a function making it: a loaded artifact reads its IR section, checks
    its checksum and decodes it only when ``ir_text`` is first asked for.
    """

    def __init__(self, metadata: dict, program: np.ndarray, dram_image: bytes | memoryview,
                 ir_text: str | Callable[[], str]):
        self.metadata = metadata
        self.program = program  # uint64 words
        self.dram_image = dram_image  # constants; activations follow at metadata["activation_base"]
        self._ir_text = ir_text

    @property
    def ir_text(self) -> str:
        if not isinstance(self._ir_text, str):
            self._ir_text = self._ir_text()
        return self._ir_text

    def to_bytes(self) -> bytes:
        words = np.ascontiguousarray(self.program, dtype="<u8").tobytes()
        return pack("overlay", [_json(self.metadata), words, bytes(self.dram_image), self.ir_text.encode("utf-8")])

    def save(self, path) -> None:
        write_atomic(path, self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, source: str = "<bytes>") -> Artifact:
        (meta_bytes, words, dram, ir_bytes), digests = _sections("overlay", data, source)
        return cls._made(source, meta_bytes, words, dram, digests, lambda: ir_bytes)

    @classmethod
    def load(cls, path) -> Artifact:
        """Read everything but the IR section, which is read when asked for from the file as it was
        opened (it may have been removed since; a changed or truncated file fails the checksum)."""
        source = str(path)
        f = _open(path)
        try:
            start, sizes, digests = _header("overlay", f.read(_HEAD.size + 40 * 4), source)
            size = os.fstat(f.fileno()).st_size
            if size - start != sum(sizes):
                raise ArtifactError(f"{source}: truncated or padded artifact ({size - start} bytes of sections, "
                                    f"the header says {sum(sizes)})")
            f.seek(start)
            front = memoryview(f.read(sum(sizes[:3])))
            kept: list[bytes] = []

            def read_ir() -> bytes:
                if not kept:
                    try:
                        kept.append(os.pread(f.fileno(), sizes[3], start + sum(sizes[:3])))
                    finally:
                        f.close()
                return kept[0]

            ends = [sum(sizes[:i + 1]) for i in range(3)]
            artifact = cls._made(source, front[:ends[0]], front[ends[0]:ends[1]], front[ends[1]:], digests, read_ir)
        except BaseException:
            f.close()
            raise
        weakref.finalize(artifact, f.close)
        return artifact

    @classmethod
    def _made(cls, source: str, meta_bytes, words, dram, digests: list[bytes], read_ir) -> Artifact:
        """The artifact of checked metadata, program and DRAM image sections, with an IR text read
        (``read_ir()``), checked and decoded on first use."""
        for section, digest in zip((meta_bytes, words, dram), digests):
            _check(section, digest, source)
        try:
            meta = json.loads(str(meta_bytes, "utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{source}: malformed metadata section ({exc}); the artifact was not "
                                "written by tcc or is corrupted") from None
        _check_metadata(meta, len(dram), source)

        def ir_text() -> str:
            raw = read_ir()
            _check(raw, digests[3], source)
            try:
                return str(raw, "utf-8")
            except UnicodeDecodeError as exc:
                raise ArtifactError(f"{source}: malformed IR section ({exc}); the artifact was not written by "
                                    "tcc or is corrupted") from None

        return cls(meta, np.frombuffer(words, dtype="<u8").astype(np.uint64), dram, ir_text)


def _check_metadata(meta, n_dram: int, source: str) -> None:
    """Refuse metadata the runtime could trip over, with the field that is wrong."""
    try:
        check_overlay_metadata(meta, n_dram)
    except SchemaError as exc:
        raise ArtifactError(f"{source}: malformed artifact metadata: {exc}; recompile the model") from None


# -- the sparse dataflow artifact -----------------------------------------------------------------
def _shape_text(shape) -> str:
    return "x".join(str(d) for d in shape)


def _par_text(par: dict) -> str:
    return f"{par['pi']}x{par['po']}" if "pi" in par else str(par["p"])


@dataclass
class SparseArtifact:
    metadata: dict
    weights: dict  # name -> numpy array
    ir_text: str

    def to_bytes(self) -> bytes:
        entries, blob, offset = [], bytearray(), 0
        for name in sorted(self.weights):
            array = np.ascontiguousarray(self.weights[name])
            raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
            entries.append({"name": name, "dtype": array.dtype.str.lstrip("<>|="), "shape": list(array.shape),
                            "offset": offset, "nbytes": len(raw)})
            blob += raw
            offset += len(raw)
        return pack("sparse", [_json(dict(self.metadata, weights=entries)), bytes(blob), self.ir_text.encode("utf-8")])

    def save(self, path) -> None:
        write_atomic(path, self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, source: str = "<bytes>") -> SparseArtifact:
        meta_bytes, blob, ir_bytes = _checked_sections("sparse", data, source)
        try:
            meta = json.loads(str(meta_bytes, "utf-8"))
            weights = {}
            for e in meta.pop("weights"):
                if not 0 <= e["offset"] <= e["offset"] + e["nbytes"] <= len(blob):
                    raise ValueError(f"weight {e['name']!r} lies outside the weight section")
                raw = blob[e["offset"]:e["offset"] + e["nbytes"]]
                dtype = np.dtype(e["dtype"]).newbyteorder("<")
                weights[e["name"]] = np.frombuffer(raw, dtype).reshape(e["shape"]).copy()
            ir = str(ir_bytes, "utf-8")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # json.JSONDecodeError is a ValueError; a wrong entry type is a KeyError/TypeError.
            raise ArtifactError(f"{source}: malformed metadata, weight or IR section ({type(exc).__name__}: "
                                f"{exc}); the artifact was not written by tcc or is corrupted") from None
        try:
            check_sparse_metadata(meta, weights)
        except SchemaError as exc:
            raise ArtifactError(f"{source}: malformed artifact metadata: {exc}; recompile the model") from None
        return cls(meta, weights, ir)

    @classmethod
    def load(cls, path) -> SparseArtifact:
        return cls.from_bytes(read_file(path), str(path))

    @property
    def modules(self) -> list[dict]:
        return self.metadata["modules"]

    def summary(self) -> str:
        m, t, d = self.metadata, self.metadata["target"], self.metadata["dse"]
        us = d["bottleneck_cycles"] / t["clock_mhz"]
        return (f"{len(m['modules'])} modules ({m['mode']}), {d['dsp']}/{t['dsp']} DSP, "
                f"{d['bram18'] / 2:g}/{t['bram36']} BRAM36, {d['lut']}/{t['lut']} LUT; modeled "
                f"{d['bottleneck_cycles']} cycles per frame at the slowest module ({us:.2f} us at "
                f"{t['clock_mhz']:g} MHz) at calibration density ({m['density_source']})")

    def describe(self) -> str:
        """The module table, the FIFO graph and the totals against the budget."""
        m = self.metadata
        lines = [f"; sparse dataflow design of @{m['module_name']}: mode {m['mode']}, target {m['target']['name']}",
                 f"; {self.summary()}",
                 f"{'module':<16} {'kind':<10} {'in':>10} {'out':>10} {'k/s':>5} {'par':>6} {'DSP':>5} "
                 f"{'BRAM18':>6} {'LUT':>6} {'cycles':>8}  loc"]
        for s in m["modules"]:
            ks = f"{s['kernel']}/{s['stride']}" if "kernel" in s else "-"
            r = s["resources"]
            lines.append(f"{s['name']:<16} {s['kind']:<10} {_shape_text(s['in_shape']):>10} "
                         f"{_shape_text(s['out_shape']):>10} {ks:>5} {_par_text(s['parallelism']):>6} "
                         f"{r['dsp']:>5} {r['bram18']:>6} {r['lut']:>6} {s['expected_cycles']:>8}  {s['loc']}")
        lines.append("; FIFOs (producer -> consumer: stream, width bits, depth tokens)")
        for f in m["fifos"]:
            lines.append(f"{f['src']} -> {f['dst']}: {f['stream']} {f['width_bits']}b x {f['depth']}")
        lines.append(f"; host: {', '.join(m['host_ops'])}")
        return "".join(one_line(line) + "\n" for line in lines)  # names from the model stay one line each


# -- the heterogeneous artifact: device and host partitions of one model ---------------------------
_PART_KEYS = {"kind": str, "inputs": list, "outputs": list, "nodes": list}


@dataclass
class HeteroArtifact:
    metadata: dict
    ir_text: str
    parts: list  # Artifact (device) or str (host IR text), as metadata["partitions"] says

    def to_bytes(self) -> bytes:
        sections = [_json(self.metadata), self.ir_text.encode("utf-8")]
        sections += [p.to_bytes() if isinstance(p, Artifact) else p.encode("utf-8") for p in self.parts]
        return pack("heterogeneous", sections)

    def save(self, path) -> None:
        write_atomic(path, self.to_bytes())

    def summary(self) -> str:
        kinds = [p["kind"] for p in self.metadata["partitions"]]
        words = sum(len(p.program) for p in self.parts if isinstance(p, Artifact))
        return (f"{len(kinds)} partitions ({kinds.count('device')} on the device, {kinds.count('host')} on the "
                f"host), {words} instructions")

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, source: str = "<bytes>") -> HeteroArtifact:
        sections = _checked_sections("heterogeneous", data, source)
        if len(sections) < 2:
            raise ArtifactError(f"{source}: truncated heterogeneous artifact header")
        try:
            meta = json.loads(str(sections[0], "utf-8"))
            ir = str(sections[1], "utf-8")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{source}: malformed metadata or IR section ({exc})") from None
        _check_hetero_metadata(meta, len(sections) - 2, source)
        parts: list = []
        for i, (entry, raw) in enumerate(zip(meta["partitions"], sections[2:])):
            if entry["kind"] == "device":
                parts.append(Artifact.from_bytes(raw, f"{source} partition {i}"))
            else:
                try:
                    parts.append(str(raw, "utf-8"))
                except UnicodeDecodeError:
                    raise ArtifactError(f"{source}: partition {i}: host IR is not UTF-8 text") from None
        return cls(meta, ir, parts)

    @classmethod
    def load(cls, path) -> HeteroArtifact:
        return cls.from_bytes(read_file(path), str(path))


def _check_hetero_metadata(meta, n_parts: int, source: str) -> None:
    def bad(what: str) -> ArtifactError:
        return ArtifactError(f"{source}: malformed artifact metadata: {what}; recompile the model")

    if not isinstance(meta, dict):
        raise bad("expected a JSON object")
    for key in ("inputs", "outputs", "partitions"):
        if not isinstance(meta.get(key), list):
            raise bad(f"{key!r} is missing or not a list")
    for group in ("inputs", "outputs"):
        for entry in meta[group]:
            if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                    and isinstance(entry.get("value"), str)):
                raise bad(f"an entry of {group!r} is not {{'name': str, 'value': str}}")
    if len(meta["partitions"]) != n_parts:
        raise bad(f"{len(meta['partitions'])} partitions listed, {n_parts} stored")
    for i, entry in enumerate(meta["partitions"]):
        if not isinstance(entry, dict):
            raise bad(f"partition {i} is not an object")
        for key, kind in _PART_KEYS.items():
            if not isinstance(entry.get(key), kind):
                raise bad(f"partition {i}: {key!r} is missing or not a {kind.__name__}")
        if entry.get("graph", "ir") not in ("ir", "onnx") or (entry.get("graph") == "onnx" and entry["kind"] != "host"):
            raise bad(f"partition {i}: graph {entry.get('graph')!r} is not 'ir', or 'onnx' on the host")
        if entry["kind"] not in ("device", "host"):
            raise bad(f"partition {i}: kind {entry['kind']!r} is not 'device' or 'host'")
        if not all(isinstance(n, str) for n in entry["inputs"] + entry["outputs"]):
            raise bad(f"partition {i}: inputs and outputs must be value names")
