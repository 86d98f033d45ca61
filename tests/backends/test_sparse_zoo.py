"""A light-zoo CNN on the sparse target: SqueezeNet (random weights; fire modules with channel
concat, 3x3 stride-2 unpadded conv and max pooling, so exact mode only) at several input densities."""
from __future__ import annotations

import numpy as np

from sparse_helpers import squeezenet_small
from tcc.backends.sparse import compile_sparse
from tcc.ir.interpreter import run_module
from tcc.ir.interpreter.sparse import run_sparse
from tcc.runtime.sparse_session import SparseSession


def test_squeezenet_exact_mode_equals_references(tmp_path):
    module, name, x = squeezenet_small(tmp_path)
    artifact = compile_sparse(module, "exact")
    kinds = [s["kind"] for s in artifact.modules]
    assert kinds.count("concat") == 8 and kinds.count("maxpool") == 3
    assert artifact.metadata["dse"]["dsp"] <= 2016 and artifact.metadata["dse"]["bram18"] <= 2 * 730
    session = SparseSession(artifact)
    rng = np.random.default_rng(3)
    for density in (1.0, 0.2):
        feeds = {name: (x * (rng.random((1, 1) + x.shape[2:]) < density)).astype(np.float32)}
        out = session.run_dict(feeds)
        ref = run_sparse(session.module, feeds, "exact")
        dense = run_module(session.module, feeds)
        for key in dense:
            np.testing.assert_array_equal(out[key], ref.outputs[key])
            np.testing.assert_array_equal(out[key], dense[key])
        for value, array in session.values().items():
            np.testing.assert_array_equal(array, ref.values[value], err_msg=value)
