"""The heterogeneous `.tcc` artifact: device programs and host partitions of one model, in one file.

    offset 0   magic b"TCCHETR\\0"
           8   format version (u32 little-endian)
          12   number of sections n (u32)
          16   n section lengths (u64 each)
    16 + 8n    SHA-256 of every byte after the header (32 bytes)
               sections: metadata (UTF-8 JSON) | whole-model IR text | one section per partition

A device partition's section is a complete overlay artifact (``artifact.py``), a host
partition's the textual IR of its ops, run by the reference interpreter.  The metadata lists
the partitions in execution order with the value names each reads and writes, and the model's
inputs and outputs as (name, value) pairs.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

from tcc.ir.fileio import write_atomic

from .artifact import Artifact, ArtifactError, read_artifact_file

MAGIC = b"TCCHETR\0"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<8sII")
_PART_KEYS = {"kind": str, "inputs": list, "outputs": list, "nodes": list}


@dataclass
class HeteroArtifact:
    metadata: dict
    ir_text: str
    parts: list  # Artifact (device) or str (host IR text), as metadata["partitions"] says

    def to_bytes(self) -> bytes:
        sections = [json.dumps(self.metadata, sort_keys=True, separators=(",", ":")).encode("utf-8"),
                    self.ir_text.encode("utf-8")]
        sections += [p.to_bytes() if isinstance(p, Artifact) else p.encode("utf-8") for p in self.parts]
        return pack_sections(sections)

    def save(self, path) -> None:
        write_atomic(path, self.to_bytes())

    def summary(self) -> str:
        kinds = [p["kind"] for p in self.metadata["partitions"]]
        words = sum(len(p.program) for p in self.parts if isinstance(p, Artifact))
        return (f"{len(kinds)} partitions ({kinds.count('device')} on the device, {kinds.count('host')} on the "
                f"host), {words} instructions")

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "HeteroArtifact":
        sections = unpack_sections(data, source)
        try:
            meta = json.loads(sections[0].decode("utf-8"))
            ir = sections[1].decode("utf-8")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{source}: malformed metadata or IR section ({exc})") from None
        _check_metadata(meta, len(sections) - 2, source)
        parts = []
        for i, (entry, raw) in enumerate(zip(meta["partitions"], sections[2:])):
            if entry["kind"] == "device":
                parts.append(Artifact.from_bytes(raw, f"{source} partition {i}"))
            else:
                try:
                    parts.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    raise ArtifactError(f"{source}: partition {i}: host IR is not UTF-8 text") from None
        return cls(meta, ir, parts)

    @classmethod
    def load(cls, path) -> "HeteroArtifact":
        return cls.from_bytes(read_artifact_file(path), str(path))


def pack_sections(sections: list[bytes]) -> bytes:
    """Header (magic, version, lengths, SHA-256 of the body) followed by the sections."""
    body = b"".join(sections)
    header = _HEAD.pack(MAGIC, FORMAT_VERSION, len(sections))
    return header + struct.pack(f"<{len(sections)}Q", *map(len, sections)) + hashlib.sha256(body).digest() + body


def unpack_sections(data: bytes, source: str) -> list[bytes]:
    """The sections of a heterogeneous artifact, after checking magic, version, lengths and checksum."""
    if len(data) < _HEAD.size or data[:8] != MAGIC:
        raise ArtifactError(f"{source}: not a heterogeneous tcc artifact (no TCCHETR header)")
    _, version, count = _HEAD.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{source}: heterogeneous artifact format version {version}, this tcc reads "
                            f"version {FORMAT_VERSION}; recompile the model with this tcc")
    start = _HEAD.size + 8 * count + 32
    if count < 2 or len(data) < start:
        raise ArtifactError(f"{source}: truncated heterogeneous artifact header")
    lengths = struct.unpack_from(f"<{count}Q", data, _HEAD.size)
    body = data[start:]
    if len(body) != sum(lengths):
        raise ArtifactError(f"{source}: truncated or padded artifact ({len(body)} bytes of sections, "
                            f"the header says {sum(lengths)})")
    if hashlib.sha256(body).digest() != data[start - 32:start]:
        raise ArtifactError(f"{source}: checksum mismatch: the artifact is corrupted")
    sections, at = [], 0
    for n in lengths:
        sections.append(body[at:at + n])
        at += n
    return sections


def _check_metadata(meta, n_parts: int, source: str) -> None:
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
        if entry["kind"] not in ("device", "host"):
            raise bad(f"partition {i}: kind {entry['kind']!r} is not 'device' or 'host'")
        if not all(isinstance(n, str) for n in entry["inputs"] + entry["outputs"]):
            raise bad(f"partition {i}: inputs and outputs must be value names")
