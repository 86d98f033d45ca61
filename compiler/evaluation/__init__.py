"""``tcc eval``: accuracy of a model's float, integer-reference and simulated executions over a data set.

    from tcc.evaluation import evaluate
    result = evaluate("model.onnx", "model.tcc", "val.npz", labels="label")
    print(format_eval(result))

Data (data.py) is read lazily in chunks; the executions (paths.py) are opened once per worker;
the engine (engine.py) runs in this process, a local process pool or on a Ray cluster with the same
result, bit for bit and in sample order; metrics.py summarizes.
"""
from __future__ import annotations

import time
from pathlib import Path

from .data import EvalError, Preprocess, open_dataset
from .engine import default_workers
from .metrics import EvalResult, format_eval, layer_drift, summarize
from .paths import PATHS, EvalSpec, Runners, check_paths, run_records


def evaluate(model=None, artifact=None, data=None, labels: str | None = None, paths=None,
             limit: int | None = None, workers: int | None = None, ray: str | None = None,
             per_layer: bool = False, output: str | None = None, preprocess: Preprocess | None = None,
             progress=None) -> EvalResult:
    """Evaluate ``model`` (ONNX path) and/or ``artifact`` (.tcc or .tir path) on ``data``.

    ``progress(done, total)`` is called as samples finish.  ``workers`` defaults to every core
    (unless the first chunk shows the whole set takes less here than starting workers would);
    ``ray`` is 'local' (start Ray here), 'auto' (the running cluster) or a cluster address.
    """
    if data is None:
        raise EvalError("give the data to evaluate on (--data FILE.npz|FILE.npy|DIR)")
    model_bytes = _read(model, "model") if model is not None else None
    artifact_bytes, is_ir = None, False
    if artifact is not None:
        from tcc.runtime import artifact_kind

        artifact_bytes = _read(artifact, "artifact")
        is_ir = artifact_kind(artifact) is None
    if paths is None:
        paths = tuple(p for p, have in (("float", model is not None), ("reference", artifact is not None),
                                        ("sim", artifact is not None and not is_ir)) if have)
    adaptive = workers is None and not ray  # every core, unless the set is done before workers start
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise EvalError(f"--workers {workers}: give at least 1")
    if limit is not None and limit < 1:
        raise EvalError(f"--limit {limit}: give at least 1")
    spec = EvalSpec(tuple(paths), model_bytes, artifact_bytes, is_ir, output, per_layer,
                    threads=1 if workers > 1 or ray else 0)
    check_paths(spec)
    opened = Runners(spec)  # opens everything once here: bad files fail before workers start
    if output is not None and output not in _output_names(opened):
        raise EvalError(f"--output {output!r}: the model's outputs are {', '.join(_output_names(opened))}")
    inputs = _input_shapes(opened)
    dataset = open_dataset(data, inputs, labels, preprocess)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    start = time.perf_counter()
    tick = None if progress is None else (lambda done: progress(done, count))
    where: list[str] = []
    records = list(run_records(spec, dataset, count, workers, ray, tick, opened, adaptive, where.append))
    wall = time.perf_counter() - start
    summaries, mismatch = summarize(records, spec.paths)
    executor = f"ray {ray}" if ray else where[-1]
    workers = workers if executor != "in process" else 1
    result = EvalResult(str(model) if model else "-", str(artifact) if artifact else None, str(data), count,
                        workers, executor, wall, summaries, first_mismatch=mismatch)
    if per_layer:
        result.layers = layer_drift(opened.layer_values, records)
    return result


def _read(path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise EvalError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise EvalError(f"{path}: is a folder, not a {what} file") from None


def _output_names(opened: Runners) -> list[str]:
    if opened.module is not None:
        return [name for name, _ in opened.module.outputs]
    return list(opened.float_outputs)


def _input_shapes(opened: Runners) -> dict[str, tuple[int, ...]]:
    if opened.module is not None:
        return {v.name: tuple(v.type.shape) for v in opened.module.inputs}
    return {i.name: tuple(d if isinstance(d, int) and d > 0 else -1 for d in i.shape)
            for i in opened.float_session.get_inputs()}


__all__ = ["PATHS", "EvalError", "EvalResult", "Preprocess", "evaluate", "format_eval"]
