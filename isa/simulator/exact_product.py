"""The PE array's sum of products on BLAS, exact: ``(a - zp) @ w.T`` as int64.

BLAS multiplies floats, and a float sum is exact when every value it ever holds is an integer the
format represents.  BLAS may add the K products of a dot product in any order and grouping (blocked,
vectorised, fused multiply-add), so the bound must hold for *every* partial sum: each is a sum of a
subset of the products, hence at most K * max|product| in magnitude.

* ``a`` holds int8 values (|a| <= 2**7; the zero point is taken out afterwards, below) and ``w``
  integers with |w| <= ``w_max`` (the weight format's largest value: 128 for int8), so every
  product is at most 2**7 * w_max.  float32 holds every integer up to 2**24 (24-bit significand),
  so a float32 sum over ``float32_terms(w_max) = 2**24 // (2**7 * w_max)`` terms is exact: 1024 for
  int8 weights (2**10 products of at most 2**14).  A longer reduction is cut into slices of that
  many columns whose exact float32 results (integers <= 2**24) are added in float64, exact while
  K * 2**7 * w_max <= 2**53.  When a slice would be shorter than MIN_SLICE (wide weights) the
  products are summed in float64 directly, under the same 2**53 bound.
* The zero point: ``(a - zp) @ w.T = a @ w.T - zp * sum_k w[n, k]``; the correction is an int64
  product of integers.  A padding position must contribute (zp - zp) * w = 0, so the caller stores
  ``zp`` there; this needs zp in int8 range.  Any other zp, or a bound that fails, takes the integer
  path, exact in numpy integers (no BLAS; Python integers if int64 could overflow).

An operand given biased (uint8 ``a + 128``, ``int8_kernel.biased``: what the matrix unit makes when
the product qualifies for it) runs on the int8 kernel instead (int8_kernel.py: its own bound, and
a probe of the kernel at first use), where that kernel is usable; otherwise it is made plain and
takes the paths above.

``tests/isa/test_exact_product.py`` checks the extremes (every operand at its largest magnitude, the
longest K before the int32 accumulator traps, reductions at and past the slice length).
"""
from __future__ import annotations

import math

import numpy as np

from . import int8_kernel

MIN_SLICE = 64  # below this many terms per float32 slice, one float64 product is faster
_FLOAT32_EXACT, _FLOAT64_EXACT = 2**24, 2**53
_A_MAGNITUDE = 2**7


def float32_terms(w_max: int) -> int:
    """The longest reduction whose float32 partial sums of int8 * (|w| <= w_max) stay exact."""
    return _FLOAT32_EXACT // (_A_MAGNITUDE * max(w_max, 1))


def zero_point_fits(zp: int) -> bool:
    """Whether ``zp`` can stand in a padding position of an int8 operand (the BLAS paths need it)."""
    return -_A_MAGNITUDE <= zp < _A_MAGNITUDE


class Weights:
    """An (N, K) integer weight matrix (``values``, magnitudes at most ``w_max``) with the float
    copies and row sums the products make from it, made on first use and kept: a program's weights
    are the same on every run, so the matrix unit converts them once (impl_matrix.py).

    ``values`` may be given as a function making the matrix, and ``transposed_as(dtype)`` as one
    making ``values.T`` in a float dtype directly (the decoder's one pass from packed codes): the
    float BLAS paths then never build the integer matrix at all.  ``source``: what the caller
    decoded them from (the packed bytes), kept with them.
    """

    __slots__ = ("w_max", "source", "_values", "_make_values", "_make_transposed", "_transposed", "_sums", "_forms",
                 "__weakref__")

    def __init__(self, values, w_max: int, transposed_as=None, source=None):
        self.w_max = w_max
        self.source = source
        self._values: np.ndarray | None = values if isinstance(values, np.ndarray) else None
        self._make_values = values
        self._make_transposed = transposed_as
        self._transposed: dict = {}
        self._sums: np.ndarray | None = None
        self._forms: dict = {}  # the other layouts made (columns, grouped, rows), by what and dtype

    @property
    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = self._make_values()
        return self._values

    def transposed(self, dtype) -> np.ndarray:
        """``values.T`` as ``dtype`` (float32 or float64: exact for the weight formats' integers; int8,
        OverflowError when a value does not fit it), a transposed view of a C-order copy (BLAS takes
        either order without copying)."""
        copy = self._transposed.get(dtype)
        if copy is None:
            if self._values is None and self._make_transposed is not None:
                copy = self._make_transposed(dtype)
            else:
                copy = self.values.astype(dtype).T
                if np.issubdtype(dtype, np.integer) and not np.array_equal(copy.T, self.values):
                    raise OverflowError(f"weights outside {np.dtype(dtype).name}")
            self._transposed[dtype] = copy
        return copy

    def share_transposed(self, dtype, view: np.ndarray) -> None:
        """Use ``view`` (columns of a wider matrix made from this one's ``transposed(dtype)``, equal to
        it) as that copy from now on: a joined product's parts then hold their weights once."""
        assert view.shape == self.transposed(dtype).shape
        self._transposed[dtype] = view

    def row_sums(self) -> np.ndarray:
        """``sum_k values[n, k]`` as int64 (the zero-point correction)."""
        if self._sums is None:
            if self._values is None and self._transposed:
                # exact: every partial sum is an integer of magnitude at most K * w_max < 2**53
                self._sums = next(iter(self._transposed.values())).sum(axis=0, dtype=np.float64).astype(np.int64)
            else:
                self._sums = self.values.sum(axis=1, dtype=np.int64)
        return self._sums

    def correction(self, zp: int) -> np.ndarray:
        """``zp * row_sums()`` as int32, for sums that fit it (``int32_fits``: |zp * sum| <= the bound)."""
        return self._form(("correction", zp), lambda: (zp * self.row_sums()).astype(np.int32))

    def rows(self, lo: int, hi: int) -> "Weights":
        """The Weights of rows [lo, hi) (a group of a grouped convolution), sharing what is made."""
        return self._form(("rows", lo, hi), lambda: Weights(lambda: self.values[lo:hi], self.w_max,
                                                            lambda dtype: self.transposed(dtype)[:, lo:hi]))

    def columns(self, dtype) -> np.ndarray:
        """``values.T`` as ``dtype`` in C order (K x N): einsum reads it several times faster than the view."""
        return self._form(("columns", dtype), lambda: np.ascontiguousarray(self.transposed(dtype)))

    def int8_columns(self) -> np.ndarray | None:
        """``values.T`` as int8 in C order (K x N), the int8 kernel's operand (int8_kernel.py), or None
        when a value lies outside int8 (a format reaching +128): checked once."""
        def make():
            try:
                return _c_order(self.transposed(np.int8))
            except OverflowError:
                return False

        made = self._form(("int8",), make)
        return None if made is False else made

    def grouped(self, dtype, groups: int, size: int) -> np.ndarray:
        """(groups, K, size) as ``dtype``, C order: group g holds columns [g*size, (g+1)*size) of
        ``values.T``, zero columns past N (a short last group).  int8: from ``int8_columns`` (the
        caller has checked it is not None)."""
        def make() -> np.ndarray:
            t = self.int8_columns() if dtype == np.int8 else self.transposed(dtype)
            k, n = t.shape
            full = np.zeros((k, groups * size), dtype)
            full[:, :n] = t
            return np.ascontiguousarray(full.reshape(k, groups, size).transpose(1, 0, 2))

        return self._form(("grouped", dtype, groups, size), make)

    def _form(self, key: tuple, make):
        made = self._forms.get(key)
        if made is None:
            made = self._forms[key] = make()
        return made


def _c_order(t: np.ndarray, block: int = 64) -> np.ndarray:
    """``np.ascontiguousarray(t)`` of a transposed view, copied in ``block`` x ``block`` tiles: numpy's
    one-pass transposing copy of bytes is 2.5x slower (a 512 x 4608 int8 matrix: 2.7 ms, 1.0 tiled)."""
    rows, cols = t.shape
    out = np.empty((rows, cols), t.dtype)
    for i in range(0, rows, block):
        for j in range(0, cols, block):
            out[i:i + block, j:j + block] = t[i:i + block, j:j + block]
    return out


def int32_fits(k: int, zp: int, w_max: int) -> bool:
    """Whether every ``(a - zp) @ w.T`` over ``k`` terms, and ``a @ w.T`` itself, lies in int32
    (|a - zp| <= 2**7 + |zp|): such a product can neither trap nor wrap in an int32 accumulator."""
    return k * (_A_MAGNITUDE + abs(zp)) * max(w_max, 1) < 2**31


def exact_product_into(out: np.ndarray, a: np.ndarray, w: Weights, zp: int, w_max: int,
                       product: np.ndarray | None = None) -> None:
    """``out[...] = (a - zp) @ w.T`` for an int32 ``out`` when ``int32_fits``: the int8 kernel's int32
    product copied there, or the exact float product converted once into ``out`` (integers below
    2**31) and the zero-point correction subtracted there, exact in int32 because the result and
    both terms fit.  ``product``: ``fast_product(a, w, zp, w_max)`` when the caller has it already
    (shared_product.py)."""
    if product is None:
        product = fast_product(a, w, zp, w_max)
    if product is None:
        out[...] = _integer_product(_int8_values(a), w.values, zp, w_max)
        return
    _integers(product, w, zp, out)


def exact_product(a: np.ndarray, w: np.ndarray | Weights, zp: int, w_max: int,
                  product: np.ndarray | None = None) -> np.ndarray:
    """``(a - zp) @ w.T`` as int64, for ``a`` (M, K) holding int8 values (any numeric dtype, or uint8
    for the int8 kernel's biased operand ``a + 128``: ``int8_kernel.biased``; padding positions hold
    ``zp``) and ``w`` (N, K) integers of magnitude at most ``w_max`` (or their Weights); ``product``
    as for ``exact_product_into``."""
    weights = w if isinstance(w, Weights) else Weights(w, w_max)
    if product is None:
        product = fast_product(a, weights, zp, w_max)
    if product is None:
        return _integer_product(_int8_values(a), weights.values, zp, w_max)
    total = _integers(product, weights, zp, None)
    assert total is not None
    return total


def fast_product(a: np.ndarray, weights: Weights, zp: int, w_max: int) -> np.ndarray | None:
    """The product on the fastest exact path: for a biased operand (uint8, ``int8_kernel.biased``)
    the int8 kernel's ``(a - zp) @ w.T`` as int32 where it is usable (int8_kernel.py), else
    ``float_product`` of the int8 values: ``a @ w.T`` as floats, the zero-point correction still
    to take (``_integers`` tells the two apart by dtype), or None."""
    if a.dtype == np.uint8:
        if int8_kernel.usable(a.shape[-1], zp, w_max):
            columns = weights.int8_columns()
            if columns is not None:
                return int8_kernel.product(a, columns, zp)
        a = int8_kernel.unbiased(a)
    return float_product(a, weights, zp, w_max)


def float_product(a: np.ndarray, weights: Weights, zp: int, w_max: int) -> np.ndarray | None:
    """``a @ w.T`` in float32 or float64 where the bound above makes it exact, else None."""
    k = a.shape[1]
    if not zero_point_fits(zp) or k * _A_MAGNITUDE * max(w_max, 1) > _FLOAT64_EXACT:
        return None
    terms = float32_terms(w_max)
    product: np.ndarray
    if terms < MIN_SLICE:
        product = a.astype(np.float64) @ weights.transposed(np.float64)
    else:
        a32, w32 = a.astype(np.float32, copy=False), weights.transposed(np.float32)
        if k <= terms:
            product = a32 @ w32
        else:
            product = np.zeros((a.shape[0], w32.shape[1]), np.float64)
            for k0 in range(0, k, terms):
                product += a32[:, k0:k0 + terms] @ w32[k0:k0 + terms]
    return product


def exact_batched(a: np.ndarray, w: np.ndarray, zp: int, w_max: int) -> np.ndarray:
    """``(a[i] - zp) @ w[i].T`` as int64 (B, M, N) for every i: ``a`` (B, M, K) holding int8 values, ``w``
    (B, N, K) integers of magnitude at most ``w_max`` (a batch whose samples have their own weights).
    One batched float32 product under the module's bound (every partial sum is a subset of one
    sample's K products), else sample by sample."""
    k = a.shape[-1]
    if not zero_point_fits(zp) or k > float32_terms(w_max):
        return np.stack([exact_product(a[i], w[i], zp, w_max) for i in range(a.shape[0])])
    total = np.matmul(a.astype(np.float32), w.astype(np.float32).transpose(0, 2, 1)).astype(np.int64)
    if zp:
        total -= zp * w.sum(axis=2, dtype=np.int64)[:, None, :]
    return total


def exact_depthwise(a: np.ndarray, w: np.ndarray | Weights, zp: int, w_max: int,
                    out: np.ndarray | None = None, tap_axes: int = 1) -> np.ndarray | None:
    """``sum_k (a[m, k, n] - zp) * w[n, k]`` as int64, for ``a`` (M, K, N) holding int8 values
    (padding positions hold ``zp``) and ``w`` (N, K) of magnitude at most ``w_max`` (or their
    Weights): float32 under the module's bound.  With ``tap_axes=2``, ``a`` is (..., kh, kw, N)
    (each output's taps, K = kh * kw: a strided view of a padded image, impl_pool.PaddedImage) and
    the result (..., N).  With ``out`` (int32, when ``int32_fits``; the result's shape) the result
    is written there and None returned (``handed``), as ``exact_product_into`` does."""
    weights = w if isinstance(w, Weights) else Weights(w, w_max)
    a = _int8_values(a)
    taps = a.shape[-1 - tap_axes:-1]
    k = math.prod(taps)
    terms = "kn,kn" if tap_axes == 1 else "ijn,ijn"
    if not zero_point_fits(zp) or k > float32_terms(w_max):
        columns = weights.values.T.astype(np.int64).reshape(taps + (-1,))
        return handed(np.einsum(f"...{terms}->...n", a.astype(np.int64) - zp, columns), out)
    # einsum sums in whatever order it likes: every partial sum is still an integer below 2**24
    product = np.einsum(f"...{terms}->...n", a.astype(np.float32, copy=False),
                        weights.columns(np.float32).reshape(taps + (-1,)))
    return _integers(product, weights, zp, out)


def exact_grouped(a: np.ndarray, w: Weights, n: int, size: int, zp: int, w_max: int,
                  out: np.ndarray | None = None) -> np.ndarray | None:
    """A grouped product as int64 (M, n): output column g*size + j is ``(a[g] - zp) @ w[g*size + j]``,
    for ``a`` (groups, M, K) holding int8 values (padding positions hold ``zp``) and ``w`` (n, K)
    Weights of magnitude at most ``w_max``, n <= groups * size.  One batched float32 product
    where each group's reduction is within the module's bound (every partial sum is a subset of
    one group's K products), else group by group.  ``out`` as for ``exact_depthwise``."""
    groups, rows, k = a.shape
    product = None
    if a.dtype == np.uint8:
        if int8_kernel.usable(k, zp, w_max) and w.int8_columns() is not None:
            product = int8_kernel.product(a, w.grouped(np.int8, groups, size), zp)  # (groups, M, size), int32
        else:
            a = int8_kernel.unbiased(a)
    if product is None and zero_point_fits(zp) and k <= float32_terms(w_max):
        product = np.matmul(a.astype(np.float32, copy=False), w.grouped(np.float32, groups, size))
    if product is not None:
        if out is not None and n == groups * size:  # written into out's (M, groups, size) view: no copy between
            by_group = out.view()
            by_group.shape = (rows, groups, size)  # a view or AttributeError, never a copy
            np.copyto(by_group, product.transpose(1, 0, 2), casting="unsafe")
            if zp and product.dtype != np.int32:
                out -= w.correction(zp)
            return None
        return _integers(product.transpose(1, 0, 2).reshape(rows, groups * size)[:, :n], w, zp, out)
    total = np.empty((rows, n), np.int64)
    for g in range(groups):
        total[:, g * size:(g + 1) * size] = exact_product(a[g], w.rows(g * size, min((g + 1) * size, n)), zp, w_max)
    return handed(total, out)


def handed(total: np.ndarray, out: np.ndarray | None) -> np.ndarray | None:
    """The one contract of the products taking ``out``: given an ``out`` (int32, every sum fits it:
    ``int32_fits``) the result is written there and None returned, whichever path computed it."""
    if out is None:
        return total
    out[...] = total
    return None


def _integers(product: np.ndarray, w: Weights, zp: int, out: np.ndarray | None) -> np.ndarray | None:
    """A product as int64, or written into the int32 ``out`` (None returned), exact there when
    ``int32_fits`` as in ``exact_product_into``: the int8 kernel's (int32, the zero point already
    taken out), or an exact float ``a @ w.T`` less the zero-point correction."""
    corrected = product.dtype == np.int32
    if out is None:
        total = product.astype(np.int64)
        if zp and not corrected:
            total -= zp * w.row_sums()
        return total
    out[...] = product
    if zp and not corrected:
        out -= w.correction(zp)
    return None


def _int8_values(a: np.ndarray) -> np.ndarray:
    """The int8 values an operand holds (a biased one's made plain)."""
    return int8_kernel.unbiased(a) if a.dtype == np.uint8 else a


def _integer_product(a: np.ndarray, w: np.ndarray, zp: int, w_max: int) -> np.ndarray:
    """The same product in integers: int64 when no sum can reach 2**63, Python integers otherwise."""
    bound = a.shape[1] * (_A_MAGNITUDE + abs(zp)) * max(w_max, 1)
    dtype = np.int64 if bound < 2**63 else object
    return (a.astype(dtype) - zp) @ w.T.astype(dtype)
