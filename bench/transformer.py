"""Transformers on the overlay (examples/encoder): the BERT-style encoder and the ViT block compiled
with ``-t overlay``, run on the simulator over test samples, against the integer reference
(element for element) and float onnxruntime (SQNR of the logits, top-1), with the share of
cycles spent in each PE-array mode (int8 systolic, bf16 SIMD) and on mode switches, the switch
counts and cycles before and after the schedule-modes pass (also on "encoder-x2": two copies
of the encoder side by side, independent sequences whose int8 and bf16 work can be grouped), and
simulation time against onnxruntime's float run measured in the same process.  Then the
ablation of the transformer quantization remedies (passes/quantize/smoothing.py, remedies.py) on
the encoder and the ViT block: plain int8, each remedy alone, and what ``--quant int8`` chooses
(with and without int32 logits).

    python bench/transformer.py [--models encoder,vit,encoder-x2] [--samples 100] [--exact-samples 10] [--repeat 3]
                                [--calibrate auto|minmax|percentile|entropy|mse] [--ablation encoder,vit]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnx.compose
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_of  # noqa: E402

from tcc.backends.overlay import compile_overlay  # noqa: E402
from tcc.driver import compile_to_ir, quantization_pipeline  # noqa: E402
from tcc.ir import parse_module, print_module  # noqa: E402
from tcc.passes import DEFAULT_FLOAT_PIPELINE, make_pass  # noqa: E402
from tcc.passes.mode_schedule import switch_lower_bound  # noqa: E402
from tcc.passes.quantize import Quantize, SmoothQuant  # noqa: E402
from tcc.runtime import Session  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "encoder"
# name: (model, calibration, test set, input name); "encoder-x2" is two copies of the encoder in one
# graph (a second, independent sequence: the case mode scheduling is for)
MODELS = {"encoder": ("encoder.onnx", "encoder_calib.npz", "encoder_test.npz", "tokens"),
          "vit": ("vit_block.onnx", "vit_calib.npz", "vit_test.npz", "image"),
          "encoder-x2": ("encoder.onnx", "encoder_calib.npz", "encoder_test.npz", "tokens")}
SECOND = "b/"  # name prefix of the second copy


def sqnr_db(reference, actual) -> float:
    ref, act = np.asarray(reference, np.float64), np.asarray(actual, np.float64)
    noise = ((ref - act) ** 2).sum()
    return float("inf") if noise == 0 else float(10 * np.log10((ref ** 2).sum() / noise))


def two_sequences(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model and a renamed copy side by side in one graph: two independent inputs and outputs."""
    copy = onnx.compose.add_prefix(model, SECOND)
    g, h = model.graph, copy.graph
    graph = onnx.helper.make_graph(list(g.node) + list(h.node), g.name + "_x2", list(g.input) + list(h.input),
                                   list(g.output) + list(h.output), list(g.initializer) + list(h.initializer))
    return onnx.helper.make_model(graph, opset_imports=model.opset_import)


def prepare(name: str, work: Path):
    """(model path, calibration path, per-sample feeds function, test labels function)."""
    model, calib, test, key = MODELS[name]
    data = np.load(EXAMPLES / test)
    if name != "encoder-x2":
        return EXAMPLES / model, EXAMPLES / calib, lambda i: {key: data[key][i:i + 1]}, lambda n: data["label"][:n]
    onnx.save(two_sequences(onnx.load(EXAMPLES / model)), work / "encoder_x2.onnx")
    tokens = np.load(EXAMPLES / calib)[key]
    np.savez(work / "calib.npz", **{key: tokens, SECOND + key: tokens[::-1].copy()})
    count = len(data[key])

    def feeds(i):  # sample i and the one after it, as the two sequences
        return {key: data[key][i:i + 1], SECOND + key: data[key][(i + 1) % count:(i + 1) % count + 1]}

    def labels(n):
        return np.concatenate([data["label"][:n], np.roll(data["label"], -1)[:n]])

    return work / "encoder_x2.onnx", work / "calib.npz", feeds, labels


# Ablation of the remedies: (label, SmoothQuant on, Quantize's residual, rows, scores, outputs,
# patches, branches and chains options); "--quant int8 (auto)" is what `--quant int8` does
# (quantization_pipeline), the row after it adds the opt-in bf16 GELU.
REMEDIES = (("int8, no remedy", False, "int8", "off", "off", "int8", "off", "off", "off"),
            ("+ SmoothQuant", True, "int8", "off", "off", "int8", "off", "off", "off"),
            ("+ bf16 residual stream", False, "bf16", "off", "off", "int8", "off", "off", "off"),
            ("+ per-row softmax scales", False, "int8", "on", "off", "int8", "off", "off", "off"),
            ("+ int32 scores", False, "int8", "off", "on", "int8", "off", "off", "off"),
            ("+ int32 logits", False, "int8", "off", "off", "int32", "off", "off", "off"),
            ("+ bf16 stream, int32 branches", False, "bf16", "off", "off", "int8", "off", "on", "off"),
            ("+ bf16 stream, int32 patch emb.", False, "bf16", "off", "off", "int8", "on", "off", "off"),
            ("auto, no int32 logits/branches", True, "auto", "auto", "auto", "int8", "off", "off", "off"),
            ("auto, no int32 branches", True, "auto", "auto", "auto", "int32", "off", "off", "off"),
            ("auto, no int32 patch embedding", True, "auto", "auto", "auto", "int32", "off", "auto", "off"),
            ("--quant int8 (auto)", True, "auto", "auto", "auto", "int32", "auto", "auto", "off"),
            ("+ bf16 GELU (chains=on)", True, "auto", "auto", "auto", "int32", "auto", "auto", "on"))
Remedy = tuple[bool, str, str, str, str, str, str, str]


def remedy_pipeline(calib: Path, method: str, smooth: bool, residual: str, rows: str = "auto",
                    scores: str = "auto", outputs: str = "int32", patches: str = "auto", branches: str = "auto",
                    chains: str = "off") -> tuple:
    default = quantization_pipeline(str(calib), method=method)
    passes = []
    for p in default:
        if isinstance(p, SmoothQuant) and not smooth:
            continue
        if isinstance(p, Quantize):
            p.residual, p.rows, p.scores, p.outputs = residual, rows, scores, outputs
            p.patches, p.branches, p.chains = patches, branches, chains
        passes.append(p)
    return DEFAULT_FLOAT_PIPELINE + tuple(passes)


def measure(name: str, samples: int, exact_samples: int, repeat: int, method: str, work: Path,
            remedy: Remedy = (True, "auto", "auto", "auto", "int32", "auto", "auto", "off")) -> dict:
    model, calib, feeds_of, labels_of = prepare(name, work)
    start = time.perf_counter()
    module, _ = compile_to_ir(str(model), passes=remedy_pipeline(calib, method, *remedy))
    program_order = parse_module(print_module(module))
    schedule = make_pass("schedule-modes")
    schedule.apply(module)
    artifact = compile_overlay(module)
    compile_s = time.perf_counter() - start
    session = Session(artifact)
    unscheduled = Session(compile_overlay(program_order))

    options = ort.SessionOptions()
    options.log_severity_level = 3
    ort_session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in ort_session.get_outputs()]
    n = min(samples, 360)
    sim_logits, ort_logits, exact = [], [], True
    for i in range(n):
        feeds = feeds_of(i)
        sim = session.run_dict(feeds)
        if i < exact_samples:
            reference = session.run_reference(feeds)
            exact &= all(np.array_equal(sim[k], reference[k]) for k in names)
        sim_logits.append([sim[k] for k in names])
        ort_logits.append(ort_session.run(None, feeds))
    # [outputs][samples] -> all logits of output 0, then of output 1 ...
    sim_logits = np.concatenate([np.concatenate(per) for per in zip(*sim_logits)])
    ort_logits = np.concatenate([np.concatenate(per) for per in zip(*ort_logits)])
    labels = labels_of(n)
    feeds = feeds_of(0)
    t_ort, _ = best_of(repeat, lambda: ort_session.run(None, feeds))
    unscheduled.run_dict(feeds)
    t_sim, _ = best_of(repeat, lambda: session.run_dict(feeds))
    result = session.last_result
    return {
        "model": name, "compile_s": compile_s, "samples": n, "exact_samples": min(n, exact_samples),
        "bit_exact": exact, "sqnr_db": sqnr_db(ort_logits, sim_logits),
        "top1_sim": float((sim_logits.argmax(1) == labels).mean()),
        "top1_ort": float((ort_logits.argmax(1) == labels).mean()),
        "cycles": result.cycles, "ms_at_clock": result.seconds * 1e3,
        "cycles_unscheduled": unscheduled.last_result.cycles,
        "mode_cycles": result.mode_cycles, "mode_busy": result.mode_busy, "mode_switches": result.mode_switches,
        "switches_before": schedule.before, "switches_after": schedule.after,
        "switch_bound": switch_lower_bound(module.ops),
        "sim_s": t_sim, "ort_s": t_ort, "sim_over_ort": t_sim / t_ort,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="encoder,vit,encoder-x2")
    parser.add_argument("--samples", type=int, default=100, help="test samples for SQNR and top-1")
    parser.add_argument("--exact-samples", type=int, default=10, help="of those, compared with the reference")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calibrate", default="auto", help="auto, minmax, percentile, entropy or mse")
    parser.add_argument("--ablation", default="encoder,vit", help="models of the remedy ablation ('' to skip)")
    args = parser.parse_args()
    head = (f"{'model':<9}{'compile s':>10}{'exact':>9}{'SQNR dB':>9}{'top1 sim':>9}{'top1 ort':>9}{'cycles':>9}"
            f"{'ms@clk':>8}{'int8 %':>8}{'bf16 %':>8}{'switch %':>9}{'switches':>14}{'sim s':>8}{'ort ms':>8}"
            f"{'sim/ort':>9}")
    print(head)
    print("-" * len(head))
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            r = measure(name, args.samples, args.exact_samples, args.repeat, args.calibrate, Path(tmp))
        share = {k: 100 * v / r["cycles"] for k, v in r["mode_cycles"].items()}
        switches = f"{r['switches_before']}->{r['switches_after']}>={r['switch_bound']}"
        exact = f"{'yes' if r['bit_exact'] else 'NO'} {r['exact_samples']}"
        print(f"{r['model']:<9}{r['compile_s']:>10.2f}{exact:>9}{r['sqnr_db']:>9.1f}{r['top1_sim']:>9.4f}"
              f"{r['top1_ort']:>9.4f}{r['cycles']:>9}{r['ms_at_clock']:>8.3f}{share['int8']:>7.1f}%"
              f"{share['bf16']:>7.1f}%{share['switch']:>8.1f}%{switches:>14}{r['sim_s']:>8.3f}"
              f"{r['ort_s'] * 1e3:>8.3f}{r['sim_over_ort']:>8.0f}x", flush=True)
        busy = r["mode_busy"]
        print(f"{'':<9}PE array busy: int8 {busy['int8']} cycles, bf16 {busy['bf16']} cycles; "
              f"{r['mode_switches']} mode instructions executed; {r['cycles_unscheduled']} cycles in program "
              f"order; SQNR over {r['samples']} test samples", flush=True)
    print("exact: simulator == integer reference on the first N samples; SQNR: simulator logits vs float "
          "onnxruntime; int8/bf16/switch %: share of all cycles the PE array spends in each mode and "
          "reconfiguring; switches: program order -> after schedule-modes >= lower bound (most mode changes "
          "on one dependency path); sim/ort: one sample, best of --repeat")
    if args.ablation:
        ablation(args)
    return 0


def ablation(args) -> None:
    print()
    head = (f"{'model':<9}{'remedy':<32}{'exact':>9}{'SQNR dB':>9}{'top1 sim':>9}{'top1 ort':>9}{'cycles':>9}"
            f"{'d cycles':>10}{'int8 %':>8}{'bf16 %':>8}")
    print(head)
    print("-" * len(head))
    for name in args.ablation.split(","):
        base = None
        for label, *remedy in REMEDIES:
            with tempfile.TemporaryDirectory() as tmp:
                r = measure(name, args.samples, args.exact_samples, 1, args.calibrate, Path(tmp), tuple(remedy))
            base = r["cycles"] if base is None else base
            share = {k: 100 * v / r["cycles"] for k, v in r["mode_cycles"].items()}
            exact = f"{'yes' if r['bit_exact'] else 'NO'} {r['exact_samples']}"
            print(f"{name:<9}{label:<32}{exact:>9}{r['sqnr_db']:>9.2f}{r['top1_sim']:>9.4f}{r['top1_ort']:>9.4f}"
                  f"{r['cycles']:>9}{r['cycles'] - base:>+10}{share['int8']:>7.1f}%{share['bf16']:>7.1f}%", flush=True)
    print("remedy: SmoothQuant = smooth-quant pass (LayerNorm -> linear sites, strength searched per site); "
          "bf16 residual stream = every residual segment bf16; per-row softmax scales = quantize{rows=on}: "
          "attention probabilities quantized row by row with power-of-two scales; int32 scores = quantize{scores=on}: "
          "the softmax reads the score accumulators converted to bf16; int32 logits = quantize{outputs=int32}: the "
          "output layer's int32 accumulators leave the device, dequantized by the host; int32 branches = "
          "quantize{branches=on}: linear layers read only by the bf16 stream reach it through an int32 grid, no "
          "int8 rounding; int32 patch emb. = quantize{patches=on}: the patch embedding conv runs as a linear layer "
          "over patch rows into the bf16 stream through an int32 grid; auto = all, each segment, matmul, patch "
          "embedding and branch kept only where it measurably lowers the output error (what --quant int8 does); "
          "bf16 GELU = quantize{chains=on}: a tabulated non-linearity after a linear layer runs in bf16 from its "
          "int32 grid (opt-in: its cycles); d cycles: against no remedy")


if __name__ == "__main__":
    sys.exit(main())
