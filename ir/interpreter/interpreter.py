"""The run loop: bind inputs, evaluate ops in order, free each intermediate after its last use."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from ..core import Module, Op, Value
from ..dtypes import cast, to_numpy
from ..errors import InterpreterError
from ..verifier import describe
from .. import numerics
from .registry import BF16_KERNELS, KERNELS, OP_KERNELS


def _run_typed_kernel(op: Op, kernel, operands: list[np.ndarray]):
    """Run a float kernel on whatever element types the op has.

    bf16: ops with a SIMD-lane sequence (kernels_bf16.py: softmax, gelu, layer_norm, exp, ...)
    run it, rounding every step as the lanes do; any other op widens its operands exactly to f32,
    computes in f32 and rounds each result once to bf16 (RNE).  Integers: operands widen to int64 and the
    results must fit the result type; overflow is an error, never a silent wrap.
    """
    dtypes = {v.type.dtype for v in op.operands} | {r.type.dtype for r in op.results}
    if dtypes == {"bf16"} and op.kind in BF16_KERNELS:
        produced = BF16_KERNELS[op.kind](op.attrs, *[a.astype(np.float32) for a in operands])
        return tuple(np.asarray(p, np.float32) for p in (produced if isinstance(produced, tuple) else (produced,)))
    if "bf16" in dtypes:
        widened = [a.astype(np.float32) if v.type.dtype == "bf16" else a for a, v in zip(operands, op.operands)]
        produced = kernel(op.attrs, *widened)
        produced = produced if isinstance(produced, tuple) else (produced,)
        return tuple(numerics.bf16_round(np.asarray(p, np.float32)) if r.type.dtype == "bf16" else p
                     for p, r in zip(produced, op.results))
    integer_results = [np.issubdtype(to_numpy(r.type.dtype), np.integer) for r in op.results]
    if not any(integer_results):
        return kernel(op.attrs, *operands)
    widened = [a.astype(np.int64) if np.issubdtype(a.dtype, np.integer) else a for a in operands]
    produced = kernel(op.attrs, *widened)
    produced = produced if isinstance(produced, tuple) else (produced,)
    for p, r, is_int in zip(produced, op.results, integer_results):
        p = np.asarray(p)
        info = np.iinfo(to_numpy(r.type.dtype)) if is_int else None
        if info is not None and p.size and (p.max() > info.max or p.min() < info.min):
            raise InterpreterError(f"integer overflow: result range [{p.min()}, {p.max()}] does not fit "
                                   f"{r.type.dtype}")
    return produced


def evaluate_op(op: Op, operands: list[np.ndarray]) -> list[np.ndarray]:
    """Evaluate one op on concrete operand arrays; one array per result, in the result types' dtypes."""
    if op.kind in OP_KERNELS:
        run = lambda: OP_KERNELS[op.kind](op, *operands)  # noqa: E731
    elif op.kind in KERNELS:
        run = lambda: _run_typed_kernel(op, KERNELS[op.kind], operands)  # noqa: E731
    else:
        raise InterpreterError(f"{describe(op)}: the interpreter has no kernel for op kind {op.kind!r}")
    if len(operands) != len(op.operands):
        raise InterpreterError(f"{describe(op)}: given {len(operands)} operand arrays, the op has "
                               f"{len(op.operands)} operands")
    try:
        produced = run()
    except InterpreterError as exc:
        raise InterpreterError(f"{describe(op)}: {exc}") from None
    except (ValueError, IndexError, TypeError) as exc:  # numpy refusing these operands
        shapes = ", ".join(f"{np.asarray(a).dtype}{list(np.shape(a))}" for a in operands)
        raise InterpreterError(f"{describe(op)}: kernel failed on operands {shapes}: {exc}") from exc
    produced = produced if isinstance(produced, tuple) else (produced,)
    if len(produced) != len(op.results):
        raise InterpreterError(f"{describe(op)}: kernel gave {len(produced)} arrays for "
                               f"{len(op.results)} results")
    arrays = []
    for result, array in zip(op.results, produced):
        array = np.asarray(array)
        if array.shape != result.type.shape:
            raise InterpreterError(f"{describe(op)}: kernel computed shape {list(array.shape)} for "
                                   f"%{result.name}, whose type is {result.type}")
        arrays.append(cast(array, result.type.dtype))
    return arrays


def _bind_input(value: Value, given) -> np.ndarray:
    array = np.asarray(given)
    expected = to_numpy(value.type.dtype)
    if array.shape != value.type.shape:
        raise InterpreterError(f"input {value.name!r} has shape {list(array.shape)} ({array.dtype}), "
                               f"expected {value.type}")
    if array.dtype == expected:
        return array
    # float64 is what numpy makes by default; narrowing it to f32 is the one unsafe cast we allow.
    if (array.dtype == np.float64 and expected == np.float32) or np.can_cast(array.dtype, expected, "safe"):
        return array.astype(expected)
    raise InterpreterError(f"input {value.name!r} has element type {array.dtype}, expected {value.type} "
                           f"(numpy {expected}); cast it explicitly")


def bind_inputs(module: Module, inputs: Mapping[str, np.ndarray]) -> dict[int, np.ndarray]:
    """Check ``inputs`` against the module's inputs; the environment maps id(Value) to its array."""
    expected = {v.name: v for v in module.inputs}
    extra = sorted(set(inputs) - set(expected))
    if extra:
        raise InterpreterError(f"unknown input(s) {', '.join(map(repr, extra))}; module @{module.name} takes "
                               + ", ".join(f"{v.name!r}: {v.type}" for v in module.inputs))
    env = {}
    for name, value in expected.items():
        if name not in inputs:
            raise InterpreterError(f"missing input {name!r} of type {value.type}")
        env[id(value)] = _bind_input(value, inputs[name])
    return env


def last_uses(module: Module) -> list[list[Value]]:
    """For each op index, the values that die once that op has run (never the module's outputs)."""
    position = {id(op): i for i, op in enumerate(module.ops)}
    kept = {id(v) for v in module.output_values()}
    dying: list[list[Value]] = [[] for _ in module.ops]
    for i, op in enumerate(module.ops):
        for r in op.results:
            if id(r) in kept:
                continue
            readers = [position[id(user)] for user in r.users if id(user) in position]
            dying[max(readers, default=i)].append(r)
    for v in module.inputs:
        readers = [position[id(user)] for user in v.users if id(user) in position]
        if id(v) not in kept and readers:
            dying[max(readers)].append(v)
    return dying


def run_module(module: Module, inputs: Mapping[str, np.ndarray],
               observe: Callable[[Value, np.ndarray], None] | None = None) -> dict[str, np.ndarray]:
    """Run ``module`` on named input arrays; returns its outputs by output name.

    ``observe(value, array)``, if given, sees every input and every op result as it is computed
    (calibration uses it); it must not modify the array.
    """
    env = bind_inputs(module, inputs)
    if observe is not None:
        for v in module.inputs:
            observe(v, env[id(v)])
    return _run(module, env, 0, observe)


@dataclass(frozen=True)
class Checkpoint:
    """The values alive before op ``index`` of a run, by value name: where another run of the same
    module, or of one whose first ``index`` ops are the same, can resume (``run_from``)."""

    index: int
    values: dict[str, np.ndarray]


def start_checkpoint(module: Module, inputs: Mapping[str, np.ndarray]) -> Checkpoint:
    """The checkpoint before the first op: the bound inputs."""
    env = bind_inputs(module, inputs)
    return Checkpoint(0, {v.name: env[id(v)] for v in module.inputs})


def live_before(module: Module, index: int) -> set[str]:
    """The names of the values that ops ``index`` and later (or the outputs) read but that are made
    before op ``index`` (or are inputs): what a checkpoint at ``index`` must hold."""
    made_later = {id(r) for op in module.ops[index:] for r in op.results}
    read = [v for op in module.ops[index:] for v in op.operands] + module.output_values()
    return {v.name for v in read if id(v) not in made_later}


def run_from(module: Module, start: Checkpoint, every: int) -> tuple[dict[str, np.ndarray], list[Checkpoint]]:
    """Run ``module`` from ``start`` (which must hold ``live_before(module, start.index)``): its
    outputs, and a checkpoint before every ``every``-th op after ``start.index``."""
    by_name = {v.name: v for v in module.values()}
    needed = live_before(module, start.index)
    missing = sorted(needed - set(start.values))
    if missing:
        raise InterpreterError(f"checkpoint at op {start.index} lacks %{missing[0]}, which later ops read")
    env = {id(by_name[name]): start.values[name] for name in needed}
    checkpoints: list[Checkpoint] = []
    names = {id(v): name for name, v in by_name.items()}

    def record(i: int, live: dict[int, np.ndarray]) -> None:
        if i > start.index and i % every == 0:
            checkpoints.append(Checkpoint(i, {names[key]: array for key, array in live.items()}))

    return _run(module, env, start.index, None, record), checkpoints


def _run(module: Module, env: dict[int, np.ndarray], first: int,
         observe: Callable[[Value, np.ndarray], None] | None,
         before_op: Callable[[int, dict[int, np.ndarray]], None] | None = None) -> dict[str, np.ndarray]:
    """Evaluate ops ``first``.. on ``env`` (the values alive before op ``first``, by id); the outputs."""
    dying = last_uses(module)
    for i in range(first, len(module.ops)):
        op = module.ops[i]
        if before_op is not None:
            before_op(i, env)
        try:
            operands = [env[id(v)] for v in op.operands]
        except KeyError:
            missing = next(v for v in op.operands if id(v) not in env)
            raise InterpreterError(f"{describe(op, i)}: operand %{missing.name} is not computed before "
                                   f"this op; is the module in topological order?") from None
        for result, array in zip(op.results, evaluate_op(op, operands)):
            env[id(result)] = array
            if observe is not None:
                observe(result, array)
        for value in dying[i]:
            env.pop(id(value), None)
    outputs = {}
    for name, value in module.outputs:
        if id(value) not in env:
            raise InterpreterError(f"output {name!r} refers to %{value.name}, which no op computes")
        # A copy: an output may be a view of a constant, of an input or of a broadcast.
        outputs[name] = np.array(env[id(value)], order="C")
    return outputs
