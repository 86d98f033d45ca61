"""The target description: array geometry, buffer sizes, DRAM bandwidth and latencies of one core.

A target lives in a TOML file of flat ``key = value`` lines (``isa/targets/tataa.toml`` is the
default); ``load_target`` reads and checks one, ``to_dict``/``from_dict`` embed it in artifacts.
The code generator tiles against the sizes, the simulator bounds-checks and times with them.
"""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tcc.ir.errors import TccError

from .table import DRAM_ADDRESS_BITS, SRAM_ADDRESS_BITS, VALUE_RANGES

DEFAULT_TARGET = Path(__file__).resolve().parent / "targets" / "tataa.toml"

# The range of every numeric field, as data beside the field (``_range``), derived from what the
# ISA can express (isa/table.py): buffers and DRAM as large as an address field reaches, array and
# lane counts as large as an "extent" register holds, latencies as a 32-bit cycle count.
SRAM_ADDRESS_LIMIT = 2 ** SRAM_ADDRESS_BITS
DRAM_ADDRESS_LIMIT = 2 ** DRAM_ADDRESS_BITS
_EXTENT = (1, VALUE_RANGES["extent"][1])
_BUFFER = (1, SRAM_ADDRESS_LIMIT)
_CYCLES = (0, VALUE_RANGES["index"][1])
CLOCK_MHZ = (0.001, 1_000_000)
_QUEUE = (1, 65536)


def target_range(default, bounds: tuple, why: str):
    """A dataclass field with its valid range (checked by ``check_ranges``)."""
    return field(default=default, metadata={"range": bounds, "why": why})


class TargetError(TccError):
    """A target description that cannot be used: missing file, bad TOML, unknown or bad keys."""


@dataclass(frozen=True)
class TargetConfig:
    """One overlay core.  Sizes in bytes, latencies in cycles."""

    name: str = "tataa"
    clock_mhz: float = target_range(225, CLOCK_MHZ, "MHz, 1 kHz to 1 THz")
    # systolic array: an array_rows x array_cols output tile per pass (mm.m / mm.n registers)
    array_rows: int = target_range(32, _EXTENT, "an extent register holds the tile rows")
    array_cols: int = target_range(32, _EXTENT, "an extent register holds the tile columns")
    simd_lanes: int = target_range(128, _EXTENT, "bf16 lanes, an extent register")
    simd_latency: int = target_range(16, _CYCLES, "cycles")
    # elements per cycle of the store-path unit (requant, pool, eadd, emul, lut, copy)
    post_lanes: int = target_range(128, _EXTENT, "elements per cycle, an extent register")
    # TATAA itself has 2 x 16 KB of activations; see targets/tataa.toml
    abuf_bytes: int = target_range(512 * 1024, _BUFFER, "what an SRAM address field reaches")
    wbuf_bytes: int = target_range(512 * 1024, _BUFFER, "what an SRAM address field reaches")
    acc_bytes: int = target_range(256 * 1024, _BUFFER, "what an SRAM address field reaches")
    pbuf_bytes: int = target_range(64 * 1024, _BUFFER, "what an SRAM address field reaches")
    vbuf_bytes: int = target_range(256 * 1024, _BUFFER, "what an SRAM address field reaches")
    # largest addressable DRAM; an artifact allocates its image size
    dram_bytes: int = target_range(1024 ** 3, (1, DRAM_ADDRESS_LIMIT), "what a DRAM address field reaches")
    dram_bytes_per_cycle: int = target_range(64, (1, DRAM_ADDRESS_LIMIT), "bytes per cycle")  # two 256-bit HBM channels; loads and stores share it
    dma_latency: int = target_range(64, _CYCLES, "cycles")
    mode_switch: int = target_range(64, _CYCLES, "cycles")
    # instruction queues between the front end and each unit: entries issued but not yet started
    # (a full queue stalls issue: back-pressure)
    load_queue: int = target_range(8, _QUEUE, "entries, at least one")
    compute_queue: int = target_range(8, _QUEUE, "entries, at least one")
    store_queue: int = target_range(8, _QUEUE, "entries, at least one")
    post_queue: int = target_range(8, _QUEUE, "entries, at least one")
    # cores, each with its own units, buffers and instruction stream, sharing DRAM; the DRAM
    # interface moves at most hbm_bytes_per_cycle for all cores together (each core's load and
    # store units at dram_bytes_per_cycle together)
    cores: int = target_range(1, (1, 64), "cores sharing DRAM, 1..64")
    hbm_bytes_per_cycle: int = target_range(512, (1, DRAM_ADDRESS_LIMIT), "bytes per cycle, all cores together")

    def __post_init__(self):
        _check(self)

    @property
    def peak_macs_per_cycle(self) -> int:
        """int8 MACs per cycle of the full array (the roofline's compute ceiling)."""
        return self.array_rows * self.array_cols

    def queue_depth(self, unit: str) -> int:
        """Entries of the instruction queue in front of a unit (``load``, ``compute``, ``store``, ``post``)."""
        return getattr(self, f"{unit}_queue")

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


def check_ranges(config, error) -> None:
    """Every field of a target dataclass with a ``_range`` lies in it (ints stay ints); ``error``
    is the exception type to raise.  Shared by the overlay and the sparse target descriptions."""
    for f in fields(config):
        value = getattr(config, f.name)
        if "range" not in f.metadata:
            if not isinstance(value, str) or not value:
                raise error(f"{f.name} must be a non-empty string, got {value!r}")
            continue
        lo, hi = f.metadata["range"]
        integral = f.type in (int, "int")
        if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
            raise error(f"{f.name} must be {'an integer' if integral else 'a number'}, got {value!r}")
        if not lo <= value <= hi:
            raise error(f"{f.name} = {value} is out of range: it takes {lo}..{hi} ({f.metadata['why']})")


def _check(t: TargetConfig) -> None:
    check_ranges(t, TargetError)


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
