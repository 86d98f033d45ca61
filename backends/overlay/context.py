"""What every emitter needs: the program, the target's buffer partition and tensor addresses."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tcc.ir import Value
from tcc.isa.target import TargetConfig

from .layout import LayoutPlan
from .memory import ActivationAddress, DramPlan
from .program import Program
from .steps import Step


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
    sub: int = 0  # a tiny layer's byte offset into its abuf and vbuf slots (``next_layer``)
    tiny_layers: int = 0  # tiny layers so far
    tiny: bool = False  # whether this layer is tiny
    elementwise: bool = False  # whether the step being emitted is element-wise (``next_layer``)
    small_maps: int = 0  # small results placed so far (``small_map``)

    @classmethod
    def of(cls, target: TargetConfig) -> "Buffers":
        return cls(target.abuf_bytes // 4 // 64 * 64, target.wbuf_bytes // 2 // 64 * 64,
                   target.acc_bytes // 2 // 64 * 64, target.pbuf_bytes // 2 // 64 * 64,
                   target.vbuf_bytes // 4 // 64 * 64)

    def next_layer(self, min_bytes: int | None = None) -> None:
        """The next layer's slots.  A tiny element-wise layer (every tensor it moves together
        ``TINY_LAYER`` bytes at most, so every tile of it too) takes its abuf and vbuf slots at one of
        ``SUB_SLOTS`` offsets into the quarters, a different one than the tiny layers just
        before: a chain of tiny layers (an unrolled LSTM's time step) leaves each result where
        the next layers read it on chip (resident.py) instead of overwriting it."""
        self.turn = {kind: last + 1 for kind, last in self.used.items()}
        self.tiny = self.elementwise and min_bytes is not None and min_bytes <= TINY_LAYER
        self.sub = (self.tiny_layers // 2 % SUB_SLOTS) * TINY_LAYER if self.tiny else 0
        self.tiny_layers += self.tiny

    def _slot(self, kind: str, i: int, count: int) -> int:
        at = self.turn.get(kind, 0) + i
        self.used[kind] = at
        return at % count

    def a_in(self, i: int, half: bool = False) -> int:
        """Input slot ``i``: a quarter of abuf (0 or 1, in turn); with ``half`` (a tile of at most half
        a quarter) the lower or upper half of it, in turn every second slot, so four input tiles are
        in flight: a layer's first loads do not wait for the previous layer's last two tiles."""
        if not half:
            return self._slot("a_in", i, 2) * self.abuf_q + self.sub
        at = self._slot("a_in", i, 4)
        return at % 2 * self.abuf_q + at // 2 * (self.abuf_q // 2) + self.sub

    def a_out(self, i: int) -> int:
        return (2 + self._slot("a_out", i, 2)) * self.abuf_q + self.sub

    def w(self, i: int) -> int:
        return self._slot("w", i, 2) * self.wbuf_h

    def acc(self, i: int) -> int:
        return self._slot("acc", i, 2) * self.acc_h

    def p(self, i: int) -> int:
        return self._slot("p", i, 2) * self.pbuf_h

    def v(self, i: int) -> int:
        return self._slot("v", i, 4) * self.vbuf_q + self.sub

    def small_map(self) -> int:
        """Where the next small result (at most a quarter's quarter, less ``sub``: a transformer's
        projections, scaled heads) goes: the output quarters' first and second quarters in turn,
        so the last three such results stay in abuf for the layers that read them (resident.py:
        an attention's Q, K and V each read by a later step)."""
        at = self.small_maps % 4
        self.small_maps += 1
        return (2 + at % 2) * self.abuf_q + at // 2 * (self.abuf_q // 4) + self.sub


# A tiny layer's slots sit at one of SUB_SLOTS offsets of TINY_LAYER bytes into the quarters
# (Buffers.next_layer): at most 28 KiB in, so a tile of up to TINY_LAYER bytes placed half a quarter
# further (a gemm's skip tile, emul's second half) still ends inside the quarter.
TINY_LAYER = 4096
SUB_SLOTS = 8

# Steps after a compute-bound layer whose weights may load at its end: ShuffleNet's unit is a
# compute-bound conv, a channel shuffle, a DRAM-bound depthwise conv and the conv that needs them.
WEIGHT_MARK_STEPS = 3
# Steps after a conv that leaves the DRAM channel idle in its tile loop whose weights may load in
# pieces at its end: ShuffleNetV2's last 1x1 conv's 84 KB first channel tile loads over the ten
# small latency-bound layers before it.
IDLE_MARK_STEPS = 12
# Steps more that a mark stays for a product's later weight chunks (Context.early_weights with
# ``whole``): ConvNeXt-T's last stage, DRAM-bound, loads its 130 KB of chunks over the idle channel
# of the stages before it.  (Every early load using marks this old made BERT's products wait.)
LATER_CHUNK_MARK_STEPS = 200


def core_share(core: int, cores: int, count: int) -> range:
    """Core ``core``'s contiguous share of ``count`` tiles spread over ``cores`` cores (the tile
    search costs each core's share as emission gives it: tiling.busiest_share_cycles)."""
    return range(core * count // cores, (core + 1) * count // cores)


@dataclass
class WeightMark:
    """The end of a layer where a later layer's weights may load early (Context.mark_for_weights)."""

    at: int  # the instruction index (Program.mark)
    regs: dict[str, int]  # the register values there
    begin: int  # the layer's first instruction
    slack: int  # the bytes the DRAM channel may still carry there
    steps: int  # steps left before the mark is dropped (then LATER_CHUNK_MARK_STEPS more for later chunks)
    layer: int
    idle: bool  # a mark of a conv's idle channel cycles (else a compute-bound layer's or a vector op's)


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
    # the ends of the latest layers that leave the DRAM channel idle, where a later layer's weights
    # may load early
    weight_marks: list[WeightMark] = field(default_factory=list)
    # per conv layer, the cycles its tile loop leaves the DRAM channel idle (tiling.channel_idle_cycles)
    channel_idle: dict[int, int] = field(default_factory=dict)
    # a step's last store (Program.dma arguments) and its layer, for the next conv to emit after its
    # first input load (later_store.LaterStore)
    handed_store: tuple | None = None
    # the conv tile search's answer per ConvGeometry: a network's repeated layers search once
    conv_tiles: dict = field(default_factory=dict)
    # weights loaded early (early_weights): (layer, wbuf lo, hi), the layer reading them
    early_loads: list = field(default_factory=list)
    # a one-tile bf16 vector op's first instruction (Program.mark) and its modeled cycles: the DRAM
    # channel is free while it runs (mark_for_weights)
    vector_mark: tuple | None = None
    # the step after the one being emitted (a conversion places its result where a vector op reads it)
    next_step: Step | None = None
    # a softmax's int8 row maxima pooled before the switch to bf16: (abuf address, rows, the vbuf
    # slot the conversion puts them in) (row_max.py)
    row_max: tuple | None = None

    def share(self, count: int) -> range:
        """This core's contiguous share of ``count`` tiles (all of them when one core emits)."""
        return core_share(self.core, self.cores, count)

    def addr(self, value: Value) -> int | ActivationAddress:
        return self.addresses[id(value)]

    def constant(self, key: str, data: np.ndarray) -> int:
        return self.plan.add_constant(key, data)

    def begin_layer(self, name: str, macs: int, min_bytes: int) -> int:
        """Start counting a new layer; roofline inputs are recorded for the report."""
        index = len(self.layer_names)
        self.buffers.next_layer(min_bytes)
        self.layer_names.append(name)
        self.layer_stats.append({"name": name, "macs": int(macs), "min_bytes": int(min_bytes)})
        self.program.layer(index)
        return index

    def mark_for_weights(self, first_instruction: int) -> None:
        """After a layer's code: the point where the DRAM channel is free for the weights of a layer
        after it, for as many bytes as the layer leaves the channel idle (its slack).  A
        compute-bound layer (its MACs take the array longer than its bytes take the DRAM channel)
        leaves the difference.  A one-tile bf16 vector op (``vector_mark``: a LayerNorm or softmax
        between two products) frees the channel from its first instruction on, for the cycles the
        cost model gives its code.  A conv that is neither leaves its tile loop's idle channel
        cycles as emitted (``channel_idle``, tiling.channel_idle_cycles: small latency-bound convs
        whose maps stay on chip leave most of theirs).  Marks older than ``WEIGHT_MARK_STEPS``
        (``IDLE_MARK_STEPS``) steps serve only a product's later weight chunks, for
        ``LATER_CHUNK_MARK_STEPS`` steps more."""
        for mark in self.weight_marks:
            mark.steps -= 1
        self.weight_marks = [mark for mark in self.weight_marks if mark.steps > -LATER_CHUNK_MARK_STEPS]
        stats = self.layer_stats[-1] if self.layer_stats else None
        if stats is None:
            return
        t = self.target
        layer = len(self.layer_names) - 1
        vector, self.vector_mark = self.vector_mark, None
        if vector is not None:  # a one-tile vector op: from its first instruction on, for its cycles
            (at, regs), cycles = vector
            slack = cycles * t.dram_bytes_per_cycle - stats["min_bytes"]
            if slack > 0:
                self.weight_marks.append(WeightMark(at, regs, first_instruction, slack, WEIGHT_MARK_STEPS, layer, False))
                return
        bound = stats["macs"] * t.dram_bytes_per_cycle // (t.array_rows * t.array_cols) - stats["min_bytes"]
        idle = self.channel_idle.get(layer, 0) * t.dram_bytes_per_cycle
        if bound > 0 or idle > 0:
            at, regs = self.program.mark()
            self.weight_marks.append(WeightMark(at, regs, first_instruction, max(bound, idle),
                                                WEIGHT_MARK_STEPS if bound > 0 else IDLE_MARK_STEPS, layer, bound <= 0))

    def early_weights(self, dram: int, nbytes: int, whole: bool = False) -> int | None:
        """The wbuf address of ``nbytes`` of weights at ``dram`` whose first bytes (or all) load before
        their layer, or None; called where their load would be, it loads the rest there (weights
        wbuf still holds from an earlier load are not loaded again).
        They load in pieces at the ends of the latest earlier layers that leave the DRAM channel
        idle (``mark_for_weights``), each piece no larger than its layer's slack and after the
        activation loads there (``_piece_point``), so no layer's own transfers wait behind them
        (whole at the latest compute-bound layer's end where its slack takes them).  The pieces
        take the top of a wbuf half that no instruction since the earliest piece's layer began
        writes, nor weights loaded early for a layer after it (weights stay as loaded until read,
        and the load waits for no matmul of that layer).  With ``whole``, only where the pieces
        take all of the weights (a product's later K chunks: a part loaded behind would wait in
        the layer's own code as the chunk's own load does), at marks up to
        ``LATER_CHUNK_MARK_STEPS`` steps older too."""
        marks = [mark for mark in self.weight_marks if whole or mark.steps > 0]
        if not marks or self.cores > 1:
            return None
        held = self.program.held_weights(dram, nbytes)
        if held is not None:  # still in wbuf where an earlier load put them: no load at all
            return held
        size = -(-nbytes // 64) * 64
        if size > self.buffers.wbuf_h // 2:
            return None
        plans = []  # each a list of (mark, piece), latest mark first, in the order they are tried
        bound = [mark for mark in marks if not mark.idle]
        if bound and bound[-1].slack >= nbytes:  # the latest compute-bound (or vector) mark takes them whole
            plans.append([(bound[-1], size)])
        chosen, covered = [], 0  # the latest marks first, until the pieces cover the weights
        for mark in reversed(marks):
            piece = min(mark.slack // 64 * 64, size - covered)
            if piece > 0:
                chosen.append((mark, piece))
                covered += piece
            if covered >= size:
                break
        plans += [chosen[:count] for count in range(len(chosen), 0, -1)]  # a later earliest piece: fewer writes
        if whole:  # one piece, at the latest mark whose slack takes it
            plans = [[(mark, size)] for mark in reversed(marks) if mark.slack >= size]
        for plan in plans:
            lo = self._free_wbuf(plan[-1][0], size)
            if lo is not None:
                loaded = self._load_pieces(plan, lo, dram, nbytes)
                if loaded < nbytes:  # the rest behind them, in the layer's own code
                    self.program.dma("load", "wbuf", lo + loaded, dram + loaded, rows=1, row_bytes=nbytes - loaded)
                return lo
        return None

    def _piece_point(self, mark: WeightMark) -> tuple[int, dict[str, int]]:
        """Where a piece for ``mark`` goes, and the register values there: at a compute-bound layer's
        end (or a vector op's start), before the loads after it (they wait for its results anyway); at a latency-bound
        conv's end, after the last activation load between the mark and the next one (or the end
        of the program so far), which the piece would hold back on the in-order load unit."""
        instructions = self.program.instructions
        if not mark.idle:  # the loads after it wait for that layer's results: the piece goes first
            return mark.at, mark.regs
        later = [other.at for other in self.weight_marks if other.at > mark.at]
        limit = min(later, default=len(instructions))
        at = mark.at
        for i in range(limit - 1, mark.at - 1, -1):
            mnemonic, fields = instructions[i]
            if mnemonic == "load" and fields["buf"] in ("abuf", "vbuf"):
                at = i + 1
                break
        regs = dict(mark.regs)
        for mnemonic, fields in instructions[mark.at:at]:
            if mnemonic == "setr":
                regs[fields["reg"]] = fields["value"]
        return at, regs

    def _free_wbuf(self, mark: WeightMark, size: int) -> int | None:
        """The top of a wbuf half, ``size`` bytes below every write since ``mark``'s layer began."""
        writes = [(lo, hi) for i, lo, hi in self.program.wbuf_writes if i >= mark.begin]
        writes += [(lo, hi) for layer, lo, hi in self.early_loads if layer >= mark.layer]
        if any(hi is None for _, hi in writes):
            return None
        half = self.buffers.wbuf_h
        for top in (half, 2 * half):  # the highest place in a half below every write there
            for end in [top] + sorted((lo for lo, hi in writes if top - half <= lo < top), reverse=True):
                lo = end - size
                if lo >= top - half and not any(w_lo < lo + size and lo < w_hi for w_lo, w_hi in writes):
                    return lo
        return None

    def _load_pieces(self, chosen: list, lo: int, dram: int, nbytes: int) -> int:
        """Load the weights' first bytes at ``lo`` in ``chosen``'s pieces, the earliest mark's piece
        first in the weights; returns the bytes loaded."""
        layer = len(self.layer_names) - 1
        offset = 0
        for mark, piece in reversed(chosen):  # earliest mark first
            piece = min(piece, nbytes - offset)
            at, regs = self._piece_point(mark)
            inserted = self.program.load_at((at, regs), "wbuf", lo + offset, dram + offset, piece, layer)
            for other in self.weight_marks:  # instruction indices after the insertion move on
                if other is not mark and other.at >= at:
                    other.at += inserted
                if other.begin > at:
                    other.begin += inserted
            mark.slack -= piece
            offset += piece
        self.early_loads.append((layer, lo, lo + offset))
        return offset

    def hand_over_store(self, store: tuple[tuple, dict] | None) -> None:
        """``store`` (``Program.dma`` arguments of a step's last store) left for the next step: a
        conv emits it after its first input load (later_store.LaterStore), any other step before
        its own code (compile.py).  On several cores (barriers between steps) it is emitted now."""
        if store is not None and self.target.cores == 1:
            self.handed_store = (store, len(self.layer_names) - 1)
        else:
            self.emit_handed_store(store)

    def emit_handed_store(self, store: tuple[tuple, dict] | None = None) -> None:
        """``store`` (``Program.dma`` arguments), else the store a step left for the next one
        (Context.hand_over_store), now."""
        if store is None and self.handed_store is not None:  # still in the layer that handed it over
            (store, _), self.handed_store = self.handed_store, None
        if store is not None:
            self.program.dma("store", *store[0], **store[1])

    def record_weights(self, fmt_name: str, nbytes: int) -> None:
        """The current layer's packed weight constant: its format and DRAM bytes."""
        self.layer_stats[-1].update(weight_format=fmt_name, weight_bytes=int(nbytes))
