"""Property tests: broadcasting binaries and slicing agree with numpy on generated shapes and bounds."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from interpreter_oracle import one_op_module
from tcc.ir.interpreter import run_module

NUMPY_BINARIES = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "max": np.maximum,
                  "min": np.minimum}


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(NUMPY_BINARIES)),
       shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
       seed=st.integers(0, 2**16))
def test_broadcasting_binary_matches_numpy(kind, shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = (np.asarray(rng.uniform(0.5, 2.0, s) * rng.choice([-1, 1], s), np.float32) for s in shapes.input_shapes)
    out = run_module(one_op_module(kind, {}, [a, b]), {"x0": a, "x1": b})["y0"]
    expected = NUMPY_BINARIES[kind](a, b)
    assert out.shape == shapes.result_shape
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


BOUND = st.one_of(st.integers(-8, 8), st.sampled_from([-2**63, 2**63 - 1, -100, 100]))


@st.composite
def slice_specs(draw):
    shape = draw(st.lists(st.integers(0, 6), min_size=1, max_size=3))
    axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), unique_by=lambda a: a % len(shape),
                         min_size=1, max_size=len(shape)))
    starts = [draw(BOUND) for _ in axes]
    ends = [draw(BOUND) for _ in axes]
    steps = [draw(st.sampled_from([-3, -2, -1, 1, 2, 3])) for _ in axes]
    return tuple(shape), dict(starts=tuple(starts), ends=tuple(ends), axes=tuple(axes), steps=tuple(steps))


@settings(max_examples=150, deadline=None)
@given(spec=slice_specs())
def test_slice_matches_python_slicing(spec):
    shape, attrs = spec
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    index = [slice(None)] * len(shape)
    for start, end, axis, step in zip(attrs["starts"], attrs["ends"], attrs["axes"], attrs["steps"]):
        index[axis] = slice(start, end, step)
    out = run_module(one_op_module("slice", attrs, [x]), {"x0": x})["y0"]
    np.testing.assert_array_equal(out, x[tuple(index)])
