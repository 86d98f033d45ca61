"""The sparse dataflow target on the events example: modeled latency against input density,
resources against the budget, top-1 accuracy, and the token simulator's speed against onnxruntime,
all measured in the same run.

    python bench/sparse_density.py [--frames 20] [--accuracy-frames 359] [--tile 4] [--no-zoo | --zoo-only]

Inputs at a given density come in two families: *uniform* (each site active with that probability,
1-3 events per polarity: downsampling makes deep maps dense fast) and *event-like* (the real test
frames, thinned by dropping active sites, or grown by lighting inactive neighbours of active sites:
clustered like real events).  Latency is one frame through the pipeline, every token timed
(isa/tokensim/timing.py); "slowest" is the slowest module's busy cycles alone (1 / throughput), "floor"
what no schedule of the same modules and parallelism beats (the slowest module's busy cycles plus the
pipeline depths of the module chains around it).  The events network also runs on 128 x 128
mosaics of 4 x 4 test frames (--tile), the frame size of DVS Gesture.  A last section
runs light-zoo CNNs (random weights, 224 x 224): SqueezeNet (exact mode: it has no submanifold form) on
the ZCU102 budget, ResNet-50 and DenseNet-121 (both modes) on the U250 budget.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "examples"))
import light_zoo  # noqa: E402
from timing import best_of  # noqa: E402

from tcc.backends.sparse import compile_sparse  # noqa: E402
from tcc.driver import compile_to_ir, quantization_pipeline  # noqa: E402
from tcc.ir.interpreter import run_module  # noqa: E402
from tcc.ir.interpreter.sparse import SparseInterpreter  # noqa: E402
from tcc.isa.tokensim.timing import dense_frame_timing  # noqa: E402
from tcc.passes import DEFAULT_FLOAT_PIPELINE  # noqa: E402
from tcc.runtime.sparse_session import SparseSession  # noqa: E402

EVENTS = ROOT / "examples" / "events"
DENSITIES = (1.0, 0.5, 0.2, 0.1, 0.05)


def mosaic(tiles: np.ndarray, k: int) -> np.ndarray:
    """k*k frames [k*k, C, 32, 32] tiled row by row into one [1, C, 32k, 32k] frame."""
    c = tiles.shape[1]
    return tiles.reshape(k, k, c, 32, 32).transpose(2, 0, 3, 1, 4).reshape(1, c, 32 * k, 32 * k)


def compile_events(mode: str, tile: int = 1, work: Path | None = None):
    """The events network at 32 x 32 (``tile`` 1), or at 32k x 32k (it ends in a global pool), then
    calibrated on k x k mosaics of the calibration frames; ``work``: a folder for the rebound model."""
    model, calib = EVENTS / "events_dense.onnx", EVENTS / "events_calib.npz"
    if tile > 1 and work is not None:
        import onnx

        proto = onnx.load(str(model))
        for axis in (2, 3):
            proto.graph.input[0].type.tensor_type.shape.dim[axis].dim_value = 32 * tile
        model, calib = work / f"events_{32 * tile}.onnx", work / f"events_calib_{32 * tile}.npz"
        onnx.save(proto, str(model))
        frames = np.load(EVENTS / "events_calib.npz")["input"]
        n = len(frames) // tile ** 2
        np.savez(calib, input=np.concatenate([mosaic(frames[i * tile ** 2:(i + 1) * tile ** 2], tile)
                                              for i in range(n)]).astype(np.float32))
    passes = DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(calib), sparse_mode=mode) + (
        f"annotate-sparsity{{calib={calib},mode={mode}}}",)
    start = time.perf_counter()
    module, _ = compile_to_ir(str(model), {}, passes)
    artifact = compile_sparse(module, mode)
    return artifact, SparseSession(artifact), time.perf_counter() - start


def uniform_frame(rng, density: float, size: int = 32) -> np.ndarray:
    active = rng.random((size, size)) < density
    counts = rng.integers(1, 4, (2, size, size)) * (rng.random((2, size, size)) < 0.6)
    counts[0][active & (counts.sum(axis=0) == 0)] = 1
    return (counts * active)[None].astype(np.float32)


def event_like_frame(rng, frame: np.ndarray, density: float) -> np.ndarray:
    """A real frame thinned or grown (through 8-neighbours of active sites) to the density."""
    x = frame.copy()
    active = (x[0] != 0).any(axis=0)
    target = int(round(density * active.size))
    while active.sum() < target:
        grown = active.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                grown |= np.roll(np.roll(active, dy, 0), dx, 1)
        border = np.argwhere(grown & ~active)
        pick = border[rng.permutation(len(border))[:target - active.sum()]]
        active[pick[:, 0], pick[:, 1]] = True
        x[0, rng.integers(0, 2, len(pick)), pick[:, 0], pick[:, 1]] = 1.0
    on = np.argwhere(active)
    drop = on[rng.permutation(len(on))[:max(0, len(on) - target)]]
    x[0, :, drop[:, 0], drop[:, 1]] = 0.0
    return x


def latency_table(session: SparseSession, test: np.ndarray, frames: int, tile: int = 1) -> list[str]:
    """Latency, slowest module and the latency floor (timing.latency_floor: what no schedule of
    this design beats) against input density, relative to their 100% values (the floor to the 100%
    latency); with ``tile`` k each
    frame is a k x k mosaic of test frames, each thinned or grown to the density."""
    rows, ratios = [], {}
    size = 32 * tile
    for family in ("uniform", "event-like"):
        base = None
        for density in DENSITIES:
            rng = np.random.default_rng(int(density * 1000))
            lat, neck, floor, dens = [], [], [], []
            for i in range(frames):
                if family == "uniform":
                    x = uniform_frame(rng, density, size)
                else:
                    picks = [(i * tile ** 2 + j) % len(test) for j in range(tile ** 2)]
                    x = mosaic(np.concatenate([event_like_frame(rng, test[j:j + 1], density) for j in picks]), tile)
                dens.append((x[0] != 0).any(axis=0).mean())
                session.run_dict({"input": x})
                lat.append(session.last_result.cycles)
                neck.append(session.last_result.latency["bottleneck_cycles"])
                floor.append(session.last_result.latency["floor_cycles"])
            lat_m, neck_m, floor_m = float(np.mean(lat)), float(np.mean(neck)), float(np.mean(floor))
            base = base or (lat_m, neck_m)
            us = lat_m / session.metadata["target"]["clock_mhz"]
            rows.append(f"  {family:<10} {100 * density:>5.0f}% {100 * np.mean(dens):>7.1f}% {lat_m:>9.0f} "
                        f"{us:>7.2f} {lat_m / base[0]:>7.3f} {neck_m:>9.0f} {neck_m / base[1]:>7.3f} "
                        f"{floor_m / base[0]:>7.3f}")
            if density == 0.1:
                ratios[family] = (lat_m / base[0], neck_m / base[1], floor_m / base[0])
    dense = dense_frame_timing(session.metadata["modules"])["cycles"]
    rows.append(f"  dense dataflow design, same modules and parallelism: {dense} cycles per frame; the sparse "
                f"design at 100% takes {base[0]:.0f} ({base[0] / dense:.2f}x, goal <= 1.2x)")
    for family, (lat, neck, floor) in ratios.items():
        rows.append(f"  goal (10% input density at most 0.15x of 100%), {family}: latency {lat:.3f} "
                    f"({'met' if lat <= 0.15 else 'not met'}); slowest module {neck:.3f}; floor {floor:.3f} "
                    f"({'reachable' if floor <= 0.15 else 'no schedule of this design reaches it'})")
    return rows


def latency_header() -> str:
    return (f"  {'inputs':<10} {'target':>6} {'actual':>8} {'latency':>9} {'us':>7} {'x 100%':>7} "
            f"{'slowest':>9} {'x 100%':>7} {'floor':>7}")


def accuracy(sessions: dict, test: np.ndarray, labels: np.ndarray, count: int) -> list[str]:
    lines = []
    for name in ("events_submanifold.onnx", "events_dense.onnx"):
        ort_session = ort.InferenceSession(str(EVENTS / name), providers=["CPUExecutionProvider"])
        logits = np.concatenate([ort_session.run(None, {"input": test[i:i + 1]})[0] for i in range(count)])
        lines.append(f"  float {name:<26} onnxruntime  top-1 {np.mean(logits.argmax(1) == labels[:count]):.4f}")
    for mode, session in sessions.items():
        interp = SparseInterpreter(session.module, mode)
        hits, same = 0, 0
        for i in range(count):
            feeds = {"input": test[i:i + 1]}
            out = session.run_dict(feeds)["logits"]
            hits += int(out.argmax() == labels[i])
            same += int(np.array_equal(out, interp.run(feeds).outputs["logits"]))
        lines.append(f"  int8 {mode:<12} token simulator           top-1 {hits / count:.4f}   "
                     f"bit-identical to run_sparse on {same}/{count} frames")
    return lines


def speed(session: SparseSession, test: np.ndarray, repeat: int) -> list[str]:
    ort_session = ort.InferenceSession(str(EVENTS / "events_dense.onnx"), providers=["CPUExecutionProvider"])
    frames = [{"input": test[i:i + 1]} for i in range(20)]
    t_ort, _ = best_of(repeat, lambda: [ort_session.run(None, f) for f in frames])
    t_sim, _ = best_of(repeat, lambda: [session.run_dict(f) for f in frames])
    t_ref, _ = best_of(repeat, lambda: [run_module(session.module, f) for f in frames])
    per = 1e3 / len(frames)
    return [f"  onnxruntime float (dense)          {t_ort * per:8.3f} ms/frame",
            f"  token simulator ({session.mode:<11})      {t_sim * per:8.3f} ms/frame   "
            f"{t_sim / t_ort:6.1f}x onnxruntime",
            f"  integer reference run_module       {t_ref * per:8.3f} ms/frame   {t_ref / t_ort:6.1f}x onnxruntime"]


ZOO = {"squeezenet": None, "resnet50": "u250.toml", "densenet121": "u250.toml"}  # name -> budget (None: ZCU102)


def zoo_model(work: Path, name: str, repeat: int) -> list[str]:
    """A light-zoo CNN at 224 x 224 in exact mode (and submanifold mode where it has one): design,
    latency at 100% and 10% input density, equality with the references, and the simulator's time
    against onnxruntime and the dense integer reference, on the same input."""
    import onnx

    from tcc.backends.sparse.target import DEFAULT_SPARSE_TARGET

    model = light_zoo.randomized(name)
    inputs = light_zoo.model_inputs(model)
    name_in, x = next(iter(inputs.items()))
    onnx.save(model, str(work / f"{name}.onnx"))
    rng = np.random.default_rng(0)
    np.savez(work / "calib.npz", **{name_in: rng.standard_normal((4,) + x.shape[1:]).astype(np.float32)})
    budget = DEFAULT_SPARSE_TARGET.parent / ZOO[name] if ZOO[name] else None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the light zoo lists initializers as graph inputs
    ort_session = ort.InferenceSession(str(work / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
    lines = []
    for mode in ("exact",) if name == "squeezenet" else ("exact", "submanifold"):
        passes = DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(work / "calib.npz"), sparse_mode=mode) + (
            f"annotate-sparsity{{calib={work / 'calib.npz'},mode={mode}}}",)
        start = time.perf_counter()
        module, _ = compile_to_ir(str(work / f"{name}.onnx"), {}, passes)
        artifact = compile_sparse(module, mode, budget)
        session = SparseSession(artifact)
        lines.append(f"== light-zoo {name} (random weights, 224 x 224), {mode}, compiled in "
                     f"{time.perf_counter() - start:.0f} s: {artifact.summary()}")
        interp = SparseInterpreter(session.module, mode)
        for density in (1.0, 0.1):
            feeds = {name_in: (x * (rng.random((1, 1) + x.shape[2:]) < density)).astype(np.float32)}
            t_sim, out = best_of(repeat, lambda s=session, feeds=feeds: s.run_dict(feeds))
            t_ref, ref = best_of(1, lambda i=interp, feeds=feeds: i.run(feeds).outputs)
            same = all(np.array_equal(out[k], ref[k]) for k in ref)
            line = (f"  input density {100 * density:>3.0f}%: latency {session.last_result.cycles} cycles, slowest "
                    f"module {session.last_result.latency['bottleneck_cycles']}; equal to run_sparse: {same}")
            if mode == "exact":
                dense = run_module(session.module, feeds)
                line += f", to run_module: {all(np.array_equal(out[k], dense[k]) for k in dense)}"
            t_ort, _ = best_of(repeat, lambda feeds=feeds: ort_session.run(None, feeds))
            lines.append(line + f"; simulator {t_sim * 1e3:.0f} ms, run_sparse {t_ref * 1e3:.0f} ms, onnxruntime "
                                f"float {t_ort * 1e3:.1f} ms ({t_sim / t_ort:.0f}x)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="frames per density")
    parser.add_argument("--accuracy-frames", type=int, default=359)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-zoo", action="store_true", help="skip the light-zoo section")
    parser.add_argument("--tile", type=int, default=4,
                        help="also time the events network on k x k mosaics of test frames (1: skip)")
    parser.add_argument("--zoo-only", action="store_true", help="run only the light-zoo section")
    args = parser.parse_args()
    if not args.zoo_only:
        events(args)
    if not args.no_zoo:
        import tempfile

        for name in ZOO:
            with tempfile.TemporaryDirectory() as work:
                print("\n".join(zoo_model(Path(work), name, args.repeat)), flush=True)


def events(args) -> None:
    data = np.load(EVENTS / "events_test.npz")
    test, labels = data["input"].astype(np.float32), data["label"]
    sessions = {}
    for mode in ("submanifold", "exact"):
        artifact, session, seconds = compile_events(mode)
        sessions[mode] = session
        print(f"== events, {mode} (compiled in {seconds:.1f} s): {artifact.summary()}")
        print(latency_header())
        print("\n".join(latency_table(session, test, args.frames)))
        t, d = artifact.metadata["target"], artifact.metadata["dse"]
        print(f"  resources: {d['dsp']}/{t['dsp']} DSP ({100 * d['dsp'] / t['dsp']:.0f}%), "
              f"{d['bram18'] / 2:g}/{t['bram36']} BRAM36 ({50 * d['bram18'] / t['bram36']:.0f}%), "
              f"{d['lut']}/{t['lut']} LUT ({100 * d['lut'] / t['lut']:.0f}%)")
    if args.tile > 1:
        import tempfile

        with tempfile.TemporaryDirectory() as work:
            artifact, session, seconds = compile_events("submanifold", args.tile, Path(work))
        size = 32 * args.tile
        print(f"== events network at {size} x {size} (DVS Gesture's frame size at 128; {args.tile} x {args.tile} "
              f"mosaics of test frames), submanifold (compiled in {seconds:.1f} s): {artifact.summary()}")
        print(latency_header())
        print("\n".join(latency_table(session, test, max(4, args.frames // 4), args.tile)))
    print(f"== accuracy on examples/events/events_test.npz ({args.accuracy_frames} frames)")
    print("\n".join(accuracy(sessions, test, labels, args.accuracy_frames)))
    print("== wall time per frame (20 test frames, best of {})".format(args.repeat))
    for session in sessions.values():
        print("\n".join(speed(session, test, args.repeat)))


if __name__ == "__main__":
    main()
