"""Multi-core scaling on a light-zoo model (random weights): latency and throughput for 1, 2, 4
and 8 cores sharing DRAM, outputs compared with one core's, all measured in the same run.

    python bench/multicore.py [--model resnet50] [--cores 1,2,4,8]

Each layer is split across the cores (one inference at a time), so throughput is 1 / latency.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import light_zoo  # noqa: E402

from tcc.backends.overlay import compile_overlay  # noqa: E402
from tcc.driver import compile_to_ir, quantization_pipeline  # noqa: E402
from tcc.isa.target import load_target  # noqa: E402
from tcc.passes import DEFAULT_FLOAT_PIPELINE  # noqa: E402
from tcc.runtime import Session  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--cores", default="1,2,4,8")
    args = parser.parse_args()
    model = light_zoo.randomized(args.model, expose_logits=True)
    inputs = light_zoo.model_inputs(model)
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calib.npz"
        np.savez(calib, **{k: rng.standard_normal((4,) + v.shape).astype(np.float32) for k, v in inputs.items()})
        module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(calib)))
    base = load_target()
    head = f"{'cores':>5}{'cycles':>12}{'latency ms':>12}{'inf/s':>9}{'speedup':>9}{'PE util':>9}{'identical':>11}"
    print(f"{args.model} on {base.name}, {base.clock_mhz} MHz, shared DRAM {base.hbm_bytes_per_cycle} B/cycle")
    print(head)
    print("-" * len(head))
    first = None
    for cores in [int(c) for c in args.cores.split(",")]:
        target = replace(base, cores=cores)
        session = Session(compile_overlay(module, target))
        outputs = session.run_dict(inputs)
        result = session.last_result
        if first is None:
            first = result.cycles, outputs
        identical = all(np.array_equal(outputs[k], first[1][k]) for k in outputs)
        seconds = result.cycles / (target.clock_mhz * 1e6)
        util = result.macs / (target.peak_macs_per_cycle * cores * result.cycles)
        print(f"{cores:>5}{result.cycles:>12}{seconds * 1e3:>12.2f}{1 / seconds:>9.1f}{first[0] / result.cycles:>8.2f}x"
              f"{100 * util:>8.1f}%{'yes' if identical else 'NO':>11}", flush=True)
    print("goal: >= 6x throughput at 8 cores on resnet50, outputs bit-identical to one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
