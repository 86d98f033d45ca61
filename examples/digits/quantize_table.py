"""The digits CNN's test top-1 under each of tcc's weight formats, in one table.

    python examples/digits/quantize_table.py [--budget-bytes 4000] [--calibrate minmax]

Rows: float (tcc's float IR on the reference interpreter), int8, DyBit-4 weights, uniform
int4 weights (int8 activations in all three), int4 and DyBit-4 with a cap per output channel
(dybit4r) both with the scale / cap searches minimising each layer's output error
(``weight_error="output"``), and mixed precision (one weight format per layer,
chosen by the mixed-precision pass under a weight-memory budget).  Every quantized model is
calibrated on digits_calib.npz and run on the integer reference interpreter over the whole
test split.  Columns: the weight format of each weight layer, the packed weight bytes of those
layers, test top-1 against the labels, and the SQNR of the logits against the float row's.
"""
from __future__ import annotations

import argparse
import inspect
import math
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir import Module, Trait, numerics
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE, PASSES

HERE = Path(__file__).resolve().parent
MODEL = HERE / "digits_cnn.onnx"
DTYPE_BITS = {"f32": 32, "bf16": 16, "i8": 8, "i16": 16}


def mixed_available() -> bool:
    """Whether the mixed-precision pass is registered and the driver can build its pipeline."""
    cls = PASSES.get("mixed-precision")
    return (cls is not None and "budget_bytes" in {f.name for f in fields(cls)}
            and "budget_bytes" in inspect.signature(quantization_pipeline).parameters)


def weight_layers(module: Module) -> list[tuple[str, int]]:
    """(format, number of weights) of each conv/linear op's weight, in program order.

    The format is the weight type's quantization format (int4, dybitN) or else its element type.
    """
    layers = []
    for op in module.ops:
        if op.has_trait(Trait.WEIGHTED):
            t = op.operands[1].type
            fmt = t.quant.format if t.quant is not None and t.quant.format else t.dtype
            layers.append((fmt, t.size))
    return layers


def caps_bytes(module: Module) -> int:
    """Bytes of the per-channel DyBit caps (a byte per output channel of a dybitNr layer)."""
    return sum(len(op.operands[1].type.quant.caps) for op in module.ops
               if op.has_trait(Trait.WEIGHTED) and op.operands[1].type.quant is not None
               and op.operands[1].type.quant.caps)


def format_bits(fmt: str) -> int:
    """Stored bits per weight: intN and dybitN(cK) pack to N bits, others their element type."""
    if fmt.startswith("dybit") or fmt.startswith("int"):
        return numerics.parse_weight_format(fmt).bits
    return DTYPE_BITS[fmt]


def short(fmt: str) -> str:
    return fmt.replace("dybit", "d").replace("int", "i")


def logits(module: Module, inputs: np.ndarray) -> np.ndarray:
    return np.concatenate([run_module(module, {"input": x[None]})["logits"] for x in inputs])


def sqnr_db(reference: np.ndarray, got: np.ndarray) -> float:
    err = np.sum((reference.astype(np.float64) - got) ** 2)
    return math.inf if err == 0 else float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / err))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-bytes", type=int, default=4000,
                        help="weight-memory budget of the mixed-precision row (all int8: 6384)")
    parser.add_argument("--calibrate", choices=("minmax", "percentile", "entropy", "mse"), default="minmax")
    parser.add_argument("--calib", type=Path, default=HERE / "digits_calib.npz")
    parser.add_argument("--test", type=Path, default=HERE / "digits_test.npz")
    args = parser.parse_args()
    with np.load(args.test) as data:
        inputs, labels = data["input"], data["label"]

    rows = [("float", DEFAULT_FLOAT_PIPELINE)]
    for fmt in ("int8", "dybit4", "int4"):
        label = "int8" if fmt == "int8" else f"{fmt} weights"
        rows.append((label, DEFAULT_FLOAT_PIPELINE + quantization_pipeline(args.calib, method=args.calibrate,
                                                                           weights=fmt)))
    for fmt in ("int4", "dybit4r"):
        rows.append((f"{fmt}, output err", DEFAULT_FLOAT_PIPELINE + quantization_pipeline(
            args.calib, method=args.calibrate, weights=fmt, weight_error="output")))
    if mixed_available():
        rows.append((f"mixed <= {args.budget_bytes} B", DEFAULT_FLOAT_PIPELINE + quantization_pipeline(
            args.calib, quant="mixed", method=args.calibrate, budget_bytes=args.budget_bytes)))

    results = []
    reference = None
    for label, passes in rows:
        start = time.perf_counter()
        module, _ = compile_to_ir(MODEL, passes=passes)
        out = logits(module, inputs)
        elapsed = time.perf_counter() - start
        reference = out if reference is None else reference
        layers = weight_layers(module)
        correct = int((out.argmax(axis=1) == labels).sum())
        results.append((label, " ".join(short(f) for f, _ in layers),
                        sum(math.ceil(n * format_bits(f) / 8) for f, n in layers) + caps_bytes(module),
                        f"{correct / len(labels):.4f} ({correct}/{len(labels)})", sqnr_db(reference, out), elapsed))

    print(f"digits CNN: test top-1 on {len(labels)} images; calibration {args.calib.name} ({args.calibrate}); "
          f"weight bytes = packed weights of the conv/linear layers (and dybit4r's caps, a byte per channel); "
          f"SQNR of the logits vs the float row")
    width = max(len("weight formats"), *(len(r[1]) for r in results)) + 2
    header = f"{'row':<20}{'weight formats':<{width}}{'weight bytes':>13}{'top-1':>18}{'SQNR dB':>9}{'time s':>8}"
    print(header)
    print("-" * len(header))
    for label, formats, nbytes, top1, db, elapsed in results:
        print(f"{label:<20}{formats:<{width}}{nbytes:>13}{top1:>18}{db:>9.2f}{elapsed:>8.2f}")
    if not mixed_available():
        print("mixed: not available (pass not landed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
