"""A softmax's row maxima taken on its int8 scores, before their conversion to bf16
(backends/overlay/row_max.py): the premise (the conversion is monotone), and a ViT attention half
whose softmax takes them from a max pool, bit for bit the integer reference."""
import numpy as np

import block_models
from tcc.ir import numerics
from tcc.ir.interpreter import run_module
from tcc.isa.disassembler import disassemble
from test_overlay_blocks import compiled


def test_int8_to_bf16_is_monotone_so_the_maximum_commutes_with_it():
    q = np.arange(-128, 128)
    scales = np.concatenate([np.random.default_rng(0).uniform(2.0**-20, 4.0, 64), [2.0**-133, 2.0**-126, 1.0, 2.0**100]])
    for scale in scales.astype(np.float32):
        for zp in (-128, -3, 0, 1, 77, 127):
            converted = numerics.int8_to_bf16(q, scale, zp)
            assert np.all(np.diff(converted) >= 0), (scale, zp)
            rows = np.random.default_rng(1).integers(-128, 128, (32, 65))
            assert np.array_equal(numerics.int8_to_bf16(rows, scale, zp).max(axis=1),
                                  numerics.int8_to_bf16(rows.max(axis=1), scale, zp))


def test_attention_softmax_takes_its_row_maxima_from_a_pool_of_the_int8_scores(tmp_path):
    model = block_models.attention_block()
    module, session = compiled(model, tmp_path)
    lines = disassemble(session.artifact.program).splitlines()
    assert sum("pool max" in line for line in lines) == 1  # the block has no other pool
    for x in block_models.calibration(model, 2, seed=11)["x"]:
        got, expected = session.run_dict({"x": x}), run_module(module, {"x": x})
        for key, value in expected.items():
            np.testing.assert_array_equal(got[key], value, err_msg=key)
