"""Run a sparse dataflow design on token streams: module by module, with per-module counters.

The modules form a DAG in stream order (the artifact lists them topologically), so running each
module on its whole input stream in turn gives the same tokens as the concurrent pipeline; the
cycle model (cost.py) turns each module's real counts into busy cycles, and timing.py times every
token through the pipeline to give the frame latency.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cost import PIPELINE_DEPTH, POST_FRAME, Counts, busy_cycles
from .datapath import KERNELS
from .errors import TokenSimError
from .timing import frame_timing, latency_floor
from .tokens import TokenStream


@dataclass
class ModuleCounters:
    name: str
    kind: str
    loc: str
    parallelism: dict
    tokens_in: int
    tokens_out: int
    neighbours: int
    busy_cycles: int
    pipeline_depth: int
    first_token: int = 0  # cycle the module's first output token reaches its FIFO
    finished: int = 0  # cycle the module has finished the frame

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TokenSimResult:
    streams: dict  # stream name -> TokenStream
    counters: list  # ModuleCounters, in module order
    latency: dict  # cycles (frame latency), bottleneck_cycles (slowest module's busy cycles), floor_cycles
    # (timing.latency_floor: what no schedule of this design beats)
    clock_mhz: float
    mode: str = "exact"

    @property
    def cycles(self) -> int:
        return int(self.latency["cycles"])


def simulate(metadata: dict, weights: dict, inputs: dict[str, TokenStream]) -> TokenSimResult:
    """Run every module of the design; ``inputs`` maps each input module's stream to its tokens."""
    streams: dict[str, TokenStream] = {}
    counts: dict[str, Counts] = {}
    busy: dict[str, int] = {}
    counters = []
    mode = metadata["mode"]
    for spec in metadata["modules"]:
        if spec["kind"] == "input":
            if spec["output"] not in inputs:
                raise TokenSimError(f"no tokens given for input stream {spec['output']!r}")
            out = inputs[spec["output"]]
            c = Counts(len(out), len(out))
        else:
            try:
                operands = [streams[name] for name in spec["inputs"]]
            except KeyError as exc:
                raise TokenSimError(f"module {spec['name']} reads stream {exc.args[0]!r}, which no earlier "
                                    f"module writes: the artifact's module order is broken") from None
            out, c = KERNELS[spec["kind"]](spec, weights, *operands, mode)
        streams[spec["output"]] = out
        counts[spec["name"]] = c
        busy[spec["name"]] = busy_cycles(spec, spec["parallelism"], c)
        counters.append(ModuleCounters(spec["name"], spec["kind"], spec["loc"], spec["parallelism"], c.tokens_in,
                                       c.tokens_out, c.neighbours, busy[spec["name"]], PIPELINE_DEPTH[spec["kind"]]))
    timing = frame_timing(metadata["modules"], streams, counts)
    for counter in counters:
        counter.first_token, counter.finished = timing["modules"][counter.name].first, timing["modules"][counter.name].last
    streaming = [busy[m["name"]] for m in metadata["modules"] if m["kind"] not in POST_FRAME]
    latency = {"cycles": timing["cycles"], "bottleneck_cycles": max(streaming, default=0),
               "floor_cycles": latency_floor(metadata["modules"], busy)}
    return TokenSimResult(streams, counters, latency, float(metadata["target"]["clock_mhz"]), mode)


def input_tokens(spec: dict, quantized: np.ndarray, raw: np.ndarray) -> TokenStream:
    """The host's token stream of one input: the sites where any channel of the float input is
    non-zero, with their quantized features; the background is the quantized zero."""
    active = np.any(np.asarray(raw)[0] != 0, axis=0)
    return TokenStream.from_dense(np.asarray(quantized)[0].astype(np.int64), active, spec["background"])
