"""The PE array's sum of products on BLAS, exact: ``(a - zp) @ w.T`` as int64.

BLAS multiplies floats, and a float sum is exact when every value it ever holds is an integer the
format represents.  BLAS may add the K products of a dot product in any order and grouping (blocked,
vectorised, fused multiply-add), so the bound must hold for *every* partial sum: each is a sum of a
subset of the products, hence at most K * max|product| in magnitude.

* int8 operands (``a`` int8, ``w`` int8; the zero point ``zp`` taken out afterwards, below): every
  product is at most 128 * 128 = 2**14 in magnitude, so a float32 sum over K <= 2**10 terms stays
  within 2**24, where float32 holds every integer (24-bit significand).  ``FLOAT32_TERMS`` = 1024
  is that reduction length; a longer reduction is split into slices of at most 1024 columns whose
  exact float32 results (integers <= 2**24) are added in float64: exact while K * 2**14 <= 2**53.
* int16 (wide) weights: products up to 128 * 2**15 = 2**22, summed in float64, exact while
  K * 2**22 <= 2**53, i.e. K <= 2**31 (mm.k is a 32-bit register, so always).
* The zero point: ``(a - zp) @ w.T = a @ w.T - zp * sum_k w[n, k]``; the correction is an int64
  product of integers.  A padding position must contribute (zp - zp) * w = 0, so the caller stores
  ``zp`` there; this needs zp in int8 range.  Any other zp (or a bound that fails) takes the int64
  path, exact in numpy integers (no BLAS; Python integers if int64 could overflow).

``tests/isa/test_exact_product.py`` checks the extremes (every operand -128, the longest K before
the int32 accumulator traps, wide weights of -2**15).
"""
from __future__ import annotations

import numpy as np

FLOAT32_TERMS = 2**10  # 1024 products of at most 2**14: every partial sum within 2**24
_FLOAT64_EXACT = 2**53
_INT8_MAGNITUDE, _INT16_MAGNITUDE = 2**7, 2**15


def zero_point_fits(zp: int) -> bool:
    """Whether ``zp`` can stand in a padding position of an int8 operand (the BLAS paths need it)."""
    return -_INT8_MAGNITUDE <= zp < _INT8_MAGNITUDE


def exact_product(a: np.ndarray, w: np.ndarray, zp: int, wide: int) -> np.ndarray:
    """``(a - zp) @ w.T`` as int64, for ``a`` (M, K) holding int8 values (any numeric dtype; padding
    positions hold ``zp``) and ``w`` (N, K) int8, or int16 when ``wide``."""
    k = a.shape[1]
    term = _INT8_MAGNITUDE * (_INT16_MAGNITUDE if wide else _INT8_MAGNITUDE)
    if not zero_point_fits(zp) or k * term > _FLOAT64_EXACT:
        return _integer_product(a, w, zp, wide)
    if wide:
        product = a.astype(np.float64) @ w.T.astype(np.float64)
    else:
        a32, w32 = a.astype(np.float32, copy=False), w.T.astype(np.float32)
        if k <= FLOAT32_TERMS:
            product = a32 @ w32
        else:
            product = np.zeros((a.shape[0], w.shape[0]), np.float64)
            for k0 in range(0, k, FLOAT32_TERMS):
                product += a32[:, k0:k0 + FLOAT32_TERMS] @ w32[k0:k0 + FLOAT32_TERMS]
    out = product.astype(np.int64)
    if zp:
        out -= zp * w.sum(axis=1, dtype=np.int64)
    return out


def exact_depthwise(a: np.ndarray, w: np.ndarray, zp: int) -> np.ndarray:
    """``sum_k (a[m, k, n] - zp) * w[n, k]`` as int64, for ``a`` (M, K, N) holding int8 values
    (padding positions hold ``zp``) and ``w`` (N, K) int8: float32 under the module's bound."""
    k = a.shape[1]
    if not zero_point_fits(zp) or k > FLOAT32_TERMS:
        return np.einsum("mkn,nk->mn", a.astype(np.int64) - zp, w.astype(np.int64))
    total = (a.astype(np.float32, copy=False) * w.T.astype(np.float32)).sum(axis=1).astype(np.int64)
    if zp:
        total -= zp * w.sum(axis=1, dtype=np.int64)
    return total


def _integer_product(a: np.ndarray, w: np.ndarray, zp: int, wide: int) -> np.ndarray:
    """The same product in integers: int64 when no sum can reach 2**63, Python integers otherwise."""
    bound = a.shape[1] * (_INT8_MAGNITUDE + abs(zp)) * (_INT16_MAGNITUDE if wide else _INT8_MAGNITUDE)
    dtype = np.int64 if bound < 2**63 else object
    return (a.astype(dtype) - zp) @ w.T.astype(dtype)
