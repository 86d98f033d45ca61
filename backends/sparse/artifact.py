"""The sparse dataflow artifact: module configuration stream, weights, FIFO graph and IR in one file.

    offset 0   magic b"TCCSPRS\\0"
           8   format version (u32 little-endian)
          12   section lengths: metadata JSON, weights, IR text (3 x u64)
          36   SHA-256 of every byte after the header (32 bytes)
          68   metadata (UTF-8 JSON) | weights (raw little-endian arrays) | IR text

The metadata holds the mode, the target budget, one entry per module (kind, location, shapes,
kernel and stride, quantization parameters, background, parallelism, resources, the cycles the
search expected), the FIFO graph, the host ops and where each weight array lies in the weights
section.  Loading checks magic, version, lengths and checksum before anything else.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tcc.ir.errors import TccError
from tcc.ir.escape import one_line
from tcc.ir.fileio import write_atomic

from ..schema import SchemaError
from .errors import SparseError
from .metadata import check_metadata
from .target import SparseTarget

MAGIC = b"TCCSPRS\0"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sI3Q32s")


class SparseArtifactError(TccError):
    """A sparse artifact that cannot be loaded: wrong magic, another version, truncated, corrupted."""


def _shape_text(shape) -> str:
    return "x".join(str(d) for d in shape)


def _par_text(par: dict) -> str:
    return f"{par['pi']}x{par['po']}" if "pi" in par else str(par["p"])


@dataclass
class SparseArtifact:
    metadata: dict
    weights: dict  # name -> numpy array
    ir_text: str

    # -- bytes -----------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        entries, blob, offset = [], bytearray(), 0
        for name in sorted(self.weights):
            array = np.ascontiguousarray(self.weights[name])
            raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
            entries.append({"name": name, "dtype": array.dtype.str.lstrip("<>|="), "shape": list(array.shape),
                            "offset": offset, "nbytes": len(raw)})
            blob += raw
            offset += len(raw)
        meta = dict(self.metadata, weights=entries)
        meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode("utf-8")
        ir = self.ir_text.encode("utf-8")
        body = meta_bytes + bytes(blob) + ir
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(meta_bytes), len(blob), len(ir),
                              hashlib.sha256(body).digest())
        return header + body

    def save(self, path) -> None:
        write_atomic(path, self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "SparseArtifact":
        if len(data) < _HEADER.size or data[:8] != MAGIC:
            raise SparseArtifactError(f"{source}: not a sparse tcc artifact (no TCCSPRS header); compile one "
                                      f"with `tcc compile MODEL.onnx -t sparse --calib CALIB.npz`")
        _, version, n_meta, n_weights, n_ir, digest = _HEADER.unpack_from(data)
        if version != FORMAT_VERSION:
            raise SparseArtifactError(f"{source}: sparse artifact format version {version}, this tcc reads "
                                      f"version {FORMAT_VERSION}; recompile the model with this tcc")
        body = data[_HEADER.size:]
        if len(body) != n_meta + n_weights + n_ir:
            raise SparseArtifactError(f"{source}: truncated or padded artifact ({len(body)} bytes of sections, "
                                      f"the header says {n_meta + n_weights + n_ir})")
        if hashlib.sha256(body).digest() != digest:
            raise SparseArtifactError(f"{source}: checksum mismatch: the artifact is corrupted")
        try:
            meta = json.loads(body[:n_meta].decode("utf-8"))
            blob = body[n_meta:n_meta + n_weights]
            weights = {}
            for e in meta.pop("weights"):
                if not 0 <= e["offset"] <= e["offset"] + e["nbytes"] <= len(blob):
                    raise ValueError(f"weight {e['name']!r} lies outside the weight section")
                raw = blob[e["offset"]:e["offset"] + e["nbytes"]]
                dtype = np.dtype(e["dtype"]).newbyteorder("<")
                weights[e["name"]] = np.frombuffer(raw, dtype).reshape(e["shape"]).copy()
            ir = body[n_meta + n_weights:].decode("utf-8")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # json.JSONDecodeError is a ValueError; a wrong entry type is a KeyError/TypeError.
            raise SparseArtifactError(f"{source}: malformed metadata, weight or IR section ({type(exc).__name__}: "
                                      f"{exc}); the artifact was not written by tcc or is corrupted") from None
        try:
            check_metadata(meta, weights)
            SparseTarget.from_dict(meta["target"], "target", complete=True)
        except (SchemaError, SparseError) as exc:
            raise SparseArtifactError(f"{source}: malformed artifact metadata: {exc}; recompile the model") from None
        return cls(meta, weights, ir)

    @classmethod
    def load(cls, path) -> "SparseArtifact":
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SparseArtifactError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise SparseArtifactError(f"{path}: is a directory, not an artifact") from None
        return cls.from_bytes(data, str(path))

    # -- text --------------------------------------------------------------------------------------
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
