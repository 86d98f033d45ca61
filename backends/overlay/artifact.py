"""The `.tcc` artifact: one file holding everything needed to run a compiled model.

    offset 0   magic b"TCCARTF\\0"
           8   format version (u32 little-endian)
          12   section lengths: metadata JSON, program words, DRAM image, IR text (4 x u64)
          44   SHA-256 of every byte after the header (32 bytes)
          76   metadata (UTF-8 JSON) | program (u64 little-endian words) | DRAM image | IR text

The metadata holds input/output names, shapes, device addresses and layouts, the target
config, vector-op descriptors and per-layer roofline inputs.  Loading checks magic, version,
lengths and checksum before anything else.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tcc.ir.errors import TccError
from tcc.ir.fileio import write_atomic

from ..schema import NAT, STR, Int, List, Nullable, Record, SchemaError, check

MAGIC = b"TCCARTF\0"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sI4Q32s")


class ArtifactError(TccError):
    """An artifact that cannot be loaded: not a .tcc file, another format version, corrupted."""


@dataclass
class Artifact:
    metadata: dict
    program: np.ndarray  # uint64 words
    dram_image: bytes  # constants; activations follow at metadata["activation_base"]
    ir_text: str

    def to_bytes(self) -> bytes:
        meta = json.dumps(self.metadata, sort_keys=True, separators=(",", ":")).encode("utf-8")
        words = np.ascontiguousarray(self.program, dtype="<u8").tobytes()
        ir = self.ir_text.encode("utf-8")
        body = meta + words + bytes(self.dram_image) + ir
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(meta), len(words) // 8, len(self.dram_image), len(ir),
                              hashlib.sha256(body).digest())
        return header + body

    def save(self, path) -> None:
        write_atomic(path, self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "Artifact":
        if len(data) < _HEADER.size or data[:8] != MAGIC:
            raise ArtifactError(f"{source}: not a tcc artifact (no TCCARTF header); compile one with "
                                f"`tcc compile MODEL.onnx -t overlay`")
        magic, version, n_meta, n_words, n_dram, n_ir, digest = _HEADER.unpack_from(data)
        if version != FORMAT_VERSION:
            raise ArtifactError(f"{source}: artifact format version {version}, this tcc reads version "
                                f"{FORMAT_VERSION}; recompile the model with this tcc")
        body = data[_HEADER.size:]
        expected = n_meta + 8 * n_words + n_dram + n_ir
        if len(body) != expected:
            raise ArtifactError(f"{source}: truncated or padded artifact ({len(body)} bytes of sections, "
                                f"the header says {expected})")
        if hashlib.sha256(body).digest() != digest:
            raise ArtifactError(f"{source}: checksum mismatch: the artifact is corrupted")
        try:
            meta = json.loads(body[:n_meta].decode("utf-8"))
            ir = body[n_meta + 8 * n_words + n_dram:].decode("utf-8")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{source}: malformed metadata or IR section ({exc}); the artifact was not "
                                "written by tcc or is corrupted") from None
        _check_metadata(meta, n_dram, source)
        at = n_meta
        program = np.frombuffer(body[at:at + 8 * n_words], dtype="<u8").astype(np.uint64)
        at += 8 * n_words
        dram = body[at:at + n_dram]
        return cls(meta, program, dram, ir)

    @classmethod
    def load(cls, path) -> "Artifact":
        return cls.from_bytes(read_artifact_file(path), str(path))


def read_artifact_file(path) -> bytes:
    """The bytes of an artifact file; a missing file or a folder is an ArtifactError."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ArtifactError(f"{path}: is a directory, not an artifact") from None


# What the runtime reads from the metadata.  The target's fields are TargetConfig's (checked with
# their ranges when a session opens); a descriptor's are checked when the simulator first uses it.
_IO_ENTRY = Record({"name": STR, "value": STR, "address": NAT, "shape": List(NAT), "dtype": STR,
                    "perm": List(NAT), "boundary_op": Nullable(STR)})
_LAYER = Record({"name": STR, "macs": NAT, "min_bytes": NAT}, optional={"kind": STR, "mode": STR})
METADATA_SCHEMA = Record({"target": Record({}), "inputs": List(_IO_ENTRY),
                          "outputs": List(_IO_ENTRY), "descriptors": List(Record({})), "layers": List(_LAYER),
                          "dram_bytes": NAT, "activation_base": NAT},
                         optional={"model": STR, "format_version": Int()})


def _check_metadata(meta, n_dram: int, source: str) -> None:
    """Refuse metadata the runtime could trip over, with the field that is wrong."""
    def bad(what: str) -> ArtifactError:
        return ArtifactError(f"{source}: malformed artifact metadata: {what}; recompile the model")

    try:
        check(meta, METADATA_SCHEMA)
    except SchemaError as exc:
        raise bad(str(exc)) from None
    if not n_dram <= meta["dram_bytes"] or not 0 <= meta["activation_base"] <= meta["dram_bytes"]:
        raise bad(f"dram_bytes {meta['dram_bytes']} / activation_base {meta['activation_base']} do not fit "
                  f"the {n_dram}-byte DRAM image")
    for group in ("inputs", "outputs"):
        for entry in meta[group]:
            if not entry["address"] <= meta["dram_bytes"]:
                raise bad(f"{group} entry {entry['name']!r}: address {entry['address']} is outside DRAM")
