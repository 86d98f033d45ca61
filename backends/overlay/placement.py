"""Where each op of a quantized module runs: a unit of the overlay, or the host.

One definition, read by the code generator (``build_steps``), by the partitioner of heterogeneous
artifacts (``partition.py``) and by ``tcc explain``: an op runs on the device when it belongs to a
step the backend can emit (``steps._match``) and that step passes the static checks below (vector
ops need a vector-unit lowering and must tile into the vector buffer).  Everything else runs on the
host, on the reference interpreter, with the reason recorded.  Conversions between f32 and int8
or bf16 (quantizing an f32 input, dequantizing an output or the operand of an f32 host op) are
host work in every artifact: host boundaries are where int8 tensors are (de)quantized.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tcc.ir import Module, Op
from tcc.isa.target import TargetConfig

from .errors import BackendError
from .steps import DEVICE_DTYPES, STEP_KINDS, HostIO, Step, find_host_io, host_reason, match_step

HOST = "host"
BOUNDARY_REASON = "converts between a model or host tensor and a device tensor (a boundary conversion)"


@dataclass
class Placement:
    """Where one op runs: ``unit`` is a step kind's (STEP_KINDS) or ``host``; ``step`` the device step it
    belongs to; ``reason`` says why an op runs on the host."""

    unit: str
    step: Step | None = None
    reason: str = ""
    boundary: bool = False  # an f32 <-> int8/bf16 conversion at a model or host boundary


@dataclass
class ModulePlacement:
    io: HostIO
    steps: list[Step] = field(default_factory=list)  # device steps in program order
    of: dict[int, Placement] = field(default_factory=dict)  # id(op) -> placement

    def host_ops(self, module: Module) -> list[Op]:
        """Ops that fall back to the host (not counting model-boundary conversions)."""
        return [op for op in module.ops if op.kind != "const" and self.of[id(op)].unit == HOST
                and not self.of[id(op)].boundary]


def vector_step_problem(step: Step, target: TargetConfig) -> str | None:
    """Why a bf16 vector step cannot run on the SIMD lanes, or None."""
    from .vector_columns import column_plan
    from .vector_lowering import record, tile_shape, vector_lowering

    op = step.ops[0]
    if len(op.results) != 1:
        return f"the vector unit writes one result; {op.kind} has {len(op.results)}"
    try:
        lowering = vector_lowering(op)
        code = record(op, lowering)
        try:
            tile_shape(op, lowering, code, target.vbuf_bytes)
        except BackendError:  # one row does not fit: column tiles, a pass per reduction
            column_plan(op, lowering, code, target.vbuf_bytes)
    except BackendError as exc:
        return str(exc).rsplit(": ", 1)[-1]
    return None


def is_host_conversion(op: Op) -> bool:
    """An op converting between a device tensor (int8, bf16) and an f32 one: it exists only because
    an f32 model input, output or host op needs it, and always runs on the host."""
    if op.kind not in ("quantize", "dequantize", "cast"):
        return False
    dtypes = {op.x.type.dtype, op.result.type.dtype}
    return "f32" in dtypes and len(dtypes) == 2 and dtypes <= {"f32", *DEVICE_DTYPES}


def _problem(step: Step, target: TargetConfig) -> str | None:
    """Why ``step`` cannot be generated for ``target``, where that is known before emission (so
    `tcc explain` shows it); hetero.py demotes whatever else emission refuses."""
    if step.kind == "vector":
        return vector_step_problem(step, target)
    if step.kind == "pool":
        from .context import Buffers
        from .emit_misc import POOL_ROW_TOO_WIDE, op_pool_geometry
        from .pool_tiles import pool_tiles_exist

        return None if pool_tiles_exist(op_pool_geometry(step.ops[0]), Buffers.of(target).abuf_q) else POOL_ROW_TOO_WIDE
    if step.kind == "lookup":
        from .context import Buffers
        from .emit_move import LOOKUP_ROW_TOO_WIDE, lookup_rows_per_tile

        return LOOKUP_ROW_TOO_WIDE if lookup_rows_per_tile(step.inputs[0], Buffers.of(target)) < 1 else None
    return None


def place_module(module: Module, target: TargetConfig, demoted: dict[str, str] | None = None) -> ModulePlacement:
    """The placement of every non-constant op of ``module`` (quantized IR) on ``target``; a step holding
    an op named in ``demoted`` (result name -> why) runs on the host (its emission failed: hetero.py)."""
    demoted = demoted or {}
    io = find_host_io(module)
    placement = ModulePlacement(io)
    boundary = {id(op) for _, _, ops in io.inputs + io.outputs for op in ops}
    position = {id(op): i for i, op in enumerate(module.ops)}
    for op in module.ops:
        if op.kind == "const" or id(op) in placement.of:
            continue
        if id(op) in boundary or is_host_conversion(op):
            placement.of[id(op)] = Placement(HOST, reason=BOUNDARY_REASON, boundary=True)
            continue
        step = match_step(op, module)
        problem = host_reason(op) if step is None else _problem(step, target)
        if step is not None and problem is None:
            problem = next((demoted[o.results[0].name] for o in step.ops if o.results[0].name in demoted), None)
        if step is not None and any(id(o) in placement.of for o in step.ops):
            step, problem = None, "its step overlaps an op placed before it"
        if problem is not None:
            placement.of[id(op)] = Placement(HOST, reason=problem)
            continue
        step.name = step.name or op.loc
        for o in step.ops:
            placement.of[id(o)] = Placement(STEP_KINDS[step.kind].unit, step)
        placement.steps.append(step)
    placement.steps.sort(key=lambda s: max(position[id(o)] for o in s.ops))
    return placement
