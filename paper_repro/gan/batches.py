"""Batches of real maps as the discriminator sees them: per-epoch order, scaling, turned copies.

Everything is a pure function of (seed, epoch, step), so a resumed run reads the same batches.
"""
from __future__ import annotations

import numpy as np


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the training maps in ``epoch`` (a new permutation every epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def read_batch(maps: np.ndarray, idx: np.ndarray, scale: float) -> np.ndarray:
    """Maps ``idx`` of a memory-mapped set as a (B, H, W, 1) float32 batch times ``scale``.

    Reads in file order (sorted indices) and puts the maps back in the permutation's order.
    """
    order = np.argsort(idx, kind="stable")
    batch = np.empty((len(idx),) + maps.shape[1:], np.float32)
    batch[order] = maps[idx[order]]
    if scale != 1.0:
        batch *= np.float32(scale)
    return batch[..., None]


def symmetry_augment(batch: np.ndarray, seed: int, epoch: int, step: int) -> np.ndarray:
    """Each map of a (B, H, W, 1) batch turned by one of the 8 symmetries of the square.

    Symmetry g = 0..7: ``rot90`` by g % 4 quarter turns, then a left-right reflection if g >= 4;
    drawn per map from ``default_rng([seed, epoch, step, 8])``, so a resumed run draws the same.
    A statistically isotropic, parity-invariant field (convergence) has the same distribution
    after any of them, so the real distribution the discriminator sees is unchanged while it
    sees 8 times as many distinct maps (it otherwise memorises the training set).
    """
    g = np.random.default_rng([seed, epoch, step, 8]).integers(0, 8, len(batch))
    out = np.empty_like(batch)
    for k in range(8):
        sel = g == k
        if sel.any():
            x = np.rot90(batch[sel], k % 4, axes=(1, 2))
            out[sel] = x[:, :, ::-1] if k >= 4 else x
    return out
