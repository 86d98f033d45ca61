"""Token streams: the active sites of a C x H x W map in raster order, with their int features.

A stream is what flows through one FIFO pair of the dataflow design: ``coords`` (N x 2, row and
column, raster order: the token FIFO) and ``feats`` (N x C: the feature FIFO), plus what the
hardware knows without streaming it: the map size and the per-channel ``background`` value every
inactive site holds (the zero point under submanifold semantics, the compile-time background of
the dense model under exact semantics).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TokenStream:
    coords: np.ndarray  # int64 [N, 2], raster order
    feats: np.ndarray  # int64 [N, C]
    background: np.ndarray  # int64 [C]
    height: int
    width: int

    @property
    def channels(self) -> int:
        return int(self.background.shape[0])

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    @property
    def raster(self) -> np.ndarray:
        return self.coords[:, 0] * self.width + self.coords[:, 1]

    def index_map(self, pad: int = 0, inactive: int = -1, outside: int = -2, pad_end: int | None = None) -> np.ndarray:
        """[pad + H + pad_end, pad + W + pad_end] (pad_end defaults to pad): token index at active
        sites, ``inactive`` at other in-bounds sites, ``outside`` in the padding."""
        end = pad if pad_end is None else pad_end
        table = np.full((self.height + pad + end, self.width + pad + end), outside, np.int64)
        table[pad:pad + self.height, pad:pad + self.width] = inactive
        table[self.coords[:, 0] + pad, self.coords[:, 1] + pad] = np.arange(len(self), dtype=np.int64)
        return table

    def densify(self) -> np.ndarray:
        """The C x H x W map the stream stands for (inactive sites hold the background)."""
        dense = np.broadcast_to(self.background[:, None, None], (self.channels, self.height, self.width)).copy()
        dense[:, self.coords[:, 0], self.coords[:, 1]] = self.feats.T
        return dense

    @classmethod
    def from_dense(cls, dense: np.ndarray, active: np.ndarray, background) -> "TokenStream":
        """Tokens of the active sites of a C x H x W map, in raster order."""
        rows, cols = np.nonzero(active)  # np.nonzero walks in C (raster) order
        coords = np.stack([rows, cols], axis=1).astype(np.int64)
        feats = dense[:, rows, cols].T.astype(np.int64)
        bg = np.broadcast_to(np.asarray(background, np.int64), (dense.shape[0],)).copy()
        return cls(coords, feats, bg, int(dense.shape[1]), int(dense.shape[2]))

    @classmethod
    def at(cls, coords: np.ndarray | list, feats: np.ndarray, background, height: int, width: int) -> "TokenStream":
        return cls(np.asarray(coords, np.int64).reshape(-1, 2), np.asarray(feats, np.int64),
                   np.asarray(background, np.int64), height, width)
