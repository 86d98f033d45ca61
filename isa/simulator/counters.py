"""Performance counters per layer: an instruction counts for the value ``sys.layer`` has once it
has executed (so ``setr sys.layer`` itself counts for the new layer).  A layer's cycles run from
its first start to its last end, so pipelined layers may overlap in time.  Busy cycles (those an
instruction occupies its unit, its latency not counted) and stall cycles are per unit and per
instruction, so summed over the layers they give the run's (timing.py)."""
from __future__ import annotations

from .timing import UNIT_NAMES


class LayerCounters:
    """Raw counts of one layer; ``as_dict`` derives cycles and PE utilization."""

    __slots__ = ("first_start", "last_end", "macs", "bytes_loaded", "bytes_stored", "busy", "stall",
                 "instructions")

    def __init__(self):
        self.first_start: int | None = None
        self.last_end = 0
        self.macs = 0
        self.bytes_loaded = 0
        self.bytes_stored = 0
        self.busy = [0] * len(UNIT_NAMES)  # per unit, as timing.UNIT_NAMES
        self.stall = [0] * len(UNIT_NAMES)  # per unit: cycles it waited on a conflict before this layer's instructions
        self.instructions = 0

    def record(self, unit: int, start: int, end: int, occupied: int, stalled: int, macs: int, loaded: int,
               stored: int) -> None:
        if self.first_start is None or start < self.first_start:
            self.first_start = start
        if end > self.last_end:
            self.last_end = end
        self.busy[unit] += occupied
        self.stall[unit] += stalled
        self.macs += macs
        self.bytes_loaded += loaded
        self.bytes_stored += stored

    def as_dict(self, peak_macs_per_cycle: int) -> dict:
        cycles = 0 if self.first_start is None else self.last_end - self.first_start
        out = {
            "cycles": cycles,
            "start": self.first_start or 0,
            "end": self.last_end,
            "instructions": self.instructions,
            "macs": self.macs,
            "bytes_loaded": self.bytes_loaded,
            "bytes_stored": self.bytes_stored,
        }
        out.update({f"{name}_busy": busy for name, busy in zip(UNIT_NAMES, self.busy)})
        out.update({f"{name}_stall": stall for name, stall in zip(UNIT_NAMES, self.stall)})
        out["stall_cycles"] = sum(self.stall)
        out["pe_utilization"] = self.macs / (peak_macs_per_cycle * cycles) if cycles else 0.0
        return out
