"""Quantized IR -> overlay program and artifact."""
from __future__ import annotations

import time

from typing import Callable

import numpy as np

from tcc.ir import Module, Value, constant_value, is_constant, print_module
from tcc.isa.target import TargetConfig, load_target

from ..artifact import FORMAT_VERSION, Artifact
from ..artifact_metadata import boundary_entry
from .context import Buffers, Context
from .emit_matmul import emit_matmul, plan_views
from .emit_matrix import conv_tiles_fit, emit_conv, emit_gemm, emit_scale
from .emit_misc import emit_eadd, emit_emul, emit_lut, emit_pool, emit_requant
from .emit_move import emit_concat, emit_layout, emit_lookup, plan_moves
from .emit_vector import emit_cvt, emit_cvt_rows, emit_vector
from .errors import BackendError, unsupported
from .layout import ELEMENT_BYTES, nbytes
from .memory import ActivationAddress, DramPlan, align, live_bytes, place_activations
from .program import Program
from .epilogue import fuse_epilogues, fused_kinds
from .placement import place_module
from .resident import drop_unread_stores
from .row_max import emit_row_max
from .steps import STEP_KINDS, Step, plan_layouts

def _live_steps(steps: list[Step], io) -> list[Step]:
    """Drop layout steps nothing reads any more (matmuls read and write through them by
    addressing) and those whose result another step now produces directly."""
    produced = {id(v) for s in steps if s.kind != "layout" for v in s.outputs}
    needed = {id(v) for _, v, _ in io.outputs}
    live = []
    for step in reversed(steps):
        if step.kind == "layout" and (any(id(r) in produced for r in step.outputs)
                                      or not any(id(r) in needed for r in step.outputs)):
            continue
        if step.kind == "layout":  # results of a split nothing reads are not materialized
            step.info["unused"] = {id(r) for r in step.outputs if id(r) not in needed}
            step.outputs = [r for r in step.outputs if id(r) in needed]
        live.append(step)
        needed.update(id(v) for v in step.inputs)
    return live[::-1]


def _scales_early(steps: list[Step], alias: dict) -> list[Step]:
    """Each scale step (x times a constant: an attention's scaled queries and keys) one step after
    the last step that writes what it reads, instead of where the graph's order puts it (after
    every projection): its input's last tile is requantized while that next step runs, and the
    scaled keys' round trip through DRAM into wbuf (a product's weights) overlaps the next
    projection instead of delaying the product of queries and keys."""
    def root(v) -> int:
        while id(v) in alias:
            v = alias[id(v)][0]
        return id(v)

    out: list[Step] = []
    for step in steps:
        if step.kind != "scale":
            out.append(step)
            continue
        reads = {root(v) for v in step.inputs if not is_constant(v)}  # (plan_views: its view's root)
        writes = {root(v) for v in step.outputs}
        last = max((i for i, s in enumerate(out) if any(root(v) in reads or root(v) in writes for v in s.outputs)
                    or any(root(v) in writes for v in s.inputs)), default=-1)
        out.insert(min(last + 2, len(out)), step)
    return out


def _aliases(steps) -> dict[int, tuple[object, int]]:
    """Layout steps whose result is a contiguous run of their source's bytes (a reshape, a slice of
    leading rows, one part of a split along the last axis): the result shares the source's memory
    from a byte offset.  Maps to (source, byte offset)."""
    alias = {}
    for step in steps:
        if step.kind != "layout":
            continue
        source = step.info["source"]
        if is_constant(source):
            continue
        elem = ELEMENT_BYTES[source.type.dtype]
        for r, mapping in zip(step.ops[0].results, step.info["maps"]):
            if mapping.size != r.type.size or mapping.size == 0:
                continue
            start = int(mapping[0])
            if np.array_equal(mapping, np.arange(start, start + mapping.size)):
                alias[id(r)] = (source, start * elem)
    return alias


class PhaseClock:
    """Reports the wall time of consecutive backend phases: ``clock.done(name)`` ends one."""

    def __init__(self, report: Callable[[str, float], None] | None):
        self.report, self.start = report, time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        if self.report is not None:
            self.report(f"backend: {name}", now - self.start)
        self.start = now


def compile_overlay(module: Module, target: TargetConfig | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    phases: Callable[[str, float], None] | None = None) -> Artifact:
    """The artifact running ``module`` on ``target``; ``progress(steps_done, steps)``, if given, is
    called after each step's code is emitted, ``phases(name, seconds)`` after each backend phase."""
    clock = PhaseClock(phases)
    target = target or load_target()
    placement = place_module(module, target)
    host = placement.host_ops(module)
    if host:
        raise unsupported(host[0], placement.of[id(host[0])].reason)
    io, steps = placement.io, placement.steps
    layouts = plan_layouts(steps, io)
    buffers = Buffers.of(target)
    steps = fuse_epilogues(steps, {id(v) for _, v, _ in io.outputs}, buffers.pbuf_h,
                           lambda step, residual, lut: conv_tiles_fit(step, buffers, target, residual, lut))
    plan_views(steps, io, layouts, buffers)
    plan_moves(steps, io, layouts)
    clock.done("placement and layouts")
    steps = _live_steps(steps, io)
    alias = _aliases(steps)
    steps = _scales_early(steps, alias)

    def root(v):
        while id(v) in alias:
            v = alias[id(v)][0]
        return v

    def offset(v) -> int:
        """Byte offset of ``v`` in its root's memory."""
        total = 0
        while id(v) in alias:
            v, by = alias[id(v)]
            total += by
        return total

    # Liveness over step indices (host inputs exist before step 0, outputs after the last).
    sizes: dict[int, int] = {}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    values: dict[int, Value] = {}
    for _, v, _ in io.inputs:
        r = root(v)
        values[id(r)], sizes[id(r)], first[id(r)] = r, nbytes(r.type), 0
    for i, step in enumerate(steps):
        for v in step.outputs:
            r = root(v)
            if id(r) not in sizes:
                values[id(r)], sizes[id(r)], first[id(r)] = r, nbytes(r.type), i
        for v in step.inputs + step.outputs:
            if not is_constant(v):
                last[id(root(v))] = max(last.get(id(root(v)), 0), i)
    pinned = {id(root(v)) for _, v, _ in io.inputs + io.outputs}
    missing = [v for _, v, _ in io.outputs if id(root(v)) not in sizes]
    if missing:
        raise BackendError(f"output value %{missing[0].name} is not produced on the device")
    offsets, act_bytes = place_activations(sizes, first, last, pinned)
    live = live_bytes(sizes, first, last, pinned, len(steps))
    clock.done("liveness and DRAM plan")

    plan = DramPlan()
    programs = [Program(keep_on_chip=target.cores == 1) for _ in range(target.cores)]
    ctx = Context(target, programs[0], plan, buffers, layouts)
    # Constants are placed while emitting; activations go after them, so their addresses stay
    # relocatable (ActivationAddress) until emission is done.
    for key, off in offsets.items():
        ctx.addresses[key] = ActivationAddress(off)
    for step in steps:
        for v in step.inputs + step.outputs:
            if is_constant(v):  # a constant operand (e.g. a position embedding) lives with the weights
                data = layouts.to_physical(constant_value(v), v)
                ctx.addresses[id(v)] = plan.add_constant(f"t:{v.name}", data.astype(data.dtype.newbyteorder("<")))
            else:
                ctx.addresses[id(v)] = ctx.addresses[id(root(v))] + offset(v)
    modes = ["int8"] * target.cores
    for done, step in enumerate(steps, 1):
        ctx.next_step = steps[done] if done < len(steps) else None
        want = "int8" if "rescale" in step.info else STEP_KINDS[step.kind].mode  # a concat's fused requants
        if step.kind != "conv":
            ctx.emit_handed_store()
        first_layer = len(ctx.layer_stats)
        first_instruction = len(ctx.program.instructions)
        workers = range(target.cores) if step.kind in SPLIT_KINDS else range(1)
        buffers.elementwise = step.kind in ELEMENTWISE_KINDS
        for core in workers:  # each core emits its share of the step's tiles, with the same layers
            del ctx.layer_names[first_layer:], ctx.layer_stats[first_layer:]
            ctx.program, ctx.core, ctx.cores = programs[core], core, len(workers)
            if want is not None and want != modes[core]:
                if step.kind == "cvt_in":  # a softmax's row maxima on the int8 scores, beside the switch
                    emit_row_max(ctx, step)
                ctx.program.emit("mode", to=want)
                modes[core] = want
            if step.kind == "layout":
                emit_layout(ctx, step, alias)
            else:
                EMITTERS[step.kind](ctx, step)
        for stats in ctx.layer_stats[first_layer:]:
            stats.update(kind=step.kind, mode=want or modes[0], live_bytes=live[done - 1])
            if fused_kinds(step):
                stats["fused"] = fused_kinds(step)
        if target.cores > 1:  # the next step reads what every core wrote
            for program in programs:
                program.emit("barrier")
        else:
            ctx.mark_for_weights(first_instruction)
        if progress is not None:
            progress(done, len(steps))
    ctx.emit_handed_store()
    if target.cores == 1:  # stores of what every reader took on chip (resident.py)
        outputs = [(offsets[id(root(v))] + offset(v), offsets[id(root(v))] + offset(v) + nbytes(v.type))
                   for _, v, _ in io.outputs]
        programs[0].instructions = drop_unread_stores(programs[0].instructions, outputs)
    for program in programs:
        program.emit("halt")
    clock.done("code emission")

    base = align(len(plan.constants), 4096)
    streams = [_encode(program, base) for program in programs]
    words = np.concatenate(streams)
    entries = np.cumsum([0] + [len(w) for w in streams[:-1]]).tolist()
    clock.done("encoding")
    dram_total = base + act_bytes
    if dram_total > target.dram_bytes:
        raise BackendError(f"the model needs {dram_total} bytes of DRAM, the target has {target.dram_bytes}")

    def device(name, v, ops):
        r = root(v)
        return {"name": name, "value": v.name, "boundary": boundary_entry(ops),
                "address": base + offsets[id(r)] + offset(v), "shape": list(v.type.shape), "dtype": v.type.dtype,
                "perm": list(layouts.perm(v))}

    metadata = {
        "format_version": FORMAT_VERSION,
        "model": module.name,
        "target": target.to_dict(),
        "inputs": [device(n, v, ops) for n, v, ops in io.inputs],
        "outputs": [device(n, v, ops) for n, v, ops in io.outputs],
        "layers": ctx.layer_stats,
        "dram_bytes": dram_total,
        "activation_base": base,
    }
    if target.cores > 1:  # where each core's instruction stream starts in the program
        metadata["core_entries"] = entries
    artifact = Artifact(metadata, words, bytes(plan.constants), print_module(module))
    clock.done("IR text")
    return artifact


def _encode(program: Program, base: int) -> np.ndarray:
    """Words of the program, with activation addresses resolved to lie past the constants at ``base``."""
    from tcc.isa.encoding import Instruction, encode_program

    fixed = []
    for mnemonic, fields in program.instructions:
        if isinstance(fields.get("dram"), ActivationAddress):
            fields = dict(fields, dram=fields["dram"].resolve(base))
        fixed.append(Instruction.of(mnemonic, **fields))
    return encode_program(fixed)


# Steps whose layers, when tiny, take slots of their own (context.Buffers.next_layer): the element-wise
# and data-movement chains of an unrolled recurrence (a time step's gemm with its gate add, table
# lookups, conversions and vector ops).  Convolutions, pools and matmuls keep the quarters' start
# (measured: tiny ones there cost DenseNet-121 2% more cycles).
ELEMENTWISE_KINDS = ("gemm", "eadd", "emul", "lut", "requant", "cvt_in", "cvt_out", "vector", "concat", "layout")
# Steps whose tiles are spread over the cores; the others run on core 0 while the rest wait at the barrier.
SPLIT_KINDS = ("conv", "gemm", "eadd", "pool", "concat", "lut", "requant", "vector", "cvt_in", "cvt_out")
EMITTERS = {"conv": emit_conv, "gemm": emit_gemm, "matmul": emit_matmul, "scale": emit_scale, "eadd": emit_eadd,
            "emul": emit_emul, "lut": emit_lut,
            "requant": emit_requant, "pool": emit_pool, "concat": emit_concat, "lookup": emit_lookup,
            "cvt_in": emit_cvt, "cvt_out": emit_cvt, "cvt_rows": emit_cvt_rows, "vector": emit_vector}
