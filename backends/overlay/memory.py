"""DRAM planning: constants packed first, then activations placed by liveness (first fit),
so tensors whose lifetimes do not overlap share memory."""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np

ALIGN = 64


@dataclass(frozen=True)
class ActivationAddress:
    """A DRAM address in the activation segment, which follows the constants: its absolute value is
    known only once every constant is placed, so emitters carry it as an offset (adding byte
    offsets keeps it relocatable) and ``resolve`` fixes it when the program is encoded."""

    offset: int

    def __add__(self, n: int) -> ActivationAddress:
        return ActivationAddress(self.offset + int(n))

    def resolve(self, base: int) -> int:
        return base + self.offset


def align(n: int, to: int = ALIGN) -> int:
    return (n + to - 1) // to * to


@dataclass
class DramPlan:
    constants: bytearray = field(default_factory=bytearray)
    constant_offsets: dict[str, int] = field(default_factory=dict)
    activation_base: int = 0
    activation_bytes: int = 0

    def add_constant(self, key: str, data: np.ndarray) -> int:
        """Place raw bytes (deduplicated by key); returns the DRAM address."""
        if key in self.constant_offsets:
            return self.constant_offsets[key]
        offset = align(len(self.constants))
        self.constants.extend(b"\0" * (offset - len(self.constants)))
        self.constants.extend(np.ascontiguousarray(data).tobytes())
        self.constant_offsets[key] = offset
        return offset

    @property
    def total_bytes(self) -> int:
        return self.activation_base + self.activation_bytes


def place_activations(sizes: dict[int, int], first_def: dict[int, int], last_use: dict[int, int],
                      pinned: set[int]) -> tuple[dict[int, int], int]:
    """Offsets for tensors alive over steps [first_def, last_use]: pinned tensors (model inputs
    and outputs, which the host reads and writes) get their own space; the others are placed
    first-fit among the tensors alive at the same time.  Returns (offsets, total bytes)."""
    offsets: dict[int, int] = {}
    cursor = 0
    for key in sorted((k for k in sizes if k in pinned), key=lambda k: first_def[k]):  # ties: sizes' order
        offsets[key] = cursor
        cursor += align(max(sizes[key], 1))
    base = cursor
    live: list[tuple[int, int, int]] = []  # (start, end, last step)
    total = base
    for key in sorted((k for k in sizes if k not in pinned), key=lambda k: (first_def[k], -sizes[k])):
        begin = first_def[key]
        live = [entry for entry in live if entry[2] >= begin]
        size = align(max(sizes[key], 1))
        candidate = base
        for s, e, _ in sorted(live):
            if candidate + size <= s:
                break
            candidate = max(candidate, e)
        offsets[key] = candidate
        live.append((candidate, candidate + size, last_use.get(key, begin)))
        total = max(total, candidate + size)
    return offsets, total


def live_bytes(sizes: dict[int, int], first_def: dict[int, int], last_use: dict[int, int], pinned: set[int],
               steps: int) -> list[int]:
    """Per step, the activation bytes ``place_activations`` keeps allocated then: every pinned
    tensor, and each other one over its steps [first_def, last_use]."""
    change = [0] * (steps + 1)
    for key, size in sizes.items():
        begin, end = (0, steps - 1) if key in pinned else (first_def[key], last_use.get(key, first_def[key]))
        change[begin] += align(max(size, 1))
        change[min(end, steps - 1) + 1] -= align(max(size, 1))
    return list(accumulate(change))[:steps]
