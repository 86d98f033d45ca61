"""Element-wise rules as lookup tables: an instruction's own rule evaluated once on every value its
operands can hold, then one gather per run.

A unit whose output depends only on one int8 (256 values), two int8 (65,536 pairs), one bf16
pattern (65,536) or a bounded integer (a pooling window's sum) computes the same bits whether it
evaluates its rule on the data or reads the rule's value for that input from a table of every
input: the table *is* the rule, evaluated by the same code.  Tables are built on first use and kept per machine
(``MachineState.tables``), keyed by the instruction and the parameters its registers gave it,
so the same requantization in every tile of a layer is evaluated once.  A rule that raises for
some input the table holds (an out-of-range value the data may never reach) gets no table: the
caller then evaluates the rule on the data, which raises only if the data does reach it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tcc.ir.numerics._arrays import thread_scratch

from .machine import MachineState

#: The int8 value of every byte 0..255 (two's complement): a table indexed by a byte holds f(BYTE_VALUES).
BYTE_VALUES = np.arange(256, dtype=np.uint8).view(np.int8)
#: Every (a, b) byte pair as two flat arrays of int8 values, a-major: pair (i, j) at index i * 256 + j.
PAIR_A, PAIR_B = np.repeat(BYTE_VALUES, 256), np.tile(BYTE_VALUES, 256)
#: Every bf16 bit pattern 0..0xFFFF.
BF16_PATTERNS = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def table(m: MachineState, key: tuple, build: Callable[[], np.ndarray]) -> np.ndarray | None:
    """The machine's table for ``key``, built by ``build()`` the first time; None if ``build``
    raises ValueError (the rule refuses some input: evaluate it on the data instead)."""
    tables = m.tables
    if key not in tables:
        try:
            made = np.ascontiguousarray(build())
            made.flags.writeable = False
        except ValueError:
            made = None
        tables[key] = made
    return tables[key]


class PairIndex:
    """The index ``byte(a) * 256 + byte(b)`` of each element pair of two int8 operands of ``length``
    elements (a pair table's entry): two contiguous passes (a's byte widened and shifted, b's byte
    or-ed in) into the calling thread's one uint16 scratch, shared by every instruction so that it
    stays in cache (a scratch per instruction, interleaved byte copies: ResNet-50's 291 residual
    adds took 30 ms a run, 100 us each).  The index is valid until the thread's next call."""

    __slots__ = ("shape", "size", "b_shape")

    def __init__(self, shape: tuple, b_shape: tuple | None = None):
        """``shape``: a's (a batch's: (N, length)); ``b_shape``: the shape b comes in (a broadcast
        pattern whose elements, in order, are the lanes), else b is shaped like a."""
        self.shape, self.size, self.b_shape = shape, int(np.prod(shape)), b_shape

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        index = thread_scratch("pair_index", self.size, np.uint16).reshape(self.shape)
        np.left_shift(a.view(np.uint8), _EIGHT, out=index, dtype=np.uint16)
        low = index if self.b_shape is None else index.reshape(self.b_shape)
        np.bitwise_or(low, b.view(np.uint8), out=low)
        return index


_EIGHT = np.uint16(8)


#: A compacted table's blocks: entries [i * BLOCK, (i + 1) * BLOCK) of the whole table share one block.
BLOCK = 128


def compacted(m: MachineState, key: tuple, whole: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``whole`` (a 65,536-entry table, the machine's for ``key``) as (segments, blocks): entry i is
    ``blocks[segments[i // BLOCK] + i % BLOCK]``, each distinct run of BLOCK entries stored once
    (``segments`` int64 offsets into ``blocks``).  A conversion's table is mostly runs of one value
    (the zero point, the saturation bounds): CRNN's cvt bf16_i8 tables take 4 KB each this way, not
    64, and a run's few lookups into each stay in the caches.  Kept per machine; None where it
    would save little (more than a quarter of the entries in distinct blocks)."""
    compact_key = ("compacted",) + key
    if compact_key not in m.tables:
        rows = whole.reshape(-1, BLOCK)
        offsets: dict[bytes, int] = {}  # each distinct block's offset in ``blocks``, in order of first appearance
        segments = np.array([offsets.setdefault(row.tobytes(), len(offsets) * BLOCK) for row in rows], np.int64)
        made = None
        if len(offsets) * 4 <= len(rows):
            firsts = np.unique(segments, return_index=True)[1]  # each block's first row, in offset order
            blocks = np.ascontiguousarray(rows[firsts].reshape(-1))
            # checked once, when made: the compacted table reads back as the whole table
            assert np.array_equal(blocks[segments[:, None] + np.arange(BLOCK)].reshape(-1), whole)
            blocks.flags.writeable = segments.flags.writeable = False
            made = segments, blocks
        m.tables[compact_key] = made
    return m.tables[compact_key]
