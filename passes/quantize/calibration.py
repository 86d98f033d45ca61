"""Calibration: run the float reference over sample inputs and observe every float value."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from tcc.ir import Module, Value
from tcc.ir.dtypes import cast, to_numpy
from tcc.ir.interpreter import run_module
from tcc.ir.npz import DataFileError, read_npz

from .lowering import LINEAR_KINDS, matrix_operands
from .nonfinite import all_finite, overflows_float32
from .observers import OBSERVERS, MinMaxObserver, MseObserver, PercentileObserver, Ranges, SoftmaxInputObserver

# ``auto``: min/max, except the data inputs of reduction layers, which get the range of least
# measured int8 error (reduction_inputs).
CALIBRATION_METHODS = ("auto",) + tuple(OBSERVERS)
DEFAULT_CALIBRATION = "auto"


class CalibrationError(DataFileError):
    """Calibration data that does not fit the model."""


def load_samples(path: str, module: Module, max_samples: int = 0,
                 what: str = "calibration file") -> list[dict[str, np.ndarray]]:
    """``path``: .npz, each key a model input name, axis 0 indexing samples.

    A sample may have the input's full shape (key shape [N, *input_shape]) or the input's
    shape without its leading batch dim of 1 (key shape [N, *input_shape[1:]]); a key of
    exactly the input's shape is one sample. Shapes are checked before any array is
    decompressed (``ir/npz.py``); a non-finite value (+-Inf, NaN) is refused, naming the input and
    the sample. An input of a type .npz cannot store (bf16, float8, int4...) takes its samples as
    float32 (integers: int8/uint8 or wider) holding values of that type exactly. ``what`` names the
    file in errors.
    """
    expected = {v.name: v.type.shape for v in module.inputs}
    types = {v.name: v.type.dtype for v in module.inputs}
    keys: list[str] = []
    arrays = read_npz(path, what, _sample_check(path, expected, keys), error=CalibrationError)
    _require_inputs(path, expected, keys)
    shaped = {}
    for name, full in expected.items():
        a = arrays[name]
        shaped[name] = a if a.shape[1:] == full else a[None] if a.shape == full else a[:, None]
    counts = {a.shape[0] for a in shaped.values()}
    if len(counts) != 1 or 0 in counts:
        raise CalibrationError(f"{path}: inputs have different or zero sample counts {sorted(counts)}")
    n = counts.pop()
    if max_samples:
        n = min(n, max_samples)
    for name, a in shaped.items():
        _check_finite(path, name, a[:n])
        shaped[name] = _as_input_type(str(path), name, a[:n], types[name])
    return [{name: a[i] for name, a in shaped.items()} for i in range(n)]


def check_samples_file(path: str, module: Module, what: str = "calibration file") -> None:
    """``load_samples``'s checks of the archive and of each key's shape, from the headers alone
    (nothing is decompressed): for readers that stream the samples afterwards."""
    expected = {v.name: v.type.shape for v in module.inputs}
    keys: list[str] = []
    check = _sample_check(path, expected, keys)
    read_npz(path, what, lambda key, shape, dtype: check(key, shape, dtype) and False, error=CalibrationError)
    _require_inputs(path, expected, keys)


def _require_inputs(path, expected: dict[str, tuple[int, ...]], keys: list[str]) -> None:
    missing = sorted(set(expected) - set(keys))
    if missing:
        raise CalibrationError(f"{path}: no samples for input(s) {', '.join(map(repr, missing))}; "
                               f"keys present: {', '.join(map(repr, sorted(keys))) or 'none'}")


def _sample_check(path, expected: dict[str, tuple[int, ...]], keys: list[str]):
    """The member check for ``read_npz``: keys of model inputs must have a sample shape; every key
    seen is appended to ``keys``."""
    def check(key: str, shape: tuple[int, ...], dtype) -> bool:
        keys.append(key)
        full = expected.get(key)
        if full is None:
            return False  # another key: ignored, never decompressed
        if shape[1:] == full or shape == full or (full and full[0] == 1 and shape[1:] == full[1:]):
            return True
        raise CalibrationError(f"{path}: key {key!r} has shape {list(shape)}; expected "
                               f"[N, {', '.join(map(str, full))}] (axis 0 indexes samples)")

    return check


def _check_finite(path, name: str, samples: np.ndarray) -> None:
    """Calibration data must be finite: one Inf or NaN makes every range (and scale) after it garbage."""
    if samples.dtype.kind != "f":
        return
    bad = ~np.isfinite(samples.reshape(len(samples), -1)).all(axis=1)
    if bad.any():
        first = int(np.argmax(bad))
        values = samples[first][~np.isfinite(samples[first])]
        kinds = sorted({"NaN" if np.isnan(v) else "+Inf" if v > 0 else "-Inf" for v in values[:1000].tolist()})
        raise CalibrationError(f"{path}: input {name!r} sample {first} holds {'/'.join(kinds)} ({int(bad.sum())} "
                               f"of {len(samples)} samples are not finite); tcc calibrates on finite values only")


def _as_input_type(where: str, name: str, samples: np.ndarray, dtype: str) -> np.ndarray:
    """Samples of an input whose type numpy has no builtin for (ml_dtypes' bf16, float8, int4),
    converted from the wider array .npz stores; refused unless every value converts exactly.
    ``where`` (the file, or the sample) starts the error message."""
    target = to_numpy(dtype)
    if target.isbuiltin == 1 or samples.dtype == target:
        return samples
    converted = cast(samples, dtype)
    back = converted.astype(np.float64)
    same = (back == samples.astype(np.float64)) | (np.isnan(back) & np.isnan(samples.astype(np.float64)))
    if not same.all():
        first = samples.reshape(-1)[int(np.argmin(same.reshape(-1)))]
        raise CalibrationError(f"{where}: input {name!r} is {dtype}; its samples ({samples.dtype}) hold values "
                               f"{dtype} cannot represent exactly (first: {first}); round them to {dtype} first")
    return converted


def reduction_inputs(module: Module) -> set[int]:
    """Values (ids) read only as the data operand of conv / linear / matmul layers.

    ``auto`` calibration measures, for these, the int8 round-trip error of every clipping range
    from min/max down to 30% of it (MseObserver) and keeps the smallest: the layer's reduction
    averages the clipping of rare outliers, while the finer step helps every element.  Values a
    max-pool, a concat, an add or a model output reads keep min/max, where clipping the largest
    elements is what survives (measured on the light zoo: MSE ranges everywhere lose 0.4 dB on
    SqueezeNet, on reduction inputs only they gain 0.1-0.2 dB; bench/quant_vs_ort.py).

    The model's inputs are calibrated at min/max here; the quantizer then takes the clip instead
    only where rounding the input at it measures less output error on held-out calibration
    samples (input_range.py)."""
    chosen = set()
    inputs = {id(v) for v in module.inputs}
    for value in module.values():
        users = value.users
        if id(value) in inputs:
            continue  # a model input: input_range.py chooses its range
        if value.producer is not None and value.producer.kind == "softmax":
            continue  # attention probabilities: the few near 1 carry the result (softmax_inputs)
        if users and not module.is_output(value) and all(
                u.kind in LINEAR_KINDS and matrix_operands(u)[0] is value for u in users):
            chosen.add(id(value))
    return chosen


def softmax_inputs(module: Module) -> set[int]:
    """Values (ids) made by a matmul and read only by softmaxes over their last axis: attention
    scores.  (A score that an attention mask was added to is left alone: the mask's range, about
    -3.4e38 in Hugging Face exports, is not the scores'.)

    ``auto`` calibration gives these a range whose low end is chosen by the error of the softmax
    output (observers.SoftmaxInputObserver), and keeps min/max for the softmax's own output, which
    MSE clipping would cut at the few probabilities near 1 that carry the attention.  On the ViT
    block (examples/encoder) min/max scores and MSE probabilities are 41.7 and 41.2 dB of logits
    SQNR when each is the only int8 tensor; the clipped scores 44.0 dB, min/max probabilities 42.4 dB."""
    chosen = set()
    for value in module.values():
        users = value.users
        if value.producer is None or value.producer.kind != "matmul":
            continue
        if users and not module.is_output(value) and all(
                u.kind == "softmax" and u.axis % value.type.rank == value.type.rank - 1 for u in users):
            chosen.add(id(value))
    return chosen


CHUNK = 8  # samples per unit of work: the serial and the parallel runs merge the same chunks

#: ``executor(task, module)`` -> (sample count, the results ``task.run(start, samples)`` of consecutive
#: chunks of the calibration samples in sample order, having called ``task.open()`` once wherever it
#: runs): the driver provides one that streams the file through tcc's evaluation engine, in parallel.
Executor = Callable[["CalibrationTask", Module], tuple[int, Iterable[dict]]]


@dataclass
class KeptRuns:
    """What a caller keeps of calibration's float runs on a few samples (by index in ``samples``): the
    model's outputs, and the arrays of the values named ``names`` (the quantizer's measured choices
    compare against these instead of running the float model on the same samples again)."""

    indices: frozenset[int]
    names: frozenset[str]
    outputs: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    arrays: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)


def calibrate(module: Module, samples, method: str = DEFAULT_CALIBRATION, percentile: float = 99.99,
              progress: Callable[[int, int], None] | None = None, sparse_mode: str = "",
              executor: Executor | None = None, kept: KeptRuns | None = None) -> Ranges:
    """Ranges (lo, hi) of every float value of ``module``, keyed by id(Value); ``progress(done, total)``
    is called after each chunk of samples.

    ``samples``: a list of feeds, run here chunk by chunk; or None with an ``executor`` that reads
    and runs the chunks wherever it likes.  Observers of each chunk merge
    in sample order, exactly (observers.py), so the ranges do not depend on how the chunks ran.

    ``sparse_mode="submanifold"`` observes the values the sparse target will compute (zero at
    inactive sites, ir/interpreter/sparse.py) instead of the dense model's: a network trained
    with submanifold semantics has different ranges under the dense rule.

    ``kept``: filled with the dense float runs' outputs and arrays it asks for (samples run here only).
    """
    if method not in OBSERVERS and method != "auto":
        raise CalibrationError(f"unknown calibration method {method!r}; "
                               f"choose from {', '.join(CALIBRATION_METHODS)}")
    task = CalibrationTask(method, percentile, sparse_mode, module)
    if executor is None:  # here, a sample at a time (merging is exact, so any chunking gives the same)
        task.kept = None if sparse_mode else kept
        task.open()
        total, step = len(samples), 1
        parts: Iterable[dict] = (task.run(i, [sample]) for i, sample in enumerate(samples))
    else:
        (total, parts), step = executor(task, module), CHUNK
    observers: dict[str, MinMaxObserver] = {}
    done = 0
    for part in parts:
        for name, obs in part.items():
            if name in observers:
                observers[name].merge(obs)
            else:
                observers[name] = obs
        done = min(done + step, total)
        if progress is not None:
            progress(done, total)
    by_name = {v.name: v for v in module.values()}
    ranges = Ranges()
    for name, obs in observers.items():
        lo, hi = obs.range()
        ranges[id(by_name[name])] = (float(lo), float(hi))
    ranges.non_finite = frozenset(id(by_name[name]) for name, obs in observers.items() if obs.non_finite)
    return ranges


class CalibrationTask:
    """The observers of a chunk of samples, by value name: picklable, so a worker process opens it
    (the module travels as IR text) and runs any chunks it is given."""

    def __init__(self, method: str, percentile: float, sparse_mode: str, module: Module):
        self.method, self.percentile, self.sparse_mode = method, percentile, sparse_mode
        self.text: str | None = None
        self.module: Module | None = module
        self.kept: KeptRuns | None = None  # filled by run (in this process only)

    def __getstate__(self):
        state = dict(self.__dict__, module=None, kept=None)
        if state["text"] is None and self.module is not None:
            from tcc.ir import print_module

            state["text"] = print_module(self.module)
        return state

    def open(self) -> None:
        """Ready to run: on the module given, or in another process on the one parsed back from text."""
        if self.module is None:
            from tcc.ir import parse_module

            self.module = parse_module(self.text or "")
        module = self.module
        reduced, scores = (reduction_inputs(module), softmax_inputs(module)) if self.method == "auto" else (set(), set())
        self.reduced = {v.name for v in module.values() if id(v) in reduced}
        self.scores = {v.name for v in module.values() if id(v) in scores}
        self.input_names = {v.name for v in module.inputs}
        self.input_types = {v.name: v.type.dtype for v in module.inputs}

    def _new_observer(self, name: str) -> MinMaxObserver:
        if self.method == "auto":
            if name in self.scores:
                return SoftmaxInputObserver()
            return MseObserver() if name in self.reduced else MinMaxObserver()
        return PercentileObserver(self.percentile) if self.method == "percentile" else OBSERVERS[self.method]()

    def run(self, start: int, samples) -> dict[str, MinMaxObserver]:
        assert self.module is not None, "CalibrationTask.run before open"
        observers: dict[str, MinMaxObserver] = {}
        index = start
        made: dict[int, tuple[Value, np.ndarray]] = {}  # the running sample's non-finite values, by id
        arrays: dict[str, np.ndarray] = {}  # the running sample's arrays that self.kept asks for
        kept = self.kept

        def observe(value: Value, array: np.ndarray) -> None:
            if kept is not None and index in kept.indices and value.name in kept.names:
                arrays[value.name] = np.array(array)
            if not all_finite(array):
                if value.name in self.input_names:
                    raise CalibrationError(f"calibration sample {index}: input {value.name!r} is not finite "
                                           f"(Inf or NaN); tcc calibrates on finite values only")
                made[id(value)] = (value, array)
            if value.type.dtype != "f32":
                return
            obs = observers.get(value.name)
            if obs is None:
                obs = observers[value.name] = self._new_observer(value.name)
            if id(value) in made:  # the range of its finite values; the lowering keeps it off int8
                obs.non_finite = True
                array = array[np.isfinite(array)]
            obs.observe(array)

        module = self.module
        run = _sparse_runner(module, self.sparse_mode, observe) if self.sparse_mode else \
            (lambda sample: run_module(module, sample, observe=observe))
        # One BLAS thread wherever a chunk runs: a float matmul's rounding depends on how BLAS splits
        # it over threads, and the ranges must not depend on how many workers calibrate.
        with threadpool_limits(1, user_api="blas"):
            for offset, sample in enumerate(samples):
                index = start + offset
                made.clear()
                arrays = {}
                feeds = {name: _as_input_type(f"calibration sample {index}", name, np.asarray(a), self.input_types[name])
                         if name in self.input_types else a for name, a in getattr(sample, "feeds", sample).items()}
                with np.errstate(all="ignore"):  # an overflow is reported below, in one line
                    outputs = run(feeds)
                self._refuse_overflow(made, feeds, index)
                if kept is not None and index in kept.indices:
                    kept.outputs[index], kept.arrays[index] = outputs, arrays
        return observers

    def _refuse_overflow(self, made: dict[int, tuple[Value, np.ndarray]], feeds, index: int) -> None:
        """Refuse the sample if one of its non-finite values is a float32 overflow: made from finite
        operands, and finite when its op runs in float64 (nonfinite.py; a constant's -inf, its
        propagation, log(0) and the like are the model's own)."""
        assert self.module is not None
        for value, array in made.values():
            op = value.producer
            if op is None or op.kind == "const" or any(id(v) in made for v in op.operands):
                continue
            if self.sparse_mode or overflows_float32(self.module, value, array, feeds):
                raise CalibrationError(f"calibration sample {index}: tensor {value.name!r} ({op.kind} op from ONNX "
                                       f"node {op.loc!r}) is not finite: the float model overflows float32 on "
                                       f"this sample, so it has no int8 range; check the calibration data's scale")


def _sparse_runner(module: Module, mode: str, observe):
    """Run one sample with the sparse target's semantics and observe every value it computed."""
    from tcc.ir.interpreter.sparse import SparseInterpreter

    interpreter = SparseInterpreter(module, mode)
    values = list(module.values())

    def run(sample) -> None:
        computed = interpreter.run(sample).values
        for value in values:
            if value.name in computed:
                observe(value, computed[value.name])

    return run
