"""The sparse target's FPGA budget: DSPs, BRAM36, LUTs and clock, from a TOML file.

``load_sparse_target(None)`` reads the bundled ``zcu102.toml`` (80% of a ZCU102, as ESDA
budgets); ``--target-config FILE`` gives another board.  ``to_dict``/``from_dict`` embed it in
the artifact so the simulator times with the clock the design was sized for.
"""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .errors import SparseError

DEFAULT_SPARSE_TARGET = Path(__file__).resolve().parent / "zcu102.toml"


@dataclass(frozen=True)
class SparseTarget:
    name: str = "zcu102-80pct"
    clock_mhz: float = 187.5
    dsp: int = 2016
    bram36: int = 730
    lut: int = 219264
    max_parallelism: int = 32

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "name" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                     or value <= 0):
                raise SparseError(f"sparse target {self.name!r}: {f.name} must be a positive number, "
                                  f"got {value!r}")

    @property
    def bram18(self) -> int:
        return 2 * self.bram36

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "sparse target") -> "SparseTarget":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SparseError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)


def load_sparse_target(path: str | Path | None = None) -> SparseTarget:
    """Read a sparse target TOML (None: the bundled ZCU102 budget)."""
    path = Path(path) if path is not None else DEFAULT_SPARSE_TARGET
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SparseError(f"{path}: no such sparse target description") from None
    except tomllib.TOMLDecodeError as exc:
        raise SparseError(f"{path}: not valid TOML: {exc}") from None
    return SparseTarget.from_dict(data, str(path))
