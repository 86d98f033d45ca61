"""compile_sparse: quantized IR (after annotate-sparsity) -> a sized sparse dataflow design.

Steps: map the ops onto modules (mapping.py), compute each stream's background (background.py),
build the FIFO graph, estimate every module's token counts at the calibration density from the
annotate-sparsity annotations, search the parallelism (dse.py), and pack the artifact.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tcc.ir import Module, print_module
from tcc.ir.interpreter.sparse import MODES
from tcc.isa.tokensim.cost import WINDOWED, Counts
from tcc.isa.tokensim.memories import has_line_buffer

from ..artifact import SparseArtifact
from .background import backgrounds
from .dse import search
from .errors import SparseError
from .mapping import map_module
from .target import load_sparse_target

FIFO_DEPTH = 2  # tokens between neighbouring modules: the HLS default, a register pair


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
    counts: dict[str, Counts] = {}
    tokens: dict[str, int] = {}
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
    every token the windowed modules on the slower branch can delay it by at full density.  A
    windowed module emits output row r once an input row past its window has arrived: K - pad input
    rows (at least 2) of its input width.  Each stream's lag is the longest such sum from the input
    along any path; a merge's FIFOs hold the spread of its branches' lags (a projection shortcut
    mapped after the main branch lags as little as its own windows make it), plus one row of the
    merge's own width."""
    lag: dict[str, int] = {}
    for s in modules:
        own = max(2, s["kernel"] - s["pad"]) * s["in_shape"][2] if has_line_buffer(s) else 0
        ins = [lag[stream] for stream in s["inputs"]]
        lag[s["output"]] = max(ins, default=0) + own
        if s["kind"] in ("add", "concat"):
            s["fifo_tokens"] = max(FIFO_DEPTH, max(ins) - min(ins) + s["in_shape"][2])


def reader_depth(reader: dict) -> int:
    return reader["fifo_tokens"] if reader["kind"] in ("add", "concat") else FIFO_DEPTH


@dataclass
class StreamPlan:
    """The streams the generated top declares for one module's output, and who reads which."""

    source: str  # the variable the module writes (a top-level port for inputs and sinks)
    declared: list[tuple[str, int]] = field(default_factory=list)  # (variable, depth) inside top
    taps: dict[str, str] = field(default_factory=dict)  # reader module -> the variable it reads
    dups: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to reader, to the rest)


def stream_plan(modules: list[dict]) -> dict[str, StreamPlan]:
    """Per module: its output stream; with several readers, a chain of two-way duplicators, each
    copy as deep as its reader's FIFO (the rest as deep as the deepest remaining reader's)."""
    readers: dict[str, list[dict]] = {s["output"]: [] for s in modules}
    for s in modules:
        for stream in s["inputs"]:
            readers[stream].append(s)
    plans = {}
    for s in modules:
        users, name = readers[s["output"]], f"s_{s['name']}"
        plan = plans[s["name"]] = StreamPlan(name)
        port = s["kind"] == "input" or not users
        if len(users) == 1:
            if not port:
                plan.declared.append((name, reader_depth(users[0])))
            plan.taps[users[0]["name"]] = name
            continue
        if users and not port:
            plan.declared.append((name, FIFO_DEPTH))
        src = name
        for k, user in enumerate(users[:-1]):
            mine, rest = f"{name}_to_{user['name']}", f"{name}_rest{k}"
            plan.declared += [(mine, reader_depth(user)), (rest, max(reader_depth(u) for u in users[k + 1:]))]
            plan.dups.append((src, mine, rest))
            plan.taps[user["name"]] = mine
            src = rest
        if users:
            plan.taps[users[-1]["name"]] = src
    return plans


def plan_memories(modules: list[dict], weights: dict) -> None:
    """The sizes the resource model reads: ROM counts and the FIFOs each module writes."""
    for s in modules:
        if "weight" in s:
            s["weight_count"] = int(weights[s["weight"]].size)
            s["bias_count"] = int(weights[s["bias"]].size) if s.get("bias") else 0
    plans = stream_plan(modules)
    for s in modules:
        s["fanout"] = [{"stream": var, "depth": int(depth)} for var, depth in plans[s["name"]].declared]


def fifo_graph(modules: list[dict]) -> list[dict]:
    """One FIFO per (producer, consumer), as wide as the producer's output beat."""
    producer = {s["output"]: s for s in modules}
    fifos = []
    for s in modules:
        for stream in s["inputs"]:
            src = producer[stream]
            beat = src["parallelism"].get("po") or src["parallelism"].get("p")
            fifos.append({"src": src["name"], "dst": s["name"], "stream": stream, "depth": reader_depth(s),
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
    plan_memories(modules, weights)
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

