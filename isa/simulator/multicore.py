"""Several overlay cores sharing DRAM: ``run_cores(target, dram, words, entries)``, or a
``Multicore(target, dram)`` kept to run the same program again.

Each core has its own units, buffers, registers and instruction stream (``words[entries[c]:
entries[c + 1]]``, each ending in ``halt``) and shares the DRAM array.  ``barrier`` drains a
core's units and stops it until every core has reached its barrier of the same count; all then
resume together.  So a run is a sequence of segments between barriers: within one, each core
runs its own stream on its own cycle model (timing.py) from idle units, and the segment lasts
as long as the slowest core, and no less than the bytes all cores moved through DRAM divided by
the target's ``hbm_bytes_per_cycle`` (the shared DRAM interface; each core's load and store
units move at most ``dram_bytes_per_cycle`` together).  Execution is functional and core after core
within a segment: the compiler gives cores disjoint outputs between barriers, so the order does
not change any byte.

Counters: ``units``, ``unit_cycles``, ``front_cycles`` and ``mode_cycles`` are summed over the
cores, so each split adds up to ``cores * cycles`` (a core waiting at a barrier is idle, its
front end in sync stall); per-layer counters span all cores.
"""
from __future__ import annotations

import numpy as np

from ..encoding import decode
from ..errors import SimulatorTrap
from ..target import TargetConfig
from .run import Machine, RunResult


class Core(Machine):
    """One core of a multi-core run: its registers and mode carry over from one segment to the
    next (a barrier resets nothing); DRAM is the shared array."""

    plans_kept = 1 << 20  # every segment of the core's stream stays prepared

    def __init__(self, target: TargetConfig, dram: np.ndarray):
        """``dram``: the shared (N, bytes) DRAM of a batch of N samples (the core's buffers get N rows too)."""
        self._started = False
        super().__init__(target, np.zeros((dram.shape[0], 0), np.uint8))
        self.memories[-1] = dram
        self._rows()
        self.stop_at_barrier = True

    def restart(self) -> None:
        """Back to the start of a run: registers zero (at the first segment), buffers zero."""
        self._started = False
        for buffer in self.memories[:-1]:
            buffer.fill(0)

    def reset(self) -> None:
        if self._started:
            self.halted = False
            return
        super().reset()
        self._started = True


def _segments(words: np.ndarray, core: int) -> list[np.ndarray]:
    """A core's stream cut after each ``barrier`` (the barrier ends its segment)."""
    unique = np.unique(words)
    barriers = {int(w) for w in unique.tolist() if _mnemonic(int(w)) == "barrier"}
    cuts = [i + 1 for i, w in enumerate(words.tolist()) if w in barriers]
    bounds = [0] + cuts + [len(words)]
    segments = [words[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    if not segments:
        raise SimulatorTrap(0, "end of program", f"core {core} has an empty instruction stream")
    return segments


def _mnemonic(word: int) -> str:
    try:
        return decode(word).mnemonic
    except Exception:  # an illegal word traps when the core executes it
        return ""


def run_cores(target: TargetConfig, dram: np.ndarray, words,
              entries: list[int]) -> tuple[RunResult, np.ndarray]:
    """Run one stream per core (core ``c`` from ``entries[c]``) to ``halt``; returns the combined
    result and the DRAM after the run (``dram`` itself is left as it was)."""
    cores = Multicore(target, np.asarray(dram, np.uint8).copy())
    return cores.run(words, entries), cores.dram


class Multicore:
    """The cores of a multi-core overlay over one DRAM array (``dram``, written in place), kept from
    one run to the next so that every core keeps each segment of its stream prepared: a second run
    of the same program on new data in ``dram`` replays the cores' actions only."""

    def __init__(self, target: TargetConfig, dram: np.ndarray):
        """``dram``: one sample's 1-d DRAM, or (N, bytes) for a batch of N samples run at once."""
        self.target, self.dram = target, dram
        self._batch_dram = dram if dram.ndim == 2 else dram.reshape(1, -1)  # a view: the cores write ``dram``
        self._cores: list[Core] = []

    def run(self, words, entries: list[int]) -> RunResult:
        """Run one stream per core (core ``c`` from ``entries[c]``) to ``halt``, from registers and
        buffers zero."""
        words = np.asarray(words, dtype=np.uint64).ravel()
        bounds = list(entries) + [len(words)]
        streams = [_segments(words[a:b], c) for c, (a, b) in enumerate(zip(bounds, bounds[1:]))]
        counts = {len(s) for s in streams}
        if len(counts) != 1:
            raise SimulatorTrap(0, "barrier", "the cores' streams have different numbers of barriers "
                                              f"({[len(s) - 1 for s in streams]}): a core would wait forever")
        if len(self._cores) != len(streams):
            self._cores = [Core(self.target, self._batch_dram) for _ in streams]
        cores = self._cores
        for core in cores:
            core.restart()
        total = _Totals(self.target, len(cores))
        for k in range(counts.pop()):
            results = []
            for c, core in enumerate(cores):
                try:
                    results.append(core.run(streams[c][k]))
                except SimulatorTrap as trap:
                    raise SimulatorTrap(trap.pc + entries[c] + sum(len(s) for s in streams[c][:k]),
                                        trap.instruction_text, f"core {c}: {trap.reason}") from None
            total.add(results, [core.mode for core in cores])
        return total.result()


class _Totals:
    """Segment results folded into one RunResult."""

    def __init__(self, target: TargetConfig, cores: int):
        self.target, self.cores = target, cores
        self.cycles = self.instructions = 0
        self.layers: dict[int, dict] = {}
        self.units: dict[str, int] = {}
        self.unit_cycles: dict[str, dict[str, int]] = {}
        self.front: dict[str, int] = {}
        self.modes: dict[str, int] = {}
        self.mode_busy: dict[str, int] = {}
        self.switches = 0

    def add(self, results: list[RunResult], modes_now: list[str]) -> None:
        moved = sum(layer["bytes_loaded"] + layer["bytes_stored"] for r in results for layer in r.layers.values())
        length = max([r.cycles for r in results] + [-(-moved // self.target.hbm_bytes_per_cycle)])
        base = self.cycles
        for r, mode_now in zip(results, modes_now):
            wait = length - r.cycles
            self.instructions += r.instructions
            self.switches += r.mode_switches
            _add(self.units, r.units)
            for unit, split in r.unit_cycles.items():
                _add(self.unit_cycles.setdefault(unit, {}), dict(split, idle=split["idle"] + wait))
            _add(self.front, dict(r.front_cycles, sync_stall=r.front_cycles["sync_stall"] + wait))
            _add(self.modes, r.mode_cycles)
            _add(self.modes, {mode_now: wait})  # waiting at the barrier in the mode it ended in
            _add(self.mode_busy, r.mode_busy)
            for index, layer in r.layers.items():
                self._add_layer(index, layer, base)
        self.cycles = base + length

    def _add_layer(self, index: int, layer: dict, base: int) -> None:
        mine = self.layers.get(index)
        if not layer["instructions"]:
            return
        if mine is None:
            self.layers[index] = dict(layer, start=layer["start"] + base, end=layer["end"] + base)
            return
        for key, value in layer.items():
            if key == "start":
                mine["start"] = min(mine["start"], value + base)
            elif key == "end":
                mine["end"] = max(mine["end"], value + base)
            elif key not in ("cycles", "pe_utilization"):
                mine[key] += value

    def result(self) -> RunResult:
        peak = self.target.peak_macs_per_cycle * self.cores
        for layer in self.layers.values():
            layer["cycles"] = layer["end"] - layer["start"]
            layer["pe_utilization"] = layer["macs"] / (peak * layer["cycles"]) if layer["cycles"] else 0.0
        return RunResult(
            cycles=self.cycles, instructions=self.instructions,
            layers={k: self.layers[k] for k in sorted(self.layers)}, units=self.units,
            stall_cycles=sum(split["stall"] for split in self.unit_cycles.values()),
            clock_mhz=self.target.clock_mhz, mode_cycles=self.modes, mode_switches=self.switches,
            mode_busy=self.mode_busy, unit_cycles=self.unit_cycles, front_cycles=self.front, cores=self.cores)


def _add(into: dict, values: dict) -> None:
    for key, value in values.items():
        into[key] = into.get(key, 0) + value
