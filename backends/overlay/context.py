"""What every emitter needs: the program, the target's buffer partition and tensor addresses."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tcc.ir import Value
from tcc.isa.target import TargetConfig

from .layout import LayoutPlan
from .memory import ActivationAddress, DramPlan
from .program import Program


@dataclass
class Buffers:
    """Fixed partition of the on-chip buffers: activation quarters (two inputs, two outputs,
    so loads, compute and stores of consecutive tiles overlap), weight/acc/param halves.

    Slots take turns across layers as well: a layer's slot ``i`` of a kind is the one after the
    last slot of that kind the previous layer used, plus ``i``, so a layer's first loads (its
    weights, parameters and first input tile) never wait for the previous layer's last tiles to
    finish with the same slot."""

    abuf_q: int
    wbuf_h: int
    acc_h: int
    pbuf_h: int
    vbuf_q: int
    turn: dict[str, int] = field(default_factory=dict)  # per kind: this layer's first slot
    used: dict[str, int] = field(default_factory=dict)  # per kind: the last slot used, counted on

    @classmethod
    def of(cls, target: TargetConfig) -> "Buffers":
        return cls(target.abuf_bytes // 4 // 64 * 64, target.wbuf_bytes // 2 // 64 * 64,
                   target.acc_bytes // 2 // 64 * 64, target.pbuf_bytes // 2 // 64 * 64,
                   target.vbuf_bytes // 4 // 64 * 64)

    def next_layer(self) -> None:
        self.turn = {kind: last + 1 for kind, last in self.used.items()}

    def _slot(self, kind: str, i: int, count: int) -> int:
        at = self.turn.get(kind, 0) + i
        self.used[kind] = at
        return at % count

    def a_in(self, i: int) -> int:
        return self._slot("a_in", i, 2) * self.abuf_q

    def a_out(self, i: int) -> int:
        return (2 + self._slot("a_out", i, 2)) * self.abuf_q

    def w(self, i: int) -> int:
        return self._slot("w", i, 2) * self.wbuf_h

    def acc(self, i: int) -> int:
        return self._slot("acc", i, 2) * self.acc_h

    def p(self, i: int) -> int:
        return self._slot("p", i, 2) * self.pbuf_h

    def v(self, i: int) -> int:
        return self._slot("v", i, 4) * self.vbuf_q


@dataclass
class Context:
    target: TargetConfig
    program: Program
    plan: DramPlan
    buffers: Buffers
    layouts: LayoutPlan = field(default_factory=LayoutPlan)
    # id(Value) -> DRAM address: an int for constants, an ActivationAddress for activations
    addresses: dict[int, int | ActivationAddress] = field(default_factory=dict)
    layer_names: list[str] = field(default_factory=list)
    layer_stats: list[dict] = field(default_factory=list)
    # the core whose stream is being emitted, of the cores a split step is spread over
    core: int = 0
    cores: int = 1

    def share(self, count: int) -> range:
        """This core's contiguous share of ``count`` tiles (all of them when one core emits)."""
        return range(self.core * count // self.cores, (self.core + 1) * count // self.cores)

    def addr(self, value: Value) -> int | ActivationAddress:
        return self.addresses[id(value)]

    def constant(self, key: str, data: np.ndarray) -> int:
        return self.plan.add_constant(key, data)

    def begin_layer(self, name: str, macs: int, min_bytes: int) -> int:
        """Start counting a new layer; roofline inputs are recorded for the report."""
        index = len(self.layer_names)
        self.buffers.next_layer()
        self.layer_names.append(name)
        self.layer_stats.append({"name": name, "macs": int(macs), "min_bytes": int(min_bytes)})
        self.program.layer(index)
        return index

    def record_weights(self, fmt_name: str, nbytes: int) -> None:
        """The current layer's packed weight constant: its format and DRAM bytes."""
        self.layer_stats[-1].update(weight_format=fmt_name, weight_bytes=int(nbytes))
