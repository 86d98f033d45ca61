"""The target description: array geometry, buffer sizes, DRAM bandwidth and latencies of one core.

A target lives in a TOML file of flat ``key = value`` lines (``isa/targets/tataa.toml`` is the
default); ``load_target`` reads and checks one, ``to_dict``/``from_dict`` embed it in artifacts.
The code generator tiles against the sizes, the simulator bounds-checks and times with them.
"""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from tcc.ir.errors import TccError

from .table import BY_MNEMONIC

DEFAULT_TARGET = Path(__file__).resolve().parent / "targets" / "tataa.toml"

# What an instruction word can address: buffer offsets and DRAM addresses are fields of load.
SRAM_ADDRESS_LIMIT = 2 ** next(f.bits for f in BY_MNEMONIC["load"].fields if f.name == "sram")
DRAM_ADDRESS_LIMIT = 2 ** next(f.bits for f in BY_MNEMONIC["load"].fields if f.name == "dram")


class TargetError(TccError):
    """A target description that cannot be used: missing file, bad TOML, unknown or bad keys."""


@dataclass(frozen=True)
class TargetConfig:
    """One overlay core.  Sizes in bytes, latencies in cycles."""

    name: str = "tataa"
    clock_mhz: float = 225
    array_rows: int = 32  # systolic array: an array_rows x array_cols output tile per pass
    array_cols: int = 32
    simd_lanes: int = 128  # bf16 mode
    simd_latency: int = 16
    post_lanes: int = 128  # elements per cycle of the store-path unit (requant, pool, eadd, emul, lut, copy)
    abuf_bytes: int = 512 * 1024  # TATAA itself has 2 x 16 KB of activations; see targets/tataa.toml
    wbuf_bytes: int = 512 * 1024
    acc_bytes: int = 256 * 1024
    pbuf_bytes: int = 64 * 1024
    vbuf_bytes: int = 256 * 1024
    dram_bytes: int = 1024 ** 3  # largest addressable DRAM; an artifact allocates its image size
    dram_bytes_per_cycle: int = 64  # two 256-bit HBM channels
    dma_latency: int = 64
    mode_switch: int = 64

    def __post_init__(self):
        _check(self)

    @property
    def peak_macs_per_cycle(self) -> int:
        """int8 MACs per cycle of the full array (the roofline's compute ceiling)."""
        return self.array_rows * self.array_cols

    def buffer_bytes(self, buffer: str) -> int:
        """Size of an on-chip buffer by its ISA name (``abuf``, ``wbuf``, ``acc``, ``pbuf``, ``vbuf``)."""
        return getattr(self, f"{buffer}_bytes")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "target description") -> "TargetConfig":
        """The config of a dict as ``to_dict`` makes it (every key required, no unknown ones)."""
        if not isinstance(data, dict):
            raise TargetError(f"{source}: expected a table of key = value pairs, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise TargetError(f"{source}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(known)}")
        missing = [k for k in known if k not in data]
        if missing:
            raise TargetError(f"{source}: missing key(s) {', '.join(missing)}")
        try:
            return cls(**data)
        except TargetError as exc:
            raise TargetError(f"{source}: {exc}") from None


_POSITIVE = ("array_rows", "array_cols", "simd_lanes", "post_lanes", "abuf_bytes", "wbuf_bytes", "acc_bytes",
             "pbuf_bytes", "vbuf_bytes", "dram_bytes", "dram_bytes_per_cycle")
_NON_NEGATIVE = ("simd_latency", "dma_latency", "mode_switch")


def _check(t: TargetConfig) -> None:
    if not isinstance(t.name, str) or not t.name:
        raise TargetError(f"name must be a non-empty string, got {t.name!r}")
    if isinstance(t.clock_mhz, bool) or not isinstance(t.clock_mhz, (int, float)) or not t.clock_mhz > 0:
        raise TargetError(f"clock_mhz must be a positive number, got {t.clock_mhz!r}")
    for key in _POSITIVE + _NON_NEGATIVE:
        value = getattr(t, key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TargetError(f"{key} must be an integer, got {value!r}")
        if key in _POSITIVE and value <= 0:
            raise TargetError(f"{key} must be positive, got {value}")
        if value < 0:
            raise TargetError(f"{key} must be non-negative, got {value}")
    for key in ("abuf_bytes", "wbuf_bytes", "acc_bytes", "pbuf_bytes", "vbuf_bytes"):
        if getattr(t, key) > SRAM_ADDRESS_LIMIT:
            raise TargetError(f"{key} = {getattr(t, key)} exceeds the {SRAM_ADDRESS_LIMIT} bytes an "
                              f"instruction's SRAM address field can reach")
    if t.dram_bytes > DRAM_ADDRESS_LIMIT:
        raise TargetError(f"dram_bytes = {t.dram_bytes} exceeds the {DRAM_ADDRESS_LIMIT} bytes an "
                          f"instruction's DRAM address field can reach")


def load_target(path: str | Path | None = None) -> TargetConfig:
    """The target described by the TOML file at ``path`` (None: the default, ``targets/tataa.toml``)."""
    file = DEFAULT_TARGET if path is None else Path(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise TargetError(f"target file {file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"cannot read target file {file}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{file}: not valid TOML: {exc}") from None
    return TargetConfig.from_dict(data, source=str(file))
