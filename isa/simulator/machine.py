"""The machine's architectural state and the vocabulary its instruction implementations share.

State (docs/overlay-machine.md): DRAM and the five on-chip buffers as flat uint8 arrays, 256
32-bit configuration registers, the PE array's mode.  A machine simulates a batch of N samples at
once: each memory is an (N, bytes) array, one row per sample (N = 1 for a single run), while the
registers and the mode are one for all (the program is the same), so every view an instruction
takes has the sample axis first and every action works on all N samples in one go.  Every instruction is one ``@impl``
function ``fn(state, *fields)`` taking the decoded fields in table order.

Registers change only by ``setr`` with an immediate and programs are straight-line, so the
registers and the mode at each PC are a property of the program (its decode-time state), while
the memories hold the data.  An implementation therefore does two things: it reads the registers
and checks everything they decide (geometry, bounds, mode: a Fault here traps at that PC), and it
returns the datapath's work on the memories as the ``action`` of its ``Effect``, a closure over
views of the memories that runs when the instruction executes (and may raise a Fault about the
data, e.g. an accumulator overflow, naming the sample when N > 1: ``sample_fault``).  It returns an ``Effect`` (cycles, byte ranges touched, MACs
and DRAM bytes moved, action), a ``Barrier`` (``sync``/``halt``) or None (issue-only
instructions).  run.py prepares a program once per machine and replays only the actions.
"""
from __future__ import annotations

import inspect
import weakref
from bisect import bisect_right
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Callable

import numpy as np

from ..table import BUFFERS, BY_MNEMONIC, REGISTER_INDEX
from ..target import TargetConfig, TargetError
from . import native

ABUF, WBUF, ACC, PBUF, VBUF = (BUFFERS.index(name) for name in ("abuf", "wbuf", "acc", "pbuf", "vbuf"))
DRAM = len(BUFFERS)  # memory id of DRAM, after the buffers
MEMORY_NAMES = BUFFERS + ("dram",)
NUM_REGISTERS = 256


class Fault(Exception):
    """Why an instruction cannot execute; the run loop turns it into a SimulatorTrap with PC and text."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def sample_prefix(batch: int, sample) -> str:
    """A fault message's prefix naming its sample, in a batch of more than one."""
    return f"sample {int(sample)}: " if batch > 1 else ""


def sample_fault(m: "MachineState", what: str, attempt: Callable[[int], object], error: ValueError) -> Fault:
    """The Fault for a rule that raised ``error`` on the batch: as it is for one sample, else naming
    the first sample whose own ``attempt(i)`` (the rule on sample i alone, writing nothing) raises."""
    if m.batch > 1:
        for i in range(m.batch):
            try:
                attempt(i)
            except ValueError as exc:
                return Fault(f"{sample_prefix(m.batch, i)}{what}: {exc}")
    return Fault(f"{what}: {error}")


def strided_rows(shape: tuple, strides: tuple, itemsize: int) -> tuple[int, int] | None:
    """(stride, width) when a view's bytes are rows of ``width`` contiguous bytes ``stride`` apart
    with a gap between rows (one strided axis over a contiguous block); None when they are one
    contiguous range or any other pattern (the hazard checks then take the whole span)."""
    axes = sorted((s, n) for n, s in zip(shape, strides) if n > 1)
    width = itemsize
    while axes and axes[0][0] == width:  # axes that continue the contiguous block
        width *= axes.pop(0)[1]
    if len(axes) != 1 or axes[0][0] <= width:
        return None
    return axes[0][0], width


@dataclass(slots=True)
class Effect:
    """What one timed instruction did, for the cycle model and the counters.

    ``accesses`` holds ``(memory, lo, hi, write)`` byte ranges [lo, hi): the span from the lowest
    to the highest byte the instruction touches in that memory, with two more items ``(stride,
    width)`` when those bytes are rows of ``width`` bytes ``stride`` apart with gaps between them
    (``strided_rows``: the rows start at lo, the last ends at hi).  ``action`` does the work on the
    memories (None: the instruction only takes time, like ``mode``).  ``settled``, if given, is asked
    once after the first run that completes: the action to run in its place from then on (a
    prepared step the action made from what that run found in the memories), or None to keep it.
    """

    cycles: int
    accesses: tuple
    latency: int = 0  # the last cycles, in its unit's pipeline, during which the unit starts its next instruction
    macs: int = 0
    loaded: int = 0  # DRAM bytes read by a load
    stored: int = 0  # DRAM bytes written by a store
    action: Callable[[], None] | None = None
    settled: Callable[[], Callable[[], None] | None] | None = None
    # a matmul: ((its accumulator access, M, N, latency), accumulate), for timing.Timing.execute's chain
    chain: tuple | None = None
    blas: bool = False  # the action may multiply on BLAS (a run holds BLAS to one thread only then)


@dataclass(slots=True)
class Barrier:
    """Stall issue until the units in ``mask`` are idle (bit 0 load, 1 compute, 2 store)."""

    mask: int


IMPLS: dict[str, Callable] = {}


def impl(mnemonic: str):
    """Register the implementation of one instruction; its parameters after the state must be the
    table's field names, in order."""

    def register(fn: Callable) -> Callable:
        if mnemonic not in BY_MNEMONIC:
            raise ValueError(f"@impl({mnemonic!r}): no such instruction in isa/table.py")
        if mnemonic in IMPLS:
            raise ValueError(f"@impl({mnemonic!r}) registered twice")
        params = list(inspect.signature(fn).parameters)[1:]
        fields = [f.name for f in BY_MNEMONIC[mnemonic].fields]
        if params != fields:
            raise ValueError(f"@impl({mnemonic!r}): parameters {params} differ from the table's fields {fields}")
        IMPLS[mnemonic] = fn
        return fn

    return register


def registers(*names: str) -> Callable[[list[int]], tuple[int, ...]]:
    """A fast reader of several configuration registers by name: ``reader(state.regs)`` -> tuple."""
    indices = [REGISTER_INDEX[n] for n in names]
    if len(indices) == 1:
        only = indices[0]
        return lambda regs: (regs[only],)
    return itemgetter(*indices)


def copy_action(dst: np.ndarray, src: np.ndarray) -> Callable[[], None]:
    """An action copying the view ``src`` into ``dst`` (same shape, no overlap): the C kernels'
    prepared copy (native.step) where they run and the rows are contiguous or the copy short, else,
    when both are contiguous bytes, a memoryview
    slice assignment (one memmove: about 20x cheaper than np.copyto on the short runs a DMA
    moves), else np.copyto; whole elements either way."""
    target, source = whole_elements(dst, src)
    # (numpy's copy picks its own loop order: faster on a long transposing copy than the kernel's rows)
    rows = target.ndim and target.strides[-1] == source.strides[-1] == target.itemsize
    prepared = native.step("COPY", 0, target, source) if rows or target.size <= 512 else None
    if prepared is not None:
        return prepared
    if dst.dtype == src.dtype == np.uint8 and dst.flags.c_contiguous and src.flags.c_contiguous:
        return partial(dst.reshape(-1).data.__setitem__, slice(None), src.reshape(-1).data)
    return partial(np.copyto, target, source)


def whole_elements(*views: np.ndarray) -> tuple[np.ndarray, ...]:
    """Byte views whose last axis is a run of 2, 4 or 8 contiguous bytes (``copy``'s elements: bf16
    lanes, int32 words) as views of one uint16/32/64 item per run, that axis dropped: a copy between
    them moves one item per element where numpy would iterate over the bytes (Inception v1's 78
    transposing copies of bf16 lanes: 5.3 -> 0.6 ms a run); other views as they are.  The items stand
    for the bytes only: unaligned or not, numpy copies them whole, the same width on both sides."""
    shapes = {(v.dtype, v.shape[-1:], v.strides[-1:]) for v in views}
    if len(shapes) != 1:
        return views
    ((dtype, size, stride),) = shapes
    if dtype != np.uint8 or size not in ((2,), (4,), (8,)) or stride != (1,):
        return views
    return tuple(v.view(f"<u{size[0]}")[..., 0] for v in views)


def merge_spans(spans, gap: int = 1024) -> tuple:
    """(memory, lo, hi) byte ranges merged per memory, ranges less than ``gap`` bytes apart joined
    (restoring a few bytes more is cheaper than one more call)."""
    merged: list[list[int]] = []
    for memory, lo, hi in sorted(spans):
        if merged and merged[-1][0] == memory and lo <= merged[-1][2] + gap:
            merged[-1][2] = max(merged[-1][2], hi)
        else:
            merged.append([memory, lo, hi])
    return tuple(map(tuple, merged))


def intersect_spans(spans: tuple, others: tuple) -> tuple:
    """The parts of the (memory, lo, hi) ranges ``spans`` inside the sorted, disjoint ones ``others``
    (merge_spans's), in order."""
    parts = []
    for memory, lo, hi in spans:
        at = bisect_right(others, (memory, lo, lo)) - 1  # the last range starting at or before lo
        for other_memory, other_lo, other_hi in others[max(at, 0):]:
            if other_memory > memory or (other_memory == memory and other_lo >= hi):
                break
            if other_memory == memory and other_hi > lo:
                parts.append((memory, max(lo, other_lo), min(hi, other_hi)))
    return tuple(parts)


class FirstReads:
    """The ranges a program reads before it writes them, from each instruction's accesses in
    program order: ``read(accesses)`` (an instruction's reads, taken before its writes), then
    ``wrote(ranges)`` (the ranges it writes whole: ``MachineState.covers``); ``spans()`` merges them."""

    def __init__(self, memories: list):
        self.unwritten = [np.ones(m.shape[1], bool) for m in memories]
        self.read_first = [np.zeros(m.shape[1], bool) for m in memories]

    def read(self, accesses) -> None:
        for access in accesses:
            if not access[3]:
                memory, lo, hi = access[:3]
                np.logical_or(self.read_first[memory][lo:hi], self.unwritten[memory][lo:hi],
                              out=self.read_first[memory][lo:hi])

    def wrote(self, ranges) -> None:
        for memory, lo, hi in ranges:
            self.unwritten[memory][lo:hi] = False

    def spans(self) -> tuple:
        found = []
        for memory, flags in enumerate(self.read_first):
            edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.view(np.int8), [0]))))
            found += [(memory, int(lo), int(hi)) for lo, hi in zip(edges[::2], edges[1::2])]
        return merge_spans(found, gap=0)


def contiguous_strides(shape, itemsize: int) -> tuple[int, ...]:
    """Byte strides of a row-major array of ``shape``."""
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


class MachineState:
    """DRAM, buffers, registers and mode of one overlay core, over a batch of ``batch`` samples.

    ``dram`` is a 1-d uint8 image (one sample) or an (N, bytes) one (N samples, one image each).
    ``memories`` are the (N, bytes) arrays the instructions read and write (buffers in BUFFERS
    order, then DRAM); ``dram`` and ``buffers`` are sample 0's rows of them (all of it when N = 1),
    ``batch_dram`` every sample's DRAM."""

    def __init__(self, target: TargetConfig, dram: np.ndarray):
        image = np.asarray(dram)
        if image.dtype != np.uint8 or image.ndim not in (1, 2) or (image.ndim == 2 and not image.shape[0]):
            raise TypeError(f"the DRAM image must be a 1-d (or N x bytes) uint8 array, got "
                            f"{image.dtype}{list(image.shape)}")
        if image.shape[-1] > target.dram_bytes:
            raise TargetError(f"DRAM image of {image.shape[-1]} bytes exceeds target {target.name}'s "
                              f"dram_bytes = {target.dram_bytes}")
        self.target = target
        self.batch = 1 if image.ndim == 1 else image.shape[0]
        self.memories = [np.zeros((self.batch, target.buffer_bytes(name)), np.uint8) for name in BUFFERS]
        self.memories.append(np.array(image.reshape(self.batch, -1), np.uint8))
        self._rows()
        self._image: np.ndarray | None = None  # what load_image last loaded (reload_image restores it)
        self._written: dict = {}  # id -> spans changed since (note_written)
        self._restores: dict = {}  # (id(spans), id(reads)) -> (spans, reads, their parts to restore) (reload_image)
        self.covers: list | None = None  # while preparing: the ranges the instruction writes whole (region, span)
        self.stop_at_barrier = False  # set by a multi-core run: ``barrier`` ends a run like ``halt``
        self.tables: dict = {}  # element-wise rules as lookup tables, by instruction and parameters (rule_tables.py)
        self.windows: dict = {}  # the last conv input slabs read and their windows (impl_matrix.py)
        self.shared: dict = {}  # conv tiles reading the same windows, by layer and windows (shared_product.py)
        self.lanes: dict = {}  # bf16 lane scratch by length, shared by the vector instructions (impl_vector.Lanes)
        self.images: dict = {}  # padded pooling images by shape, dtype and padding value (impl_pool.py)
        # decoded weights by packed bytes and format, and joined weights by their parts: one copy however
        # many matmuls load the same weights (impl_matrix.py, shared_product.py); kept while one uses them
        self.weights: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.joined: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.reset()

    def _rows(self) -> None:
        """``dram`` and ``buffers``: sample 0's rows of the memories."""
        self.dram = self.memories[DRAM][0]
        self.buffers = {name: self.memories[i][0] for i, name in enumerate(BUFFERS)}

    @property
    def batch_dram(self) -> np.ndarray:
        """Every sample's DRAM, (N, bytes)."""
        return self.memories[DRAM]

    def load_image(self, image: np.ndarray) -> None:
        """Every sample's DRAM to ``image`` followed by zeros and every buffer to zeros, in place (the
        arrays, and views of them that a prepared program holds, stay the same)."""
        dram = self.memories[DRAM]
        if image.size > dram.shape[1]:
            raise TargetError(f"DRAM image of {image.size} bytes exceeds this machine's {dram.shape[1]}")
        dram[:, :image.size] = image
        dram[:, image.size:] = 0
        for buffer in self.memories[:DRAM]:
            buffer.fill(0)
        self._image, self._written = image, {}

    def note_written(self, spans: tuple) -> None:
        """Record that the (memory, lo, hi) byte ranges ``spans`` may change (a run notes its
        program's writes; whoever else writes the memories notes it too), for ``reload_image``."""
        self._written[id(spans)] = spans

    def reload_image(self, reads: tuple | None = None) -> bool:
        """What ``load_image`` of the last image gives, restoring only the ranges noted since (the
        rest still holds the image and zeros); False, and nothing done, if no image was loaded.
        With ``reads``, the (memory, lo, hi) ranges the next run reads before it writes them
        (``Machine.first_reads``): only their part of the noted ranges is restored (the run writes
        the rest before reading it), and the rest stays noted for a later reload."""
        image = self._image
        if image is None:
            return False
        kept: dict = {}
        for key, spans in self._written.items():
            if reads is not None:
                # (a program's spans are the same tuple every run; the cache holds the tuples it is
                # keyed by, so that their ids stay theirs)
                cached = self._restores.get((id(spans), id(reads)))
                if cached is not None and cached[0] is spans and cached[1] is reads:
                    parts = cached[2]
                else:
                    parts = intersect_spans(spans, reads)
                    if len(self._restores) > 64:
                        self._restores.clear()
                    self._restores[id(spans), id(reads)] = spans, reads, parts
                if parts != spans:
                    kept[key] = spans
                spans = parts
            for memory, lo, hi in spans:
                mem = self.memories[memory]
                if memory == DRAM and lo < image.size:
                    mem[:, lo:min(hi, image.size)] = image[lo:hi]
                    lo = min(hi, image.size)
                mem[:, lo:hi] = 0
        self._written = kept
        return True

    def reset(self) -> None:
        """Registers to zero, int8 mode; memory keeps its contents."""
        self.regs = [0] * NUM_REGISTERS
        self.mode = "int8"
        self.halted = False

    def reg(self, name: str) -> int:
        return self.regs[REGISTER_INDEX[name]]

    def require_mode(self, mode: str, mnemonic: str) -> None:
        if self.mode != mode:
            raise Fault(f"{mnemonic} needs {mode} mode but the PE array is in {self.mode} mode "
                        f"(emit `mode {mode}` before it)")

    def region(self, memory: int, base: int, shape: tuple, strides: tuple, dtype, write: bool,
               what: str) -> tuple[np.ndarray, tuple | None]:
        """A view of ``shape`` elements at byte ``base`` with byte ``strides`` in every sample,
        bounds-checked: shape ``(N,) + shape``, the sample axis first.

        Returns the view and its access ``(memory, lo, hi, write)`` (None when empty).  ``what``
        names the operand in the fault message.
        """
        dtype = np.dtype(dtype)
        lo = hi = base
        empty = False
        for n, s in zip(shape, strides):
            if n <= 0:
                if n < 0:
                    raise Fault(f"{what}: negative extent in shape {list(shape)}")
                empty = True
            elif s < 0:
                lo += (n - 1) * s
            else:
                hi += (n - 1) * s
        mem = self.memories[memory]
        if empty:
            return np.empty((mem.shape[0],) + tuple(shape), dtype), None
        hi += dtype.itemsize
        size = mem.shape[1]
        if lo < 0 or hi > size:
            raise Fault(f"{what}: {MEMORY_NAMES[memory]} range [{lo}, {hi}) is outside {MEMORY_NAMES[memory]} "
                        f"({size} bytes)")
        view = np.ndarray((mem.shape[0],) + tuple(shape), dtype, buffer=mem, offset=base,
                          strides=(size,) + tuple(strides))
        if write and self.covers is not None and view[0].nbytes == hi - lo and view[0].flags.c_contiguous:  # all of it
            self.covers.append((memory, lo, hi))
        rows = strided_rows(shape, strides, dtype.itemsize)
        return view, (memory, lo, hi, write) if rows is None else (memory, lo, hi, write) + rows

    def span(self, memory: int, lo: int, hi: int, write: bool, what: str) -> tuple:
        """Bounds-check the byte range [lo, hi) of a memory; returns its access."""
        size = self.memories[memory].shape[1]
        if lo < 0 or hi > size:
            raise Fault(f"{what}: {MEMORY_NAMES[memory]} range [{lo}, {hi}) is outside {MEMORY_NAMES[memory]} "
                        f"({size} bytes)")
        if write and self.covers is not None:
            self.covers.append((memory, lo, hi))
        return memory, lo, hi, write
