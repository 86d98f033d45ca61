"""The sparse target's FPGA budget: DSPs, BRAM36, LUTs and clock, from a TOML file.

``load_sparse_target(None)`` reads the bundled ``zcu102.toml`` (80% of a ZCU102, as ESDA
budgets); ``--target-config FILE`` gives another board.  ``to_dict``/``from_dict`` embed it in
the artifact so the simulator times with the clock the design was sized for.
"""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from tcc.isa.target import CLOCK_MHZ, check_ranges, target_range

from .errors import SparseError

DEFAULT_SPARSE_TARGET = Path(__file__).resolve().parent / "zcu102.toml"


_RESOURCES = (1, 2**31 - 1)


@dataclass(frozen=True)
class SparseTarget:
    name: str = "zcu102-80pct"
    clock_mhz: float = target_range(187.5, CLOCK_MHZ, "MHz, 1 kHz to 1 THz")
    dsp: int = target_range(2016, _RESOURCES, "a count of DSP slices")
    bram36: int = target_range(730, _RESOURCES, "a count of BRAM36 blocks")
    lut: int = target_range(219264, _RESOURCES, "a count of LUTs")
    # a FIFO beat carries p int8 channels as one ap_uint<8p>; Vitis HLS caps ap_uint at 4096 bits
    max_parallelism: int = target_range(32, (1, 512), "channels per FIFO beat, an ap_uint of at most 4096 bits")

    def __post_init__(self):
        try:
            check_ranges(self, SparseError)
        except SparseError as exc:
            raise SparseError(f"sparse target {self.name!r}: {exc}") from None

    @property
    def bram18(self) -> int:
        return 2 * self.bram36

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "sparse target", complete: bool = False) -> "SparseTarget":
        """The target of ``data``; keys it leaves out keep their defaults unless ``complete`` (an
        artifact's embedded target, which ``to_dict`` wrote whole)."""
        if not isinstance(data, dict):
            raise SparseError(f"{source}: expected a table of key = value pairs, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SparseError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        missing = sorted(known - set(data))
        if complete and missing:
            raise SparseError(f"{source}: missing key(s) {', '.join(missing)}")
        try:
            return cls(**data)
        except SparseError as exc:
            raise SparseError(f"{source}: {exc}") from None


def load_sparse_target(path: str | Path | None = None) -> SparseTarget:
    """Read a sparse target TOML (None: the bundled ZCU102 budget)."""
    path = Path(path) if path is not None else DEFAULT_SPARSE_TARGET
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise SparseError(f"{path}: no such sparse target description") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SparseError(f"cannot read sparse target description {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SparseError(f"{path}: not valid TOML: {exc}") from None
    return SparseTarget.from_dict(data, str(path))
