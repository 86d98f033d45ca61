"""Data-movement kernels and resize against onnxruntime."""
import numpy as np
import pytest
from onnx import helper, numpy_helper

from interpreter_oracle import check_against_ort, rand

I64_MAX, I64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def test_const():
    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    node = helper.make_node("Constant", [], ["y0"], value=numpy_helper.from_array(value))
    check_against_ort("const", {"value": value}, [], node, exact=True)


@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 4), (24,), (1, 24, 1)])
def test_reshape(shape):
    x = rand(np.random.default_rng(0), 2, 3, 4)
    node = helper.make_node("Reshape", ["x0", "shape"], ["y0"])
    check_against_ort("reshape", {"shape": shape}, [x], node, {"shape": np.array(shape, np.int64)}, exact=True)


@pytest.mark.parametrize("perm", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (2, 1, 0)])
def test_transpose(perm):
    x = rand(np.random.default_rng(1), 2, 3, 4)
    check_against_ort("transpose", {"perm": perm}, [x], helper.make_node("Transpose", ["x0"], ["y0"], perm=perm),
                      exact=True)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis):
    rng = np.random.default_rng(2)
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for i, s in enumerate(shapes):
        s[axis] += i
    arrays = [rand(rng, *s) for s in shapes]
    node = helper.make_node("Concat", ["x0", "x1", "x2"], ["y0"], axis=axis)
    check_against_ort("concat", {"axis": axis}, arrays, node, exact=True)


@pytest.mark.parametrize("axis,sizes", [(1, (2, 3, 1)), (-1, (4,)), (0, (1, 2))])
def test_split(axis, sizes):
    x = rand(np.random.default_rng(3), 3, 6, 4)[: sum(sizes) if axis == 0 else None]
    outputs = [f"y{i}" for i in range(len(sizes))]
    node = helper.make_node("Split", ["x0", "sizes"], outputs, axis=axis)
    check_against_ort("split", {"axis": axis, "sizes": sizes}, [x], node, {"sizes": np.array(sizes, np.int64)},
                      exact=True)


SLICE_CASES = {
    "basic": ((1,), (4,), (0,), (1,)),
    "negative_step": ((-1,), (I64_MIN,), (1,), (-1,)),
    "negative_step_2": ((5, 4), (0, -100), (1, 2), (-2, -3)),
    "clamped": ((-100, 2), (100, I64_MAX), (0, -1), (1, 2)),
    "empty": ((3,), (1,), (0,), (1,)),
    "negative_axes_and_ends": ((-3, 0), (-1, -2), (-1, -2), (1, 1)),
    "step_3": ((0, 1), (7, 8), (1, 2), (3, 2)),
}


@pytest.mark.parametrize("case", SLICE_CASES.values(), ids=SLICE_CASES.keys())
def test_slice(case):
    starts, ends, axes, steps = case
    x = rand(np.random.default_rng(4), 4, 7, 8)
    names = ["starts", "ends", "axes", "steps"]
    node = helper.make_node("Slice", ["x0"] + names, ["y0"])
    attrs = dict(starts=starts, ends=ends, axes=axes, steps=steps)
    check_against_ort("slice", attrs, [x], node, {n: np.array(attrs[n], np.int64) for n in names}, exact=True)


PAD_CASES = {
    "positive": (1, 0, 2, 0, 3, 1),
    "asymmetric": (0, 2, 1, 1, 0, 2),
    "negative": (0, -1, 1, 0, 2, -2),
    "all_negative": (-1, -2, 0, 0, -1, -1),
}


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("pads", PAD_CASES.values(), ids=PAD_CASES.keys())
def test_pad(pads, mode):
    x = rand(np.random.default_rng(5), 3, 5, 4)
    node = helper.make_node("Pad", ["x0", "pads", "value"], ["y0"], mode=mode)
    initializers = {"pads": np.array(pads, np.int64), "value": np.array(1.5, np.float32)}
    check_against_ort("pad", {"pads": pads, "mode": mode, "value": 1.5}, [x], node, initializers, exact=True)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
def test_gather_with_negative_indices(axis, index_dtype):
    x = rand(np.random.default_rng(6), 4, 5, 6)
    size = x.shape[axis]
    indices = np.array([[0, -1], [size - 1, -size], [1, 2]], dtype=index_dtype)
    node = helper.make_node("Gather", ["x0", "x1"], ["y0"], axis=axis)
    check_against_ort("gather", {"axis": axis}, [x, indices], node, exact=True)


@pytest.mark.parametrize("in_shape,shape", [((3, 1), (2, 3, 4)), ((1, 4), (3, 1)), ((2, 3), (2, 3))])
def test_expand(in_shape, shape):
    x = rand(np.random.default_rng(7), *in_shape)
    node = helper.make_node("Expand", ["x0", "shape"], ["y0"])
    check_against_ort("expand", {"shape": shape}, [x], node, {"shape": np.array(shape, np.int64)}, exact=True)


@pytest.mark.parametrize("src,to", [(np.float32, "i32"), (np.float32, "i64"), (np.float32, "f16"),
                                    (np.float32, "bool"), (np.int64, "f32"), (np.int32, "i8"), (np.float32, "f32"),
                                    (np.float32, "u8")])
def test_cast(src, to):
    from tcc.ir.dtypes import to_numpy

    rng = np.random.default_rng(8)
    x = (rand(rng, 5, 6) * 50).astype(src)
    if to == "u8":
        x = np.abs(x)
    x.flat[:3] = [0, 2.5, -2.7] if to != "u8" else [0, 2.5, 2.7]
    onnx_to = helper.np_dtype_to_tensor_dtype(to_numpy(to))
    check_against_ort("cast", {"to": to}, [x], helper.make_node("Cast", ["x0"], ["y0"], to=onnx_to), exact=True)
