"""compile_sparse: quantized IR (after annotate-sparsity) -> a sized sparse dataflow design.

Steps: map the ops onto modules (mapping.py), compute each stream's background (background.py),
build the FIFO graph, estimate every module's token counts at the calibration density from the
annotate-sparsity annotations, search the parallelism (dse.py), and pack the artifact.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import Module, print_module
from tcc.isa.tokensim.cost import WINDOWED, Counts

from .artifact import SparseArtifact
from .background import backgrounds
from .dse import search
from .errors import SparseError
from .mapping import map_module
from .target import load_sparse_target

MODES = ("exact", "submanifold")
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
    counts, density = {}, {}
    for s in modules:
        _, ho, wo = s["out_shape"]
        d = _density(notes, s["output"], density.get(s["inputs"][0], 1.0) if s["inputs"] else 1.0)
        if s["kind"] in ("gpool", "fc"):
            d = 1.0
        density[s["output"]] = d
        tokens_in = sum(round(density[i] * np.prod(next(m["out_shape"] for m in modules
                                                           if m["output"] == i)[1:])) for i in s["inputs"])
        out = max(1, round(d * ho * wo))
        c = Counts(int(tokens_in), int(out), int(out))
        if s["kind"] in WINDOWED:
            note = notes.get(s.get("acc", s["output"]), {})
            neighbours = float(note.get("neighbours", s["kernel"] ** 2 * density[s["inputs"][0]]))
            c.neighbours = int(round(max(1.0, neighbours) * out))
        counts[s["name"]] = c
    return counts


def fifo_graph(modules: list[dict]) -> list[dict]:
    """One FIFO pair per (producer, consumer); an add's earlier input waits for the other branch,
    so its FIFO holds the rows the windowed modules in between delay it by."""
    producer = {s["output"]: (i, s) for i, s in enumerate(modules)}
    fifos = []
    for i, s in enumerate(modules):
        for j, stream in enumerate(s["inputs"]):
            at, src = producer[stream]
            depth = FIFO_DEPTH
            if s["kind"] in ("add", "concat"):
                between = sum(1 for m in modules[at + 1:i] if m["kind"] in WINDOWED)
                depth = max(FIFO_DEPTH, (2 * between + 1) * s["in_shape"][2])
                if j == 0 or depth > s.get("fifo_tokens", 0):
                    s["fifo_tokens"] = depth
            width = 8 * ((src["parallelism"].get("po") or src["parallelism"].get("p"))
                         if "parallelism" in src else src["out_shape"][0])
            fifos.append({"src": src["name"], "dst": s["name"], "stream": stream, "depth": int(depth),
                          "width_bits": int(width)})
    return fifos


def compile_sparse(module: Module, mode: str = "exact", target_path=None) -> SparseArtifact:
    """Map, size and pack ``module`` (quantized, ideally annotated by annotate-sparsity)."""
    if mode not in MODES:
        raise SparseError(f"sparse mode {mode!r} is not one of {', '.join(MODES)}")
    target = load_sparse_target(target_path)
    modules, weights, host, streams = map_module(module, mode)
    backgrounds(modules, weights, mode)
    fifo_graph(modules)  # sets the adds' FIFO sizes, which the resource model reads
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

