"""compile_sparse: quantized IR (after annotate-sparsity) -> a sized sparse dataflow design.

Steps: map the ops onto modules (mapping.py), compute each stream's background (background.py),
build the FIFO graph, estimate every module's token counts at the calibration density from the
annotate-sparsity annotations, search the parallelism (dse.py), and pack the artifact.
"""
from __future__ import annotations

from tcc.ir import Module, print_module
from tcc.ir.interpreter.sparse import MODES
from tcc.isa.tokensim.cost import WINDOWED, Counts

from .artifact import SparseArtifact
from .background import backgrounds
from .dse import search
from .errors import SparseError
from .mapping import map_module
from .target import load_sparse_target

FIFO_DEPTH = 32  # tokens between neighbouring modules (stream FIFOs, LUTRAM)


def _annotations(module: Module) -> dict[str, dict]:
    from tcc.passes.sparsity import annotation

    found = {}
    for op in module.ops:
        a = annotation(op)
        if a:
            for r in op.results:
                found[r.name] = a
    return found


def _density(notes: dict, name: str, default: float) -> float:
    return float(notes.get(name, {}).get("density", default))


def expected_counts(modules: list[dict], notes: dict) -> dict[str, Counts]:
    """Token counts of one frame at the annotated mean density (1.0 where nothing is annotated)."""
    counts, tokens = {}, {}
    for s in modules:
        _, ho, wo = s["out_shape"]
        inherited = tokens[s["inputs"][0]] / (ho * wo) if s["inputs"] else 1.0
        density = 1.0 if s["kind"] in ("gpool", "fc") else min(1.0, _density(notes, s["output"], inherited))
        tokens[s["output"]] = out = max(1, round(density * ho * wo))
        c = Counts(sum(tokens[i] for i in s["inputs"]), out, out)
        if s["kind"] in WINDOWED:
            _, h, w = s["in_shape"]
            guess = s["kernel"] ** 2 * tokens[s["inputs"][0]] / (h * w)
            neighbours = float(notes.get(s.get("acc", s["output"]), {}).get("neighbours", guess))
            c.neighbours = int(round(max(1.0, neighbours) * out))
        counts[s["name"]] = c
    return counts


def size_branch_fifos(modules: list[dict]) -> None:
    """An add's or concat's earlier branch waits for the others: its FIFO (``fifo_tokens``) holds
    the rows the windowed modules in between delay them by, two per module plus one."""
    position = {s["output"]: i for i, s in enumerate(modules)}
    for i, s in enumerate(modules):
        if s["kind"] in ("add", "concat"):
            first = min(position[stream] for stream in s["inputs"])
            between = sum(1 for m in modules[first + 1:i] if m["kind"] in WINDOWED)
            s["fifo_tokens"] = max(FIFO_DEPTH, (2 * between + 1) * s["in_shape"][2])


def fifo_graph(modules: list[dict]) -> list[dict]:
    """One FIFO pair per (producer, consumer), as wide as the producer's output beat."""
    producer = {s["output"]: s for s in modules}
    fifos = []
    for s in modules:
        for stream in s["inputs"]:
            src = producer[stream]
            beat = src["parallelism"].get("po") or src["parallelism"].get("p")
            depth = s["fifo_tokens"] if s["kind"] in ("add", "concat") else FIFO_DEPTH
            fifos.append({"src": src["name"], "dst": s["name"], "stream": stream, "depth": int(depth),
                          "width_bits": 8 * int(beat)})
    return fifos


def compile_sparse(module: Module, mode: str = "exact", target_path=None) -> SparseArtifact:
    """Map, size and pack ``module`` (quantized, ideally annotated by annotate-sparsity)."""
    if mode not in MODES:
        raise SparseError(f"sparse mode {mode!r} is not one of {', '.join(MODES)}")
    target = load_sparse_target(target_path)
    modules, weights, host, streams = map_module(module, mode)
    backgrounds(modules, weights, mode)
    size_branch_fifos(modules)  # the resource model reads them
    notes = _annotations(module)
    annotated_modes = {a.get("mode") for a in notes.values() if "mode" in a}
    if annotated_modes and annotated_modes != {mode}:
        raise SparseError(f"the module's densities were measured in mode {', '.join(sorted(annotated_modes))} "
                          f"but the design is for mode {mode}; rerun annotate-sparsity with mode={mode}")
    counts = expected_counts(modules, notes)
    dse = search(modules, counts, target)
    fifos = fifo_graph(modules)
    inputs = [{"name": v.name, "shape": list(v.type.shape), "dtype": v.type.dtype} for v in module.inputs]
    metadata = {
        "module_name": module.name, "mode": mode, "target": target.to_dict(), "modules": modules,
        "fifos": fifos, "host_ops": host, "streams": streams, "inputs": inputs,
        "outputs": [{"name": n, "value": v.name} for n, v in module.outputs], "dse": dse,
        "density_source": "annotate-sparsity" if notes else "none: assumed 100% (run annotate-sparsity)",
        "expected_counts": {k: [c.tokens_in, c.tokens_out, c.neighbours] for k, c in counts.items()},
    }
    return SparseArtifact(metadata, weights, print_module(module))

