"""Token-level timing of one frame through the dataflow pipeline.

Every module is a server that emits its output tokens in raster order; output token t leaves at

    out[t] = max(ready[t], out[t-1]) + service[t]

where ``service[t]`` is its beats (cost.py: e.g. ceil(Ci/pi) ceil(Co/po) for a pointwise module,
max(1, valid neighbours) ceil(C/p) + 1 for a depthwise one) and ``ready[t]`` the cycle its inputs
are known: a pointwise module needs the token at its site; a windowed module (line buffer) needs
the first input token past its window's last site, or the end of frame (ESDA: "a token is emitted
once all its neighbours are known"); an add or concat needs, on each branch, the token at its site
or the first one past it.  A token reaches the next module ``PIPELINE_DEPTH`` cycles after it
leaves.  The recurrence is a max-plus scan, vectorised with ``np.maximum.accumulate``:

    out[t] = S[t] + max over u <= t of (ready[u] - S[u-1]),   S = cumulative service.

FIFOs are taken as deep enough never to stall a producer (the artifact sizes the residual ones).

``dense_frame_timing`` times the dense dataflow design of the same modules and parallelism (what
issue 20 compares the sparse design's full-density latency with): every site is a token, no
coordinate header beat, a windowed module iterates its whole K x K window (padding included).
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import Literal

import numpy as np

from .cost import PIPELINE_DEPTH, Counts, ceil_div
from .tokens import TokenStream


@dataclass
class StreamTime:
    arrival: np.ndarray  # cycle each token reaches the consumer
    end: int  # cycle the consumer learns the frame has ended


@dataclass
class ModuleTime:
    first: int  # first output token leaves
    last: int  # the module has finished the frame


def _scan(ready: np.ndarray, service: np.ndarray, start: int = 0) -> np.ndarray:
    total = np.cumsum(service)
    before = total - service
    return total + np.maximum.accumulate(np.maximum(ready, start) - before)


def _next_arrival(src: StreamTime, raster: np.ndarray, positions: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
    """When the consumer knows everything of the input up to each position: the arrival of the
    first token at (side='left') or past (side='right') it, or the end of frame."""
    idx = np.searchsorted(raster, positions, side=side)
    padded = np.append(src.arrival, src.end)
    return padded[idx]


def _beats(spec: dict) -> int:
    par, cin, cout = spec["parallelism"], spec["in_shape"][0], spec["out_shape"][0]
    if "pi" in par:
        return ceil_div(cin, par["pi"]) * ceil_div(cout, par["po"])
    return ceil_div(cout, par["p"])


def module_timing(spec: dict, ins: list[tuple[TokenStream, StreamTime]], out: TokenStream, c: Counts,
                  header: int = 1):
    """(output token leave cycles, ModuleTime, the cycle the module knows its input ended);
    ``header``: the per-token coordinate beat of the sparse design (0: the dense design)."""
    kind, beats = spec["kind"], _beats(spec)
    n = len(out)
    input_end = max((t.end for _, t in ins), default=0)
    if kind == "input":
        leave = np.arange(1, n + 1, dtype=np.int64) * beats
    elif kind in ("gpool", "fc"):
        stream, t = ins[0]
        per_token = beats if kind == "gpool" else 0
        done = _scan(t.arrival, np.full(len(stream), per_token, np.int64))
        leave = np.array([max(int(done[-1]) if len(done) else 0, t.end) + beats], np.int64)
    elif kind in ("add", "concat"):
        ready = np.zeros(n, np.int64)
        for stream, t in ins:
            ready = np.maximum(ready, _next_arrival(t, stream.raster, out.raster, "left"))
        leave = _scan(ready, np.full(n, beats, np.int64))
    elif kind == "pointwise" and spec["stride"] == 1:
        stream, t = ins[0]
        ready = _next_arrival(t, stream.raster, out.raster, "left")
        leave = _scan(ready, np.full(n, beats, np.int64))
    else:  # windowed: conv, depthwise, maxpool, avgpool (and strided pointwise)
        stream, t = ins[0]
        k, s, p = spec["kernel"], spec["stride"], spec["pad"]
        y = np.minimum(out.coords[:, 0] * s - p + k - 1, stream.height - 1)
        x = np.minimum(out.coords[:, 1] * s - p + k - 1, stream.width - 1)
        ready = _next_arrival(t, stream.raster, y * stream.width + x, "right")
        valid = np.maximum(c.valid, 1) if c.valid is not None else np.ones(n, np.int64)
        service = {"conv": np.full(n, beats + header), "depthwise": valid * beats + header,
                   "avgpool": valid * beats + header,
                   "maxpool": valid * beats}.get(kind, np.full(n, beats))
        leave = _scan(ready, service.astype(np.int64))
    last = int(leave[-1]) if n else 0
    return leave, ModuleTime(int(leave[0]) if n else input_end, max(last, input_end))


def frame_timing(modules: list[dict], streams: dict[str, TokenStream], counts: dict[str, Counts],
                 header: int = 1) -> dict:
    """Cycle of every module's first and last token, and the frame latency (the last sink's end)."""
    times: dict[str, StreamTime] = {}
    modules_time: dict[str, ModuleTime] = {}
    readers = {m["output"]: 0 for m in modules}
    for m in modules:
        for i in m["inputs"]:
            readers[i] += 1
    for spec in modules:
        ins = [(streams[i], times[i]) for i in spec["inputs"]]
        leave, mt = module_timing(spec, ins, streams[spec["output"]], counts[spec["name"]], header)
        depth = PIPELINE_DEPTH[spec["kind"]]
        times[spec["output"]] = StreamTime(leave + depth, mt.last + depth)
        modules_time[spec["name"]] = ModuleTime(mt.first + depth, mt.last + depth)
    latency = max(times[m["output"]].end for m in modules if not readers[m["output"]])
    return {"cycles": int(latency), "modules": modules_time}


def latency_floor(modules: list[dict], busy: dict[str, int]) -> int:
    """A bound no schedule of this design beats, whatever its FIFOs and line-buffer waits: every
    module's busy cycles, plus the pipeline depths of the longest module chains before and after
    it (a token reaches a module only through all of them, and the frame ends only after its last
    token has passed all of them); the largest over the modules."""
    start: dict[str, int] = {}
    for spec in modules:
        start[spec["output"]] = max((start[i] for i in spec["inputs"]), default=0) + PIPELINE_DEPTH[spec["kind"]]
    tail: dict[str, int] = {}
    for spec in reversed(modules):
        tail.setdefault(spec["output"], 0)
        for i in spec["inputs"]:
            tail[i] = max(tail.get(i, 0), tail[spec["output"]] + PIPELINE_DEPTH[spec["kind"]])
    return max(start[s["output"]] + busy[s["name"]] + tail[s["output"]] for s in modules)


def dense_frame_timing(modules: list[dict]) -> dict:
    """``frame_timing`` of the dense dataflow design with the same modules and parallelism."""
    streams, counts = {}, {}
    for spec in modules:
        _, height, width = spec["out_shape"]
        rows, cols = np.divmod(np.arange(height * width, dtype=np.int64), width)
        streams[spec["output"]] = TokenStream(np.stack([rows, cols], 1), np.zeros((height * width, 0), np.int64),
                                              np.zeros(0, np.int64), height, width)
        window = spec.get("kernel", 1) ** 2 if spec["kind"] in ("conv", "depthwise", "maxpool", "avgpool") else 1
        counts[spec["name"]] = Counts(valid=np.full(height * width, window, np.int64))
    return frame_timing(modules, streams, counts, header=0)
