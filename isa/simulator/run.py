"""The simulator's public face: ``Machine(target, dram).run(words) -> RunResult``.

Execution is functional and in program order (each instruction completes before the next);
the cycle model (timing.py) replays the same instructions on four decoupled units and its
hazard checks make that order the one the hardware would observe.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from ..encoding import decode
from ..errors import IllegalInstruction, SimulatorTrap
from ..table import INSTRUCTIONS, REGISTER_INDEX
from . import impl_dma, impl_matrix, impl_pool, impl_quant, impl_system, impl_vector  # noqa: F401 (register impls)
from .counters import LayerCounters
from .impl_system import mode as _mode_impl
from .machine import IMPLS, Barrier, Fault, MachineState
from .timing import COMPUTE, UNIT_NAMES, Timing

# The cycle model's unit of every timed instruction, from the ISA table ("front" ones only take an issue slot).
UNIT_OF = {i.mnemonic: UNIT_NAMES.index(i.unit) for i in INSTRUCTIONS if i.unit != "front"}
_LAYER = REGISTER_INDEX["sys.layer"]
# How many instructions run between two calls of ``Machine.run``'s progress callback.
PROGRESS_EVERY = 4096


class Event(NamedTuple):
    """One timed instruction in a trace."""

    pc: int
    unit: str
    issue: int
    start: int
    end: int


@dataclass
class RunResult:
    """What a run measured.  ``layers`` maps each ``sys.layer`` value to its counters
    (``LayerCounters.as_dict``); ``units`` gives busy cycles per unit; ``unit_cycles`` splits the
    run's cycles per unit into busy, stall and idle, ``front_cycles`` the front end's into issue,
    queue_stall, sync_stall and idle (each adds up to ``cycles``; timing.py); ``stall_cycles`` is
    the units' total stall; ``trace`` (when asked for) one ``Event`` per timed instruction."""

    cycles: int
    instructions: int
    layers: dict[int, dict]
    units: dict[str, int]
    stall_cycles: int
    clock_mhz: float = field(repr=False, default=0.0)
    # The PE array's mode over time: cycles spent in each mode ("int8", "bf16") and switching
    # between them (``mode_cycles["switch"]``), partitioning ``cycles``; the number of ``mode``
    # instructions; and compute-unit busy cycles per mode.
    mode_cycles: dict[str, int] = field(default_factory=dict)
    mode_switches: int = 0
    mode_busy: dict[str, int] = field(default_factory=dict)
    unit_cycles: dict[str, dict[str, int]] = field(default_factory=dict)
    front_cycles: dict[str, int] = field(default_factory=dict)
    cores: int = 1  # a multi-core run (multicore.py) sums the unit, front and mode counters over its cores
    trace: list[Event] | None = field(repr=False, default=None)

    @property
    def seconds(self) -> float:
        return self.cycles / (self.clock_mhz * 1e6)

    @property
    def macs(self) -> int:
        return sum(layer["macs"] for layer in self.layers.values())


class _Entry:
    """One decoded program word: the implementation to call and its arguments."""

    __slots__ = ("fn", "args", "unit", "text")

    def __init__(self, fn, args, unit, text):
        self.fn, self.args, self.unit, self.text = fn, args, unit, text


def _illegal(reason: str):
    def trap(m):
        raise Fault(f"illegal instruction: {reason}")

    return trap


def _decode_entries(words: np.ndarray) -> list[_Entry]:
    """Decode each distinct word once; an illegal word becomes an entry that traps when executed."""
    unique, inverse = np.unique(words, return_inverse=True)
    decoded = []
    for word in unique.tolist():
        try:
            instr = decode(word)
        except IllegalInstruction as exc:
            decoded.append(_Entry(_illegal(exc.reason), (), None, f"0x{word:016x}"))
            continue
        decoded.append(_Entry(IMPLS[instr.mnemonic], instr.operands, UNIT_OF.get(instr.mnemonic), instr))
    return [decoded[i] for i in inverse.ravel().tolist()]


class Machine(MachineState):
    """One overlay core: ``Machine(target, dram_image)``; ``run(words)``; read ``dram``.

    The DRAM image (uint8) is copied; outputs are read from ``machine.dram`` after the run.  A run
    starts at PC 0 with registers zero and the array in int8 mode; memory keeps its contents.
    """

    def run(self, words, max_instructions: int | None = None, trace: bool = False,
            progress: Callable[[int, int], None] | None = None) -> RunResult:
        """Execute from PC 0 to ``halt``; SimulatorTrap on a fault, or after ``max_instructions``.
        ``progress(pc, program_length)``, if given, is called every PROGRESS_EVERY instructions and at halt."""
        words = np.asarray(words, dtype=np.uint64).ravel()
        entries = _decode_entries(words)
        self.reset()
        timing = Timing(tuple(self.target.queue_depth(u) for u in UNIT_NAMES))
        layers: dict[int, LayerCounters] = {}
        events: list[Event] | None = [] if trace else None
        regs = self.regs
        mode_cycles = {"int8": 0, "bf16": 0, "switch": 0}
        mode_busy = {"int8": 0, "bf16": 0}
        mode_since, switches, current = 0, 0, self.mode
        pc, executed, end = 0, 0, len(entries)
        limit = max_instructions if max_instructions is not None else -1
        report = PROGRESS_EVERY if progress is not None else -1
        # One comparison per instruction covers both the limit and the progress report.
        checkpoint = _first_checkpoint(limit, report)
        while True:
            if pc >= end:
                raise SimulatorTrap(pc, "end of program", f"ran past the end of the program ({end} "
                                                          f"instructions) without halt")
            if executed == checkpoint:
                if executed == limit:
                    raise SimulatorTrap(pc, str(entries[pc].text), f"executed max_instructions = {limit} "
                                                                   f"instructions without reaching halt")
                progress(pc, end)
                report += PROGRESS_EVERY
                checkpoint = _first_checkpoint(limit, report)
            entry = entries[pc]
            try:
                effect = entry.fn(self, *entry.args)
            except Fault as fault:
                raise SimulatorTrap(pc, str(entry.text), fault.reason) from None
            layer = regs[_LAYER]
            counters = layers.get(layer)
            if counters is None:
                counters = layers[layer] = LayerCounters()
            counters.instructions += 1
            executed += 1
            pc += 1
            if effect is None:
                timing.issue_only()
            elif type(effect) is Barrier:
                timing.barrier(effect.mask)
                if self.halted:
                    if progress is not None:
                        progress(pc, end)
                    break
            else:
                issue, start, finish, stalled = timing.execute(entry.unit, effect.cycles, effect.accesses)
                counters.record(entry.unit, start, finish, stalled, effect.macs, effect.loaded, effect.stored)
                if entry.unit == COMPUTE:
                    if entry.fn is _mode_impl:
                        mode_cycles[current] += max(start - mode_since, 0)
                        mode_cycles["switch"] += finish - start
                        mode_since, current, switches = finish, self.mode, switches + 1
                    else:
                        mode_busy[current] += finish - start
                if events is not None:
                    events.append(Event(pc - 1, UNIT_NAMES[entry.unit], issue, start, finish))
        peak = self.target.peak_macs_per_cycle
        mode_cycles[current] += max(timing.finish - mode_since, 0)
        return RunResult(
            cycles=timing.finish,
            instructions=executed,
            layers={k: layers[k].as_dict(peak) for k in sorted(layers)},
            units=dict(zip(UNIT_NAMES, timing.busy)),
            stall_cycles=sum(timing.stall),
            unit_cycles=timing.unit_cycles(),
            front_cycles=timing.front_cycles(),
            clock_mhz=self.target.clock_mhz,
            trace=events,
            mode_cycles=mode_cycles,
            mode_switches=switches,
            mode_busy=mode_busy,
        )


def _first_checkpoint(limit: int, report: int) -> int:
    """The instruction count at which ``run`` next stops to check: the smaller of the
    ``max_instructions`` limit and the next progress report, either -1 when absent."""
    pending = [n for n in (limit, report) if n >= 0]
    return min(pending) if pending else -1
