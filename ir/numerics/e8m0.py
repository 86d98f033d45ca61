"""float8e8m0 (OCP MX scale type): an unsigned power of two 2**(code - 127), code 0..254, 255 NaN.

Encoding a float keeps its float32 exponent field and rounds the mantissa away (ONNX Cast's
round_mode): ``up`` rounds any non-zero mantissa up, ``down`` drops it, ``nearest`` rounds up from
half the step (ties up).  The sign is dropped; zero and subnormals encode 0 (2**-127).  A result
past the largest code (infinity, or rounding up from 2**127) saturates to 254 or, without
saturation, is NaN; NaN stays NaN.
"""
import numpy as np

E8M0_ROUNDING = ("up", "down", "nearest")
_HALF = 1 << 22  # half of the float32 mantissa's range


def to_e8m0_codes(x, round_mode: str = "up", saturate: bool = True) -> np.ndarray:
    """uint8 codes of ``x`` (any float type; widened exactly to float32)."""
    if round_mode not in E8M0_ROUNDING:
        raise ValueError(f"e8m0 round_mode {round_mode!r} is not one of {', '.join(E8M0_ROUNDING)}")
    bits = np.asarray(x, np.float32).view(np.uint32) & np.uint32(0x7FFFFFFF)
    exponent = (bits >> np.uint32(23)).astype(np.int64)
    mantissa = (bits & np.uint32(0x7FFFFF)).astype(np.int64)
    nan = (exponent == 255) & (mantissa != 0)
    infinite = (exponent == 255) & (mantissa == 0)
    if round_mode == "up":
        exponent = exponent + ((mantissa != 0) & (exponent > 0))
    elif round_mode == "nearest":
        exponent = exponent + ((mantissa >= _HALF) & (exponent > 0))
    overflow = infinite | (exponent > 254)
    codes = np.where(overflow, 254 if saturate else 255, exponent)
    return np.where(nan, 255, codes).astype(np.uint8)


def from_e8m0_codes(codes) -> np.ndarray:
    """float32 values of uint8 codes (255: NaN)."""
    c = np.asarray(codes, np.uint8).astype(np.int64)
    return np.where(c == 255, np.float32(np.nan), np.ldexp(np.float32(1), np.minimum(c, 254) - 127)).astype(np.float32)
