"""tcc's numeric formats, one definition each, shared by the interpreter, passes and simulator.

- ``integer``: saturation, exact rounding right shifts, Q31 dyadic multipliers and requantization.
- ``requantizer``: ``requantize`` prepared for fixed parameters (the simulator's fast form, same rule).
- ``uniform``: affine int-N quantize/dequantize (ONNX QuantizeLinear semantics) and int-N scales.
- ``bf16``: bfloat16 with round-to-nearest-even after every operation; int8 <-> bf16 conversions.
- ``bf16_lanes``: the bf16 vector unit's lane operations (the reference's execution of them).
- ``bf16_functions``: its non-linear functions, each written once as a sequence of lane operations.
- ``bf16_math``: those functions on arrays (exp, reciprocal, rsqrt, softmax, GELU, LayerNorm...).
- ``dybit``: DyBit codes (run-of-ones exponent + mantissa), encode/decode, quantization, scales.
- ``weight_format``: the matrix unit's weight formats (intN, DyBit with its exponent-run cap) as
  code tables: code -> integer value and back.
- ``row_scale``: per-row power-of-two activation scales (row shifts) and their conversions.
- ``scale_search``: the MSE scale search both quantizers use.
- ``e8m0``: float8e8m0 codes (power-of-two scales) with ONNX Cast's rounding modes.
"""
from .bf16 import (
    BF16_MAX, BF16_MIN_NORMAL, BF16_MIN_SUBNORMAL, BF16_NAN, as_bf16_array, bf16_add, bf16_fma, bf16_max, bf16_min,
    bf16_mul, bf16_mul_add, bf16_round, bf16_sub, bf16_sum, bf16_to_int8, from_bf16, int8_to_bf16,
    to_bf16,
)
from . import bf16_math
from .e8m0 import E8M0_ROUNDING, from_e8m0_codes, to_e8m0_codes
from .bf16_math import (
    bf16_div, bf16_erf, bf16_exp, bf16_gelu, bf16_hard_swish, bf16_layer_norm, bf16_reciprocal,
    bf16_lrn, bf16_rms_norm, bf16_rsqrt, bf16_sigmoid, bf16_silu, bf16_softmax, bf16_log_softmax, bf16_sqrt, bf16_tanh,
)
from .dybit import (
    FINE_SHIFT, MAX_DECODE_INT, check_cap, decode, decode_int, dybit_magnitudes, encode, magnitude_ints,
    max_decode_int, max_magnitude, quantize, dequantize, search_scale,
)
from .integer import (
    INT8_MAX, INT8_MIN, INT16_MAX, INT16_MIN, INT32_MAX, INT32_MIN, ROUNDING_MODES, UINT8_MAX,
    UINT8_MIN, centre_and_shift, dyadic_error, int_dtype_for_range, integer_range, multiply_by_quantized_multiplier,
    quantize_multiplier, requantize, round_to_integer, rounded_mean, rounding_divide, rounding_right_shift,
    saturate,
)
from .requantizer import AffineRequantizer, Centring, Requantizer
from .row_scale import ROW_SHIFT_MAX, bf16_to_int8_rows, row_shifted, row_shifts, shift_for_range
from .scale_search import search_scale_mse
from .uniform import (
    dequantize_affine, int_dequantize, int_max_level, int_quantize, quantize_affine,
    search_scale_uniform,
)
from .weight_format import WeightFormat, code_values, max_abs_value, parse_weight_format, row_format, value_codes

__all__ = [
    "bf16_math",
    "BF16_MAX", "BF16_MIN_NORMAL", "BF16_MIN_SUBNORMAL", "BF16_NAN", "FINE_SHIFT", "as_bf16_array", "INT16_MAX",
    "INT16_MIN", "INT32_MAX", "INT32_MIN", "INT8_MAX", "INT8_MIN", "MAX_DECODE_INT",
    "ROUNDING_MODES", "UINT8_MAX", "UINT8_MIN", "centre_and_shift", "bf16_add", "bf16_fma", "bf16_max", "bf16_min",
    "bf16_mul", "bf16_mul_add", "bf16_round", "bf16_sub", "bf16_sum", "bf16_to_int8", "decode",
    "decode_int", "dequantize", "dequantize_affine", "dyadic_error", "dybit_magnitudes", "encode",
    "from_bf16", "int8_to_bf16", "int_dequantize", "int_dtype_for_range", "int_max_level",
    "int_quantize", "integer_range", "max_magnitude", "multiply_by_quantized_multiplier",
    "quantize", "quantize_affine", "quantize_multiplier", "requantize", "Requantizer", "Centring", "AffineRequantizer", "round_to_integer",
    "rounded_mean", "rounding_divide", "rounding_right_shift", "saturate", "search_scale", "search_scale_mse", "search_scale_uniform",
    "to_bf16", "check_cap", "magnitude_ints", "max_decode_int",
    "WeightFormat", "code_values", "max_abs_value", "parse_weight_format", "row_format", "value_codes",
    "bf16_div", "bf16_erf", "bf16_exp", "bf16_gelu", "bf16_hard_swish", "bf16_layer_norm",
    "bf16_lrn", "bf16_reciprocal", "bf16_rms_norm", "bf16_rsqrt", "bf16_sigmoid", "bf16_silu", "bf16_softmax", "bf16_log_softmax", "bf16_sqrt",
    "bf16_tanh", "ROW_SHIFT_MAX", "bf16_to_int8_rows", "row_shifted", "row_shifts", "shift_for_range", "E8M0_ROUNDING", "from_e8m0_codes", "to_e8m0_codes",
]
