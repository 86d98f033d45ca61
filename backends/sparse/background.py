"""The per-channel value every inactive site holds, module by module.

submanifold: the zero point (inactive sites are real zeros).  exact: the value the dense model
computes at a site whose whole window is inactive, found at compile time by running each module's
arithmetic on its input background (a conv's bias plus its weights times the centred input
background, the add's two rescales, ...); the simulator adds it back wherever a map is densified.
"""
from __future__ import annotations

import numpy as np

from tcc.isa.tokensim.datapath import requant, rounded_mean


def _conv_acc(spec: dict, weights: dict, bg_in: np.ndarray) -> np.ndarray:
    w = weights[spec["weight"]].astype(np.int64) - np.asarray(spec["weight_zero_point"], np.int64).reshape(-1, 1, 1, 1)
    centred = bg_in - np.int64(spec["in_zero_point"])
    if spec["kind"] == "depthwise":
        acc = w.reshape(w.shape[0], -1).sum(axis=1) * centred
    else:
        acc = w.sum(axis=(2, 3)) @ centred
    if spec.get("bias"):
        acc = acc + weights[spec["bias"]].astype(np.int64)
    return acc[None, :]


def backgrounds(modules: list[dict], weights: dict, mode: str) -> None:
    """Set ``spec['background']`` (a list of ints, one per output channel) on every module."""
    bg: dict[str, np.ndarray] = {}
    for spec in modules:
        kind, c = spec["kind"], spec["out_shape"][0]
        if kind == "input":
            out = np.full(c, spec["zero_point"], np.int64)
        elif kind in ("gpool", "fc"):
            out = np.full(c, spec["zero_point"] if kind == "gpool" else spec["requant"]["zero_point"], np.int64)
        elif kind == "concat":
            parts = [bg[i] if rq is None else requant(bg[i][None, :], rq)[0]
                     for i, rq in zip(spec["inputs"], spec["rescale"])]
            out = np.concatenate(parts)
        elif mode == "submanifold":
            zero_point = spec["requant"]["zero_point"] if "requant" in spec else spec.get("zero_point")
            out = np.full(c, bg[spec["inputs"][0]][0] if zero_point is None else zero_point, np.int64)
        elif kind in ("conv", "pointwise", "depthwise"):
            out = requant(_conv_acc(spec, weights, bg[spec["inputs"][0]]), spec["requant"])[0]
        elif kind == "add":
            lhs = requant(bg[spec["inputs"][0]][None, :], spec["requant_lhs"])
            rhs = requant(bg[spec["inputs"][1]][None, :], spec["requant_rhs"])
            out = requant(lhs + rhs, spec["requant"])[0]
        elif kind == "maxpool":
            out = bg[spec["inputs"][0]].copy()
        elif kind == "avgpool":  # a window inside the map: k*k taps of the background
            taps = spec["kernel"] ** 2
            out = rounded_mean(spec, taps * (bg[spec["inputs"][0]] - spec["in_zero_point"]), taps)
        else:
            raise ValueError(f"no background rule for module kind {kind!r}")
        bg[spec["output"]] = out
        spec["background"] = [int(v) for v in out]
