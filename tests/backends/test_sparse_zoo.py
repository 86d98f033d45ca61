"""Light-zoo CNNs on the sparse target (random weights, small inputs for test time), at several
input densities: the token simulator equals run_sparse on every stream in each mode the model
has, and, in exact mode, the dense int8 model (run_module) on the outputs.

SqueezeNet (fire modules: channel concat with branch rescales, unpadded 3x3 stride-2 windows, so
exact mode only); ResNet-50 (residual adds, strided 1x1 convs, its final average pool over the
whole map) and DenseNet-121 (concat chains, BN+ReLU as depthwise 1x1 convs, 2x2 average pools,
a 1x1 conv classifier after the global pool) in both modes, and Inception v2 (padded 3x3
average pools; exact mode: its 3x3 stride-2 pools pad one side only), on the U250 budget: their
weights (25 M, 8 M and 11 M int8) do not fit a ZCU102's BRAM.
"""
from __future__ import annotations

import numpy as np
import pytest

from sparse_helpers import flatten_fc_cnn, masked, pooling_cnn, squeezenet_small, zoo_small
from tcc.backends.sparse import SparseError, compile_sparse
from tcc.backends.sparse.target import DEFAULT_SPARSE_TARGET
from tcc.ir.interpreter import run_module
from tcc.ir.interpreter.sparse import run_sparse
from tcc.runtime.sparse_session import SparseSession

U250 = DEFAULT_SPARSE_TARGET.parent / "u250.toml"


def _check(session: SparseSession, name: str, x: np.ndarray, densities, seed: int = 3) -> None:
    for i, density in enumerate(densities):
        feeds = {name: masked(x, density, seed + i)}
        out = session.run_dict(feeds)
        ref = run_sparse(session.module, feeds, session.mode)
        for key in out:
            np.testing.assert_array_equal(out[key], ref.outputs[key])
        for value, array in session.values().items():
            np.testing.assert_array_equal(array, ref.values[value], err_msg=value)
        if session.mode == "exact":
            dense = run_module(session.module, feeds)
            for key in dense:
                np.testing.assert_array_equal(out[key], dense[key])


def test_squeezenet_exact_mode_equals_references(tmp_path):
    module, name, x = squeezenet_small(tmp_path)
    artifact = compile_sparse(module, "exact")
    kinds = [s["kind"] for s in artifact.modules]
    assert kinds.count("concat") == 8 and kinds.count("maxpool") == 3
    assert artifact.metadata["dse"]["dsp"] <= 2016 and artifact.metadata["dse"]["bram18"] <= 2 * 730
    _check(SparseSession(artifact), name, x, (1.0, 0.2))


@pytest.mark.parametrize("mode", ["exact", "submanifold"])
def test_resnet50_equals_references(tmp_path, mode):
    module, name, x = zoo_small(tmp_path, "resnet50", 64, mode)
    if mode == "exact":
        with pytest.raises(SparseError, match="no design fits the budget of zcu102.*BRAM18"):
            compile_sparse(module, mode)  # 25 M int8 weights in on-chip ROM
    artifact = compile_sparse(module, mode, U250)
    kinds = [s["kind"] for s in artifact.modules]
    assert kinds.count("add") == 16 and kinds.count("gpool") == 1 and kinds[-1] == "fc"
    _check(SparseSession(artifact), name, x, (1.0, 0.1))


@pytest.mark.parametrize("mode", ["exact", "submanifold"])
def test_densenet121_equals_references(tmp_path, mode):
    module, name, x = zoo_small(tmp_path, "densenet121", 32, mode)
    artifact = compile_sparse(module, mode, U250)
    kinds = [s["kind"] for s in artifact.modules]
    # at 32 x 32 the third transition's 2x2 pool covers its 2x2 map: a global pool
    assert kinds.count("avgpool") == 2 and kinds.count("gpool") == 2 and kinds.count("concat") == 58
    assert kinds[-1] == "fc"
    _check(SparseSession(artifact), name, x, (1.0, 0.1))


def test_inception_v2_exact_mode_equals_references(tmp_path):
    module, name, x = zoo_small(tmp_path, "inception_v2", 64, "exact")
    artifact = compile_sparse(module, "exact", U250)
    kinds = [s["kind"] for s in artifact.modules]
    assert kinds.count("avgpool") == 7 and kinds.count("gpool") == 1  # 3x3 pools padded, padding not counted
    _check(SparseSession(artifact), name, x, (1.0, 0.1))


@pytest.mark.parametrize("mode", ["exact", "submanifold"])
def test_average_pools_and_classifier_conv_equal_references(tmp_path, mode):
    module, name, x = pooling_cnn(tmp_path, mode)
    artifact = compile_sparse(module, mode)
    assert [s["kind"] for s in artifact.modules] == ["input", "conv", "avgpool", "conv", "avgpool", "gpool", "fc"]
    _check(SparseSession(artifact), name, x, (1.0, 0.3, 0.1))


def test_fc_on_a_flattened_map_densifies_it(tmp_path):
    module, name, x = flatten_fc_cnn(tmp_path)
    artifact = compile_sparse(module, "exact")
    assert [s["kind"] for s in artifact.modules] == ["input", "conv", "maxpool", "fc"]
    assert artifact.modules[-1]["in_shape"] == [6 * 4 * 4, 1, 1]
    _check(SparseSession(artifact), name, x, (1.0, 0.3, 0.1))
