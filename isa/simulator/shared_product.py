"""Conv tiles that read the same input windows, multiplied in one wide product.

A layer wider than the array runs as several ``matmul conv`` tiles over one slab, each with its
own weights (often 32 output channels).  BLAS multiplies an (M, K) operand by a (K, 32) tile well
below its speed on one (K, N) matrix, and reads the operand again for every tile.  Instructions
execute one by one and the later tiles' weights are not in wbuf yet when the first tile runs, but a
program's weights are the same on every run: each tile remembers what it read last time (the
windows' serial number and its decoded Weights), and a tile that computes its product computes, in
the same BLAS call, the columns of the later tiles of its group that read the same windows as it
on that run, with the Weights they had.

A later tile takes its columns of that product only if it reads the very same windows now (the
same serial: impl_matrix.py gives a new serial whenever the slab bytes differ from those the
windows were made of) with the very same Weights object (a new one is decoded whenever its wbuf
bytes differ); otherwise it computes its own product.  Column n of ``a @ W.T`` depends only on
``a`` and row n of W, and the wide product is exact under the same bound as a tile's own
(exact_product.py: the bound depends on K and the weight format, which the group key fixes), so
the columns a tile takes equal the product it would compute alone, bit for bit.
"""
from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from .exact_product import Weights, fast_product


class _Tile:
    __slots__ = ("columns", "serial", "weights")

    def __init__(self, columns: int):
        self.columns = columns  # its output channels (mm.n)
        self.serial: int | None = None  # the windows it read last
        self.weights: Weights | None = None  # the Weights it multiplied them by


class SharedWindows:
    """The tiles of one layer that read one slab the same way (same windows key, K and weight format)."""

    __slots__ = ("_tiles", "_made", "_wide_of", "_wide", "_joined")

    def __init__(self, joined: MutableMapping | None = None):
        self._joined = {} if joined is None else joined  # wide Weights by their parts (the machine's: shared)
        self._tiles: list[_Tile] = []
        self._made: tuple | None = None  # (serial, {tile: (Weights, first column, end column)}, wide product)
        self._wide_of: list[Weights] = []  # the Weights last concatenated, and their concatenation
        self._wide: Weights | None = None

    def join(self, columns: int) -> int:
        """A new tile of ``columns`` output channels (while a program is prepared): its index."""
        self._tiles.append(_Tile(columns))
        return len(self._tiles) - 1

    def product(self, index: int, serial: int, a: np.ndarray, weights: Weights, zp: int,
                w_max: int) -> np.ndarray | None:
        """``fast_product(a, weights, zp, w_max)`` for tile ``index`` reading windows ``serial`` (``a``,
        (M, K)): its columns of the wide product made by an earlier tile, else computed here with
        the columns of the later tiles that read these windows on the last run."""
        tile = self._tiles[index]
        made = self._made
        if made is not None and made[0] == serial:
            columns = made[1].get(index)
            if columns is not None and columns[0] is weights:
                tile.serial, tile.weights = serial, weights
                return made[2][:, columns[1]:columns[2]]
        together = [(index, tile, weights)]
        if tile.serial is not None:
            together += [(j, later, later.weights) for j, later in enumerate(self._tiles[index + 1:], index + 1)
                         if later.serial == tile.serial and later.weights is not None]
        tile.serial, tile.weights = serial, weights
        if len(together) == 1:
            return fast_product(a, weights, zp, w_max)
        wide = fast_product(a, self._concatenated([w for _, _, w in together], w_max), zp, w_max)
        if wide is None:
            return None
        columns, start = {}, 0
        for j, member, w in together:
            columns[j] = (w, start, start + member.columns)
            start += member.columns
        self._made = (serial, columns, wide)
        return wide[:, columns[index][1]:columns[index][2]]

    def _concatenated(self, parts: list[Weights], w_max: int) -> Weights:
        """Weights whose rows are those of ``parts`` in order (kept while the same parts are asked for)."""
        if self._wide is None or len(parts) != len(self._wide_of) or \
                any(p is not q for p, q in zip(parts, self._wide_of)):
            self._wide_of = parts
            key = tuple(parts)  # the Weights objects themselves (hashed by identity), kept alive by the entry
            wide = self._joined.get(key)
            if wide is None:
                wide = self._joined[key] = Weights(lambda: np.concatenate([p.values for p in parts]), w_max,
                                                   lambda dtype: _joined(parts, dtype))
            self._wide = wide
        return self._wide


def _joined(parts: list[Weights], dtype) -> np.ndarray:
    """The parts' ``transposed(dtype)`` side by side; each part's copy becomes a view of its columns
    (the same numbers: freed, so the layer's weights are held once, not twice)."""
    joined = np.concatenate([p.transposed(dtype) for p in parts], axis=1)
    start = 0
    for p in parts:
        end = start + p.transposed(dtype).shape[1]
        p.share_transposed(dtype, joined[:, start:end])
        start = end
    return joined
