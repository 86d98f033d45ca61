"""`tcc explain`: where each ONNX node of a model will run on the overlay, and why not on the device.

The same passes as ``tcc compile -t overlay`` run (one at a time, to see which pass folds a node
away), then the overlay's placement (``backends/overlay/placement.py``, the function the code
generator and the partitioner use) is read per node.  No code is generated and nothing is
simulated.  Without calibration data the quantizer runs on placeholder ranges: the int8/bf16
structure, hence the placement, does not depend on the ranges' values.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from tcc.ir import Module, Op
from tcc.ir.escape import one_line
from tcc.passes import Pass, PassInstrumentation
from tcc.passes.quantize.calibration import DEFAULT_CALIBRATION

#: What each pass does to the nodes whose ops it removes.
FOLDED_BY = {
    "import": "computed at compile time (constant inputs) or a pass-through",
    "fold-constants": "computed at compile time (constant inputs)",
    "recognize": "merged into a recognized op",
    "fold-batchnorm": "folded into the convolution before it",
    "batchnorm-to-conv": "folded into a convolution",
    "fold-affine": "folded into a neighbouring linear layer",
    "quantize": "fused into the requantization of the layer before it",
    "mixed-precision": "fused into the requantization of the layer before it",
    "dce": "removed: nothing uses its result",
}


BOUNDARY = "host (boundary)"


@dataclass
class NodePlacement:
    name: str
    op_type: str
    where: str  # "host" when any of its work runs there, else its units joined by " + ", "folded", or
    # BOUNDARY when its only ops convert at a model or host boundary (the runtime's conversions)
    units: list[str] = field(default_factory=list)  # every unit its ops run on (the host included)
    reasons: list[str] = field(default_factory=list)  # why on the host, or what folded it
    macs: int = 0
    device_macs: int = 0


@dataclass
class Explanation:
    model: str
    nodes: list[NodePlacement]
    calibrated: bool

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes)

    @property
    def device_macs(self) -> int:
        return sum(n.device_macs for n in self.nodes)

    @property
    def device_mac_fraction(self) -> float:
        return self.device_macs / self.macs if self.macs else 1.0

    def host_nodes(self) -> list[NodePlacement]:
        return [n for n in self.nodes if n.where == "host"]

    def to_json(self) -> dict:
        return {"model": self.model, "calibrated": self.calibrated, "macs": self.macs,
                "device_macs": self.device_macs, "device_mac_fraction": self.device_mac_fraction,
                "nodes": [asdict(n) for n in self.nodes]}


def op_macs(op: Op) -> int:
    """Multiply-accumulates of a matrix op (conv, conv_transpose, linear, matmul, a two-operand einsum, float or
    quantized); 0 otherwise."""
    kind = op.kind[1:] if op.kind in ("qconv", "qlinear", "qmatmul") else op.kind
    if kind == "conv":
        return op.result.type.size * int(np.prod(op.w.type.shape[1:]))
    if kind == "conv_transpose":  # every input element meets (M / group) * kernel weights
        return op.x.type.size * int(np.prod(op.w.type.shape[1:]))
    if kind in ("linear", "matmul"):
        k = (op.a if kind == "matmul" else op.x).type.shape[-1]
        return op.result.type.size * k
    if kind == "einsum" and len(op.operands) == 2:  # one multiply-accumulate per combination of letters
        letters = op.equation.replace(" ", "").split("->")[0].split(",")
        sizes = {c: d for part, v in zip(letters, op.operands) for c, d in zip(part, v.type.shape) if c != "."}
        return int(np.prod(list(sizes.values()), dtype=np.int64)) if "." not in "".join(letters) else 0
    return 0


class _PlaceholderRanges(dict):
    """Calibration ranges for a placement-only quantization: [-1, 1] for every value."""

    def get(self, key, default=None):
        return (-1.0, 1.0)


@dataclass
class _PlaceholderQuantize(Pass):
    """``quantize`` without calibration data: [-1, 1] ranges everywhere (placement does not depend on them)."""

    name = "quantize"
    weights: str = "int8"
    symmetric: bool = False
    rounding: str = "half_even"

    def apply(self, module: Module) -> None:
        from tcc.passes.quantize import LoweringConfig, lower_module

        config = LoweringConfig(weights=self.weights, symmetric=self.symmetric, rounding=self.rounding)
        module.take_body(lower_module(module, _PlaceholderRanges(), config))


class _FoldedBy(PassInstrumentation):
    """Which pass made each ONNX node's ops disappear (``gone``: node name -> pass name)."""

    def __init__(self, gone: dict[str, str]):
        self.gone = gone
        self.present: set[str] = set()

    def before_pipeline(self, module: Module, passes) -> None:
        self.present = {op.loc for op in module.ops if op.kind != "const"}

    def after_pass(self, p: Pass, module: Module) -> None:
        now = {op.loc for op in module.ops if op.kind != "const"}
        self.gone.update({loc: p.name for loc in self.present - now if loc not in self.gone})
        self.present = now


def _passes(calib, method, weights) -> list[Pass]:
    """``tcc compile -t overlay``'s passes; without ``calib`` the quantization uses placeholder ranges."""
    from tcc.driver import CompileOptions, compile_pipeline
    from tcc.passes.quantize import Quantize

    pipeline = compile_pipeline("overlay", CompileOptions(calib=str(calib) if calib else "", method=method,
                                                          weights=weights))
    return [_PlaceholderQuantize(p.weights, p.symmetric, p.rounding) if isinstance(p, Quantize) and not calib else p
            for p in pipeline]


def explain(model, target=None, calib=None, input_shapes=None, method=DEFAULT_CALIBRATION, weights="int8") -> Explanation:
    """Placement of every node of the ONNX ``model`` on the overlay ``target``."""
    import onnx

    from tcc.backends.overlay.placement import BOUNDARY_REASON, HOST, place_module
    from tcc.frontend import import_onnx
    from tcc.frontend.errors import node_label
    from tcc.isa.target import load_target
    from tcc.limits import check_overlay_limits
    from tcc.passes import PassManager

    target = target or load_target()
    module = import_onnx(model, input_shapes=dict(input_shapes or {}), host_tail=True)
    check_overlay_limits(module, target, "the target", weights)  # what the compile refuses first
    graph = (model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))).graph
    nodes = [(node_label(n), n.op_type) for n in graph.node]
    tail = {n.name: n.reason for n in module.host_tail.nodes} if module.host_tail else {}
    present = {op.loc for op in module.ops if op.kind != "const"}
    gone = {name: "import" for name, _ in nodes if name not in present and name not in tail}
    PassManager(_passes(calib, method, weights), instrumentations=[_FoldedBy(gone)]).run(module)
    placement = place_module(module, target)
    by_node: dict[str, list[Op]] = {}
    for op in module.ops:
        if op.kind != "const":
            by_node.setdefault(op.loc, []).append(op)
    out = []
    for name, op_type in nodes:
        if name in tail:  # in the host tail: shapes known only at run time
            out.append(NodePlacement(name, op_type, HOST, [HOST], [tail[name]]))
            continue
        ops = by_node.get(name, [])
        work = [op for op in ops if not placement.of[id(op)].boundary]
        macs = sum(op_macs(op) for op in ops)
        if not work:
            if ops:  # only conversions at a model or host boundary: the runtime's work, no fallback
                out.append(NodePlacement(name, op_type, BOUNDARY, [HOST], [BOUNDARY_REASON]))
            else:
                out.append(NodePlacement(name, op_type, "folded", [],
                                         [FOLDED_BY.get(gone.get(name, ""), "folded away")]))
            continue
        units = sorted({placement.of[id(op)].unit for op in work})
        host = [op for op in work if placement.of[id(op)].unit == HOST]
        reasons = list(dict.fromkeys(f"{op.kind}: {placement.of[id(op)].reason}" for op in host))
        device = sum(op_macs(op) for op in work if placement.of[id(op)].unit != HOST)
        out.append(NodePlacement(name, op_type, HOST if host else " + ".join(units), units, reasons, macs, device))
    return Explanation(module.name, out, calib is not None)


def format_explanation(ex: Explanation) -> str:
    names = [one_line(n.name) for n in ex.nodes]  # node names from the model stay one line each
    width = min(max([len(name) for name in names] + [4]), 40)
    type_width = max([len(n.op_type) for n in ex.nodes] + [7])
    lines = [f"{'node':<{width}}  {'op type':<{type_width}}  {'runs on':<26} why / MACs"]
    for n, name in zip(ex.nodes, names):
        name = name if len(name) <= width else "\u2026" + name[-width + 1:]
        detail = "; ".join(n.reasons) if n.reasons else (f"{n.macs} MACs" if n.macs else "")
        lines.append(f"{name:<{width}}  {one_line(n.op_type):<{type_width}}  {n.where:<26} {one_line(detail)}".rstrip())
    host = ex.host_nodes()
    lines.append(f"{100 * ex.device_mac_fraction:.2f}% of {ex.macs} MACs on the device; "
                 f"{len(host)} of {len(ex.nodes)} nodes on the host"
                 + ("" if ex.calibrated else " (placeholder calibration ranges; --calib for the real ones)"))
    return "\n".join(lines)
