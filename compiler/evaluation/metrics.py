"""Summaries of ``tcc eval`` records: per path accuracy, agreement, SQNR and time; per-layer drift."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from tcc.ir.escape import one_line

from .paths import Record


@dataclass
class PathSummary:
    path: str
    samples: int
    top1: float | None = None  # against labels
    top5: float | None = None
    agree_float: float | None = None  # top-1 equal to the float path's
    sqnr_mean_db: float | None = None  # over samples, finite values (inf: output equal to float)
    sqnr_p5_db: float | None = None  # the 5th percentile: how bad the bad samples are
    worst_sqnr_db: float | None = None
    worst_index: int | None = None
    exact_samples: int = 0  # samples whose output equals float's exactly
    equal_reference: int | None = None  # sim only: samples bit-identical to the reference
    ms_per_sample: float = 0.0


@dataclass
class EvalResult:
    model: str
    artifact: str | None
    data: str
    samples: int
    workers: int
    executor: str
    wall_seconds: float
    paths: list[PathSummary] = field(default_factory=list)
    layers: list = field(default_factory=list)  # verify.LayerCheck, with --per-layer
    first_mismatch: int | None = None  # first sample where sim != reference

    def to_json(self) -> dict:
        out = asdict(self)
        out["layers"] = [asdict(layer) for layer in self.layers]
        return _finite(out)

    def sample_results(self) -> dict:
        """``to_json`` without what depends on how it ran (times, workers, executor): equal, bit for
        bit, in one process, a process pool or on Ray."""
        data = self.to_json()
        for key in ("wall_seconds", "workers", "executor"):
            data.pop(key)
        for path in data["paths"]:
            path.pop("ms_per_sample")
        return data

    @property
    def worst_jump(self):
        from tcc.verify import JUMP_DB

        jumps = [layer for layer in self.layers if layer.drop_db is not None and layer.drop_db >= JUMP_DB]
        return max(jumps, key=lambda layer: layer.drop_db, default=None)


def _finite(value):
    """JSON has no inf/nan: write them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def summarize(records: list[Record], paths: tuple[str, ...]) -> tuple[list[PathSummary], int | None]:
    """Per-path summaries (records in sample order) and the first sample where sim != reference."""
    labels = [r.label for r in records]
    labelled = bool(records) and all(label is not None for label in labels)
    summaries = []
    for path in paths:
        s = PathSummary(path, len(records))
        tops = [r.top[path] for r in records]
        if labelled:
            s.top1 = float(np.mean([t[0] == label for t, label in zip(tops, labels)]))
            s.top5 = float(np.mean([label in t for t, label in zip(tops, labels)]))
        if "float" in paths:
            s.agree_float = float(np.mean([r.top[path][0] == r.top["float"][0] for r in records]))
        if path != "float" and "float" in paths:
            values = np.array([r.sqnr_db[path] for r in records], np.float64)
            finite = values[np.isfinite(values)]
            s.exact_samples = int(np.sum(values == math.inf))
            if finite.size:
                s.sqnr_mean_db = float(np.mean(finite))
                s.sqnr_p5_db = float(np.percentile(finite, 5))
            worst = int(np.argmin(values))
            s.worst_sqnr_db, s.worst_index = float(values[worst]), records[worst].index
        if path == "sim" and "reference" in paths:
            s.equal_reference = sum(bool(r.sim_equal) for r in records)
        s.ms_per_sample = 1000 * float(np.mean([r.seconds[path] for r in records]))
        summaries.append(s)
    mismatch = next((r.index for r in records if r.sim_equal is False), None)
    return summaries, mismatch


def layer_drift(values, records: list[Record]) -> list:
    """Each compared layer's SQNR over the whole set (sums accumulated in sample order)."""
    from tcc.verify import LayerCheck, finish_layers

    num: dict[str, float] = {}
    den: dict[str, float] = {}
    for r in records:
        for name, (n, d) in r.layers.items():
            num[name] = num.get(name, 0.0) + n
            den[name] = den.get(name, 0.0) + d
    checks = {v.name: LayerCheck(v.name, v.producer.kind, v.type.dtype, v.producer.loc) for v in values}
    finish_layers(values, checks, num, den)
    return [checks[v.name] for v in values]


def format_eval(result: EvalResult) -> str:
    """The table printed at the end of ``tcc eval``."""
    lines = [f"model {result.model}" + (f", artifact {result.artifact}" if result.artifact else "")
             + f": {result.samples} sample(s) of {result.data}; {result.workers} worker(s) ({result.executor}), "
             f"{result.wall_seconds:.1f} s wall, {result.samples / max(result.wall_seconds, 1e-9):.1f} samples/s"]
    head = (f"{'path':<10} {'top-1':>7} {'top-5':>7} {'=float':>7} {'SQNR dB':>8} {'p5 dB':>7} "
            f"{'worst dB (#)':>16} {'sim==ref':>10} {'ms/sample':>10}")
    lines += [head, "-" * len(head)]
    for s in result.paths:
        worst = "" if s.worst_sqnr_db is None else f"{_db(s.worst_sqnr_db)} ({s.worst_index})"
        equal = "" if s.equal_reference is None else f"{s.equal_reference}/{s.samples}"
        lines.append(f"{s.path:<10} {_pct(s.top1):>7} {_pct(s.top5):>7} {_pct(s.agree_float):>7} "
                     f"{_db(s.sqnr_mean_db):>8} {_db(s.sqnr_p5_db):>7} {worst:>16} {equal:>10} "
                     f"{s.ms_per_sample:>10.2f}")
    if result.first_mismatch is not None:
        lines.append(f"SIMULATOR != REFERENCE: first at sample {result.first_mismatch}")
    if result.layers:
        from tcc.verify import JUMP_DB

        lines.append(f"per-layer SQNR against float over {result.samples} samples:")
        for layer in result.layers:
            drop = "" if layer.drop_db is None else f"  drop {layer.drop_db:+.1f} dB"
            mark = "  <- error jumps" if layer.drop_db is not None and layer.drop_db >= JUMP_DB else ""
            lines.append(f"  {layer.name:<44} {layer.kind:<14} {_db(layer.sqnr_db):>8}{drop}{mark}")
    return "\n".join(one_line(line) for line in lines)  # names from the model stay one line each


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _db(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if value == math.inf else ("-inf" if value == -math.inf else f"{value:.1f}")
