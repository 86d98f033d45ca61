"""The simulator's public face: ``Machine(target, dram).run(words) -> RunResult``.

Execution is functional and in program order (each instruction completes before the next);
the cycle model (timing.py) replays the same instructions on four decoupled units and its
hazard checks make that order the one the hardware would observe.

A program is prepared once per machine (``Plan``): decoded, walked through its decode-time state
(registers, mode; machine.py) calling each instruction's implementation, which checks it and
hands back its action, and timed: cycles and counters depend on the program only, so they are
computed here, once.  A run then replays the actions in order, each on every sample of the
machine's batch at once (machine.py: the memories' sample axis); a plan is per machine, so per
batch size.  A Fault while preparing (a bad
geometry, an address out of bounds) traps at its PC when a run reaches it, after the actions
before it have run, as if the instructions had executed one by one.
"""
from __future__ import annotations

from bisect import bisect_left
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable, NamedTuple

import numpy as np
from threadpoolctl import ThreadpoolController

from ..encoding import decode
from ..errors import IllegalInstruction, SimulatorTrap
from ..table import INSTRUCTIONS, REGISTER_INDEX
from . import impl_dma, impl_matrix, impl_pool, impl_quant, impl_system, impl_vector  # noqa: F401 (register impls)
from . import native
from .counters import LayerCounters
from .impl_system import mode as _mode_impl
from .machine import IMPLS, Barrier, Fault, FirstReads, MachineState, merge_spans
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

    def copy(self) -> RunResult:
        """A copy the caller may change: every dict is new (the values are numbers and, in
        ``trace``, immutable Events); what ``copy.deepcopy`` gives, in a fraction of its time."""
        return replace(self, layers={k: dict(v) for k, v in self.layers.items()}, units=dict(self.units),
                       mode_cycles=dict(self.mode_cycles), mode_busy=dict(self.mode_busy),
                       unit_cycles={k: dict(v) for k, v in self.unit_cycles.items()},
                       front_cycles=dict(self.front_cycles), trace=None if self.trace is None else list(self.trace))

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


@lru_cache(maxsize=1)
def _blas_threads() -> ThreadpoolController:
    return ThreadpoolController()


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


class Plan:
    """A program prepared for one machine: the (pc, action) of every instruction that works on the
    memories, how the run ends (``stop``: the PC of the halt, or of the instruction that traps,
    with ``trap`` its reason), the decoded entries (for trap messages) and, when it halts, the
    run's timing and counters."""

    __slots__ = ("pcs", "actions", "entries", "stop", "trap", "result", "final_regs", "final_mode", "written",
                 "settling", "order", "_first_reads", "blas")

    def __init__(self, entries: list[_Entry]):
        self.entries = entries
        self.pcs: list[int] = []
        self.actions: list[Callable[[], None]] = []
        self.stop = len(entries)
        self.trap: str | None = "end of program"
        self.result: RunResult | None = None
        self.final_regs: list[int] = []
        self.final_mode = "int8"
        self.written: tuple = ()  # (memory, lo, hi) byte ranges the actions may write (machine.merge_spans)
        # (index in actions, Effect.settled) of the actions to ask for their replacement after the first run
        self.settling: list[tuple[int, Callable[[], Callable[[], None] | None]]] = []
        # per action, in order: (its accesses, the ranges it writes whole), for ``first_reads``
        self.order: list[tuple[tuple, tuple]] = []
        self._first_reads: tuple | None = None
        self.blas = False  # whether an action may multiply on BLAS (Effect.blas)

    def first_reads(self, memories: list) -> tuple:
        """The (memory, lo, hi) ranges of ``memories`` a run reads before it writes them (merged,
        sorted): what a run needs restored of what the last one wrote (``MachineState.reload_image``).
        Worked out when first asked for."""
        if self._first_reads is None:
            found = FirstReads(memories)
            for accesses, covers in self.order:
                found.read(accesses)
                found.wrote(covers)
            self._first_reads, self.order = found.spans(), []
        return self._first_reads

    def text(self, pc: int) -> str:
        return "end of program" if pc >= len(self.entries) else str(self.entries[pc].text)


def prepare(machine: MachineState, words: np.ndarray, trace: bool = False) -> Plan:
    """Walk the program from PC 0 (after ``machine.reset()``: registers zero, int8 mode) to its halt
    or first trap."""
    plan = Plan(_decode_entries(words))
    machine.reset()
    timing = Timing(machine.target)
    layers: dict[int, LayerCounters] = {}
    events: list[Event] | None = [] if trace else None
    regs = machine.regs
    mode_cycles = {"int8": 0, "bf16": 0, "switch": 0}
    mode_busy = {"int8": 0, "bf16": 0}
    mode_since, switches, current = 0, 0, machine.mode
    end = len(plan.entries)
    written: list[tuple[int, int, int]] = []
    plan.trap = f"ran past the end of the program ({end} instructions) without halt"
    for pc, entry in enumerate(plan.entries):
        machine.covers = []
        try:
            effect = entry.fn(machine, *entry.args)
        except Fault as fault:
            plan.stop, plan.trap = pc, fault.reason
            break
        layer = regs[_LAYER]
        counters = layers.get(layer)
        if counters is None:
            counters = layers[layer] = LayerCounters()
        counters.instructions += 1
        if effect is None:
            timing.issue_only()
        elif type(effect) is Barrier:
            timing.barrier(effect.mask)
            if machine.halted:
                plan.stop, plan.trap = pc, None
                break
        else:
            if effect.action is not None:
                if effect.settled is not None:
                    plan.settling.append((len(plan.actions), effect.settled))
                plan.pcs.append(pc)
                plan.actions.append(effect.action)
                plan.order.append((effect.accesses, tuple(machine.covers)))
                plan.blas = plan.blas or effect.blas
                written.extend(a[:3] for a in effect.accesses if a[3])
            is_mode = entry.fn is _mode_impl
            issue, start, finish, stalled, occupied = timing.execute(entry.unit, effect.cycles, effect.accesses,
                                                                     effect.latency, is_mode, effect.chain)
            counters.record(entry.unit, start, finish, occupied, stalled, effect.macs, effect.loaded, effect.stored)
            if entry.unit == COMPUTE:
                if is_mode:
                    mode_cycles[current] += max(start - mode_since, 0)
                    mode_cycles["switch"] += finish - start
                    mode_since, current, switches = finish, machine.mode, switches + 1
                else:
                    mode_busy[current] += occupied
            if events is not None:
                events.append(Event(pc, UNIT_NAMES[entry.unit], issue, start, finish))
    machine.covers = None
    plan.final_regs, plan.final_mode = list(regs), machine.mode
    plan.written = merge_spans(written)
    if plan.trap is None:
        peak = machine.target.peak_macs_per_cycle
        mode_cycles[current] += max(timing.finish - mode_since, 0)
        plan.result = RunResult(
            cycles=timing.finish,
            instructions=plan.stop + 1,
            layers={k: layers[k].as_dict(peak) for k in sorted(layers)},
            units=dict(zip(UNIT_NAMES, timing.busy)),
            stall_cycles=sum(timing.stall),
            unit_cycles=timing.unit_cycles(),
            front_cycles=timing.front_cycles(),
            clock_mhz=machine.target.clock_mhz,
            trace=events,
            mode_cycles=mode_cycles,
            mode_switches=switches,
            mode_busy=mode_busy,
        )
    return plan


class Machine(MachineState):
    """One overlay core: ``Machine(target, dram_image)``; ``run(words)``; read ``dram``.

    The DRAM image (uint8) is copied; outputs are read from ``machine.dram`` after the run.  A run
    starts at PC 0 with registers zero and the array in int8 mode; memory keeps its contents.  The
    last program run is kept prepared, so running it again (on new data in the memories) replays
    its actions only.
    """

    _plans: dict[tuple, Plan] | None = None
    _last: tuple | None = None  # (key, plan) of the last program prepared or found
    plans_kept = 1  # programs kept prepared (a multi-core Core keeps every segment of its stream)

    def run(self, words, max_instructions: int | None = None, trace: bool = False,
            progress: Callable[[int, int], None] | None = None, shared: bool = False) -> RunResult:
        """Execute from PC 0 to ``halt``; SimulatorTrap on a fault, or after ``max_instructions``.
        ``progress(pc, program_length)``, if given, is called every PROGRESS_EVERY instructions and at halt.
        The result is a copy the caller may change, or with ``shared`` the prepared program's own
        (every run of it gives the same; copying thousands of layers' counters costs a millisecond)."""
        plan = self.prepared(words, trace)
        self.regs, self.mode, self.halted = list(plan.final_regs), plan.final_mode, plan.trap is None
        stop, reported = plan.stop, plan.stop  # progress is reported at multiples up to ``reported``
        if max_instructions is not None and max_instructions <= stop:
            stop, reported = max_instructions, max_instructions - 1
            reason = f"executed max_instructions = {max_instructions} instructions without reaching halt"
        else:
            reason = plan.trap
        # One BLAS thread: the array's products are tile-sized (a few MFLOP), where OpenBLAS's thread
        # hand-off costs more than it saves, and on a shared machine its spinning threads make a run
        # several times slower (measured 10x on ResNet-50 with other jobs running); set only for a
        # program multiplying on BLAS (10 us a run, where every product is a C step).  Float errors
        # are ignored once here rather than per action: the bf16 lanes compute inf and NaN on purpose.
        self.note_written(plan.written)
        blas = _blas_threads().limit(limits=1, user_api="blas") if plan.blas else nullcontext()
        with blas, np.errstate(all="ignore"):
            self._replay(plan, bisect_left(plan.pcs, stop), reported, progress)
        if plan.settling and stop == plan.stop:  # every action ran: those that prepared a step hand it over
            for i, settled in plan.settling:
                plan.actions[i] = settled() or plan.actions[i]
            plan.settling = []
        if reason is not None:
            raise SimulatorTrap(stop, plan.text(stop), reason)
        if progress is not None:
            progress(stop + 1, len(plan.entries))
        assert plan.result is not None
        return plan.result if shared else plan.result.copy()

    def _key(self, words) -> tuple[np.ndarray, tuple]:
        """``words`` as a flat uint64 array, and the key its plan is kept under."""
        words = np.asarray(words, dtype=np.uint64).ravel()
        self.reset()  # a Core (multicore.py) keeps its registers from the segment before: part of the key
        return words, (words.tobytes(), tuple(self.regs), self.mode)

    def first_reads(self, words) -> tuple | None:
        """``Plan.first_reads`` of ``words`` if this machine has it prepared, else None (it is
        prepared when it first runs, after the memories are loaded)."""
        _, key = self._key(words)
        last = self._last
        return last[1].first_reads(self.memories) if last is not None and last[0] == key else None

    def prepared(self, words, trace: bool = False) -> Plan:
        """The plan of ``words`` on this machine (kept for the next call unless ``trace``)."""
        words, key = self._key(words)
        last = self._last
        if not trace and last is not None and last[0] == key:  # the same program again: compared, not hashed
            return last[1]  # (a new bytes object's hash reads all of it: 40 us a run for CRNN's 5,000 words)
        if self._plans is None:
            self._plans = {}
        plan = None if trace else self._plans.get(key)
        if plan is None:
            plan = prepare(self, words, trace)
            if not trace:
                if len(self._plans) >= self.plans_kept:
                    self._plans.clear()
                self._plans[key] = plan
        if not trace:
            self._last = key, plan
        return plan

    def _replay(self, plan: Plan, count: int, reported: int, progress) -> None:
        """Run the first ``count`` actions; ``progress`` at every PROGRESS_EVERY-th PC up to ``reported``."""
        pcs, actions = plan.pcs, plan.actions
        i = 0
        fused = native.kernels()
        try:
            if progress is None and fused is not None and hasattr(fused, "replay"):
                at = [0]  # the loop in C (most actions are C calls: the Python loop was a tenth of a small run)
                try:
                    fused.replay(actions, count, at)
                finally:
                    i = at[0]
                return
            if progress is None:
                for i in range(count):
                    actions[i]()
                return
            end = len(plan.entries)
            for report in range(PROGRESS_EVERY, reported + 1, PROGRESS_EVERY):
                while i < count and pcs[i] < report:
                    actions[i]()
                    i += 1
                progress(report, end)
            while i < count:
                actions[i]()
                i += 1
        except Fault as fault:
            raise SimulatorTrap(pcs[i], plan.text(pcs[i]), fault.reason) from None
