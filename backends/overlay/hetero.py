"""Compile a quantized module for the overlay, running what the overlay cannot run on the host.

A module every op of which the overlay runs compiles to a plain overlay artifact.  Otherwise
the module is partitioned (``partition.py``): each device partition is compiled to an overlay
artifact of its own, each host partition is kept as IR for the reference interpreter, and all
of them go into one heterogeneous artifact (``backends/artifact.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tcc.ir import Module, Op, print_module
from tcc.ir.host_tail import HostTail
from tcc.isa.target import TargetConfig, load_target

from ..artifact import Artifact, HeteroArtifact
from .compile import compile_overlay
from .errors import BackendError
from .partition import DEVICE, partition
from .placement import ModulePlacement, place_module


@dataclass(frozen=True)
class Fallback:
    """One op that would run on the host."""

    node: str  # the ONNX node it came from
    kind: str  # the IR op kind
    reason: str


class HostFallbackRefused(BackendError):
    """--no-host-fallback, and some ops cannot run on the overlay."""

    def __init__(self, fallbacks: list[Fallback], op_types: dict[str, str] | None = None):
        self.fallbacks = fallbacks
        lines = [f"{len(fallbacks)} op(s) cannot run on the overlay and --no-host-fallback forbids running "
                 "them on the host:"]
        for f in fallbacks:
            op_type = (op_types or {}).get(f.node, f.kind)
            lines.append(f"  node {f.node!r} ({op_type}): {f.reason}")
        super().__init__("\n".join(lines))


def fallbacks(module: Module, placement: ModulePlacement) -> list[Fallback]:
    """The ops that run on the host: those the overlay cannot run, then the host tail's nodes."""
    found = [Fallback(op.loc, op.kind, placement.of[id(op)].reason) for op in placement.host_ops(module)]
    tail = module.host_tail
    return found + ([Fallback(n.name, n.op_type, n.reason) for n in tail.nodes] if tail else [])


def compile_heterogeneous(module: Module, target: TargetConfig | None = None, host_fallback: bool = True,
                          progress: Callable[[int, int], None] | None = None,
                          phases: Callable[[str, float], None] | None = None) -> Artifact | HeteroArtifact:
    """The artifact running ``module``: plain when the overlay runs every op, heterogeneous when some
    run on the host or the module has a host tail (refused with HostFallbackRefused when
    ``host_fallback`` is False)."""
    target = target or load_target()
    demoted: dict[str, str] = {}
    while True:  # an op whose emission fails runs on the host; then place and compile again
        try:
            return _compile(module, target, host_fallback, demoted, progress, phases)
        except BackendError as error:
            if not host_fallback or error.op_name is None or error.op_name in demoted \
                    or isinstance(error, HostFallbackRefused):
                raise
            demoted[error.op_name] = error.reason


def _compile(module: Module, target: TargetConfig, host_fallback: bool, demoted: dict[str, str],
             progress, phases) -> Artifact | HeteroArtifact:
    placement = place_module(module, target, demoted)
    host = fallbacks(module, placement)
    if not host:
        return compile_overlay(module, target, progress=progress, phases=phases)
    if not host_fallback:
        raise HostFallbackRefused(host)
    parts = partition(module, placement)
    entries: list[dict] = []
    blobs: list[Artifact | str] = []
    for part in parts:
        sub = part.module
        entry = {"kind": part.kind, "inputs": [v.name for v in sub.inputs],
                 "outputs": [n for n, _ in sub.outputs], "nodes": _nodes(sub.ops)}
        if part.kind == DEVICE:
            blobs.append(compile_overlay(sub, target, phases=phases))
        else:
            blobs.append(print_module(sub))
        entries.append(entry)
    outputs = [{"name": n, "value": v.name} for n, v in module.outputs]
    if module.host_tail is not None:
        entry, outputs = _tail_entry(module, module.host_tail)
        entries.append(entry)
        blobs.append(module.host_tail.format())
    metadata = {
        "model": module.name,
        "inputs": [{"name": v.name, "value": v.name} for v in module.inputs],
        "outputs": outputs,
        "partitions": entries,
        "host_ops": [{"node": f.node, "kind": f.kind, "reason": f.reason} for f in host],
    }
    return HeteroArtifact(metadata, print_module(module), blobs)


def _tail_entry(module: Module, tail: HostTail) -> tuple[dict, list[dict]]:
    """The host tail's partition (its inputs: the values of the module outputs or inputs it reads;
    its outputs: the model outputs it makes) and the whole model's outputs."""
    values = {v.name: v.name for v in module.inputs} | {n: v.name for n, v in module.outputs}
    made = [n for n in tail.outputs if n not in dict(module.outputs)]
    entry = {"kind": "host", "graph": "onnx", "inputs": [values[n] for n in tail.inputs], "outputs": made,
             "nodes": [n.name for n in tail.nodes]}
    outputs = [{"name": n, "value": n if n in made else values[n]} for n in tail.outputs]
    return entry, outputs


def _nodes(ops: list[Op]) -> list[str]:
    seen: dict[str, None] = {}
    for op in ops:
        if op.kind != "const" and op.loc:
            seen.setdefault(op.loc)
    return list(seen)
