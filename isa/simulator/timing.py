"""The cycle model of docs/overlay-machine.md: four decoupled units behind an in-order front end.

Units (``table.UNITS``, each instruction's unit is in the ISA table): load (``load``, ``lookup``),
compute (the PE array: ``matmul``, ``mode``, and ``cvt`` and the vector instructions in bf16 mode), store (``store``),
and post (the quantization / pooling / element-wise unit on the store path: ``requant``, ``pool``,
``eadd``, ``emul``, ``lut``, ``copy``).  The front end issues one instruction per cycle in program
order into the queue of its unit; each queue holds at most the target's ``<unit>_queue`` entries
(issued, not yet started), and an instruction whose queue is full stalls issue until the oldest
entry starts (back-pressure).  ``sync`` and ``halt`` stall issue until units are idle (every
instruction ended).  Each unit starts its instructions in order and is pipelined: an instruction
of ``cycles`` with a ``latency`` (the DMA latency, the array's fill and drain, the SIMD or post
pipeline: ``Effect.latency``) occupies its unit for ``cycles - latency`` (at least one), after
which the unit starts its next instruction, and ends ``latency`` later (its results are ready).
An instruction starts at ``max(issue, its unit free, end of every earlier conflicting
instruction)``: conflicts are overlapping byte ranges [lo, hi) of one memory where at least one
side writes, with an instruction of any unit, its own included (a dependent instruction waits
out the pipeline; an independent one overlaps it).  ``mode`` waits for the compute unit's
instructions to end (it drains the array).  An instruction's range in a memory is the
span from the lowest to the highest byte it touches there, and where those bytes are rows with
gaps between them (a strided operand, a box of a map: ``machine.strided_rows``) two ranges
conflict only where their rows do (``rows_overlap``: exact, or the spans when both have more
than ``EXACT_ROWS`` rows in common span).  The load and store units share the core's DRAM channel (``dram_bytes_per_cycle`` is
its whole bandwidth): a transfer's beats (``cycles.dram_beats``, after its latency) take the
channel's free cycles from its start plus latency on, in the gaps between other transfers' beats
(bursts interleave), and the transfer starts as much later as its last beat ends later (counted
as a stall of its unit; latencies overlap freely).  Transfers take the channel in program order:
a later one fills the gaps an earlier one left, it never moves an earlier one's beats.

Counters add up: every cycle of a run is, per unit, busy (running an instruction), stalled (its
next instruction is queued but waits for a conflicting instruction of another unit or for the
DRAM channel) or idle (its queue is empty); for the front end, issuing, stalled on a full queue, stalled on ``sync``/``halt``,
or idle (after the last issue).

The scoreboard keeps, per unit, memory and access kind (read or write), the ranges of recent
instructions in order of their end cycle.  An access walks every unit's lists from the latest
end back and stops at the first overlap (the latest end) or at the first entry ending before its
current earliest start.  Entries ending before every unit's earliest possible next start are
dropped.
"""
from __future__ import annotations

from bisect import bisect_right, insort
from collections import deque

from ..cycles import dram_beats
from ..table import UNITS as UNIT_NAMES
from ..target import TargetConfig
from .machine import MEMORY_NAMES

LOAD, COMPUTE, STORE, POST = (UNIT_NAMES.index(u) for u in ("load", "compute", "store", "post"))
EXACT_ROWS = 64  # rows of two strided ranges compared one by one; more: their spans overlap is a conflict
_UNITS = tuple(range(len(UNIT_NAMES)))
_PRUNE_EVERY = 256


class DramChannel:
    """The DRAM channel's busy intervals [begin, end), disjoint, in order."""

    def __init__(self):
        self.begins: list[int] = []
        self.ends: list[int] = []

    def take(self, earliest: int, beats: int) -> int:
        """Give ``beats`` cycles of the DRAM channel from ``earliest`` on, in whatever gaps its busy
        intervals leave (bursts of different transfers interleave); returns the end of the last."""
        begins, ends = self.begins, self.ends
        i = bisect_right(ends, earliest)  # the first interval still busy after ``earliest``
        at = earliest
        if i < len(begins) and begins[i] <= at:
            at = ends[i]
            i += 1
        first, left, j = at, beats, i
        while j < len(begins) and begins[j] - at < left:  # fill the gap before interval j, go past it
            left -= begins[j] - at
            at = ends[j]
            j += 1
        last = at + left
        del begins[i:j], ends[i:j]  # intervals i..j-1 now lie inside [first, last)
        if i and ends[i - 1] == first:
            ends[i - 1] = last
        else:
            begins.insert(i, first)
            ends.insert(i, last)
            i += 1
        if i < len(begins) and begins[i] == last:  # join the next interval
            ends[i - 1] = ends.pop(i)
            begins.pop(i)
        return last

    def prune(self, horizon: int) -> None:
        """Forget the intervals ending by ``horizon`` (no later transfer starts before it)."""
        drop = bisect_right(self.ends, horizon)
        del self.begins[:drop], self.ends[:drop]


def _rows_within(lo: int, hi: int, stride: int, width: int, x: int, y: int) -> tuple[int, int]:
    """(first, last) indices of the rows of [lo, hi) (``width`` bytes, ``stride`` apart) that
    overlap [x, y); first > last when none does."""
    count = (hi - lo - width) // stride + 1
    return max(0, (x - width - lo) // stride + 1), min(count - 1, (y - 1 - lo) // stride)


def rows_overlap(a: tuple, b: tuple) -> bool:
    """Whether two ranges ``(lo, hi, stride, width)`` whose spans [lo, hi) overlap share a byte
    (stride 0: the whole span).  Conservative: two strided ranges with more than ``EXACT_ROWS``
    rows each in the common span count as overlapping."""
    if not a[2]:
        a, b = b, a
    if not a[2]:
        return True
    lo, hi, stride, width = a
    first, last = _rows_within(lo, hi, stride, width, b[0], b[1])
    if first > last or not b[2]:
        return first <= last
    other = _rows_within(b[0], b[1], b[2], b[3], lo, hi)
    if min(last - first, other[1] - other[0]) >= EXACT_ROWS:
        return True
    if other[1] - other[0] < last - first:
        (lo, hi, stride, width), b, (first, last) = b, a, other
    for i in range(first, last + 1):
        x = lo + i * stride
        j, k = _rows_within(b[0], b[1], b[2], b[3], x, x + width)
        if j <= k:
            return True
    return False


class Timing:
    def __init__(self, target: TargetConfig):
        depths = tuple(target.queue_depth(u) for u in UNIT_NAMES)
        self.target = target
        self.issue_at = 0  # cycle at which the next instruction issues
        self.free = [0] * len(UNIT_NAMES)  # per unit: when it may start its next instruction
        self.done = [0] * len(UNIT_NAMES)  # per unit: the latest end of its instructions
        self.busy = [0] * len(UNIT_NAMES)
        self.stall = [0] * len(UNIT_NAMES)  # queued instruction waiting on a conflict
        self.idle = [0] * len(UNIT_NAMES)  # up to the last instruction's end; ``finish`` adds the tail
        # per unit: start cycles of its most recent ``depth`` instructions (the oldest frees the next slot)
        self.starts: list[deque[int]] = [deque(maxlen=d) for d in depths]
        self.issued = 0  # instructions issued (one cycle each)
        self.queue_stall = 0  # front-end cycles waiting for a slot in a full queue
        self.sync_stall = 0  # front-end cycles waiting at sync/halt
        memories = range(len(MEMORY_NAMES))
        # [unit][memory] -> list of (end, lo, hi, stride, width), ends increasing (stride 0: the whole span)
        self.reads: list[list[list]] = [[[] for _ in memories] for _ in UNIT_NAMES]
        self.writes: list[list[list]] = [[[] for _ in memories] for _ in UNIT_NAMES]
        self._until_prune = _PRUNE_EVERY
        self.channel = DramChannel()
        # the compute unit's current chain of matmuls into one accumulator tile (``execute``'s
        # ``chain``): its key and the accumulator writes of its matmuls
        self.chain_key: tuple | None = None
        self.chain_writes: list[tuple] = []

    def issue_only(self) -> int:
        """An instruction that only takes its issue slot (setr, nop); returns its issue cycle."""
        issue = self.issue_at
        self.issue_at = issue + 1
        self.issued += 1
        return issue

    def barrier(self, mask: int) -> int:
        """sync/halt: later instructions issue once the units in ``mask`` are idle; returns that cycle."""
        ready = self.issue_at + 1
        for unit in (LOAD, COMPUTE, STORE):
            if mask >> unit & 1:
                ready = max(ready, self.done[unit])
        if mask >> COMPUTE & 1:  # the compute bit also covers the post-processing unit
            ready = max(ready, self.done[POST])
        self.issued += 1
        self.sync_stall += ready - self.issue_at - 1
        self.issue_at = ready
        return ready

    def execute(self, unit: int, cycles: int, accesses: tuple, latency: int = 0,
                drain: bool = False, chain: tuple | None = None) -> tuple[int, int, int, int, int]:
        """Schedule one timed instruction with its ``(memory, lo, hi, write)`` accesses, the last
        ``latency`` of its ``cycles`` overlapping its unit's next instruction (``drain``: it waits
        for its unit's instructions to end); returns its (issue, start, end) cycles, the cycles its
        unit stalled on it (waiting for a conflict) and the cycles it occupied its unit.

        ``chain`` (a matmul's ``Effect.chain``: ``(key, accumulate)``, the key its accumulator
        access and pass shape): a matmul that adds to the accumulators the compute unit's
        previous instructions, matmuls of the same key, wrote does not wait for their ends.  The
        array adds each pass's sums to the accumulators at its edge as the pass drains; the
        passes of matmuls of one shape run in the same order with the same latency, so each pass
        of the later one drains after the same pass of the earlier ones (output-stationary partial
        sums over consecutive K chunks, TATAA's accumulate without drain).  Any other access to
        those accumulators in between is an ordinary conflict."""
        issue = self.issue_at
        starts = self.starts[unit]
        if len(starts) == starts.maxlen and starts[0] > issue:  # queue full: wait for its oldest to start
            self.queue_stall += starts[0] - issue
            issue = starts[0]
        self.issue_at = issue + 1
        self.issued += 1
        free = self.free[unit]
        start = queued = max(issue, free)
        if drain:
            start = max(start, self.done[unit])
        follows = chain is not None and chain[1] and chain[0] == self.chain_key
        for access in accesses:
            memory, lo, hi, write = access[:4]
            rows = (lo, hi) + (access[4:] or (0, 0))
            for other in _UNITS:
                lists = (self.writes[other][memory], self.reads[other][memory]) if write \
                    else (self.writes[other][memory],)
                for entries in lists:
                    for end, other_lo, other_hi, stride, width in reversed(entries):
                        if end <= start:
                            break
                        if other_lo < hi and lo < other_hi and \
                                (not (stride or rows[2]) or rows_overlap(rows, (other_lo, other_hi, stride, width))):
                            if follows and other == COMPUTE and \
                                    (end, other_lo, other_hi, stride, width) in self.chain_writes:
                                continue  # the chain's own accumulators: its passes drain in order
                            start = end
                            break
        if unit == LOAD or unit == STORE:
            beats = dram_beats(self.target, cycles)
            if beats:
                start = self.channel.take(start + cycles - beats, beats) - cycles
        end = start + cycles
        occupied = max(cycles - latency, min(cycles, 1))
        self.free[unit] = start + occupied
        if end > self.done[unit]:
            self.done[unit] = end
        self.busy[unit] += occupied
        self.stall[unit] += start - queued
        self.idle[unit] += queued - free
        starts.append(start)
        for access in accesses:
            memory, lo, hi, write = access[:4]
            entry = (end, lo, hi) + (access[4:] or (0, 0))
            entries = (self.writes if write else self.reads)[unit][memory]
            if entries and entries[-1][0] > end:  # a pipelined instruction may end before an earlier one
                insort(entries, entry)
            else:
                entries.append(entry)
        if unit == COMPUTE:
            if chain is None:
                self.chain_key = None
            else:
                if not follows:
                    self.chain_key, self.chain_writes = chain[0], []
                acc = chain[0][0]
                self.chain_writes.append((end, acc[1], acc[2]) + (acc[4:] or (0, 0)))
        self._until_prune -= 1
        if not self._until_prune:
            self._prune(issue)
        return issue, start, end, start - queued, occupied

    def _prune(self, issue: int) -> None:
        horizon = max(issue, min(self.free))  # no later instruction starts before this
        self.channel.prune(horizon)
        for per_unit in (self.reads, self.writes):
            for per_memory in per_unit:
                for entries in per_memory:
                    if entries and entries[0][0] <= horizon:
                        del entries[:bisect_right(entries, (horizon, float("inf"), 0))]
        self._until_prune = _PRUNE_EVERY

    @property
    def finish(self) -> int:
        """The cycle at which every unit is idle."""
        return max(self.issue_at, *self.done)

    def unit_cycles(self) -> dict[str, dict[str, int]]:
        """Per unit, the run's cycles split into busy, stall and idle (they add up to ``finish``)."""
        finish = self.finish
        return {name: {"busy": self.busy[u], "stall": self.stall[u], "idle": self.idle[u] + finish - self.free[u]}
                for u, name in enumerate(UNIT_NAMES)}

    def front_cycles(self) -> dict[str, int]:
        """The front end's cycles: issuing, stalled on a full queue, stalled at sync/halt, idle
        (they add up to ``finish``)."""
        busy_until = self.issue_at
        return {"issue": self.issued, "queue_stall": self.queue_stall, "sync_stall": self.sync_stall,
                "idle": self.finish - busy_until}
