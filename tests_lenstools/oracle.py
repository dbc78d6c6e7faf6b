"""Helpers of the LensTools oracle: fresh random maps, LensTools maps, the speed table."""
from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")                    # "Could not import mpi4py!"
    import lenstools  # noqa: F401
    from lenstools import ConvergenceMap
import astropy.units as u

#: filled in by bench_vs_lenstools.py: {statistic: {"ours": maps/s, "lenstools": maps/s}}
SPEED: dict[str, dict[str, float]] = {}


def random_maps(n: int, size: int, seed: int, *, slope: float = -2.5, lognormal: bool = True,
                dtype=np.float32) -> np.ndarray:
    """n fresh (size, size) maps: a power-law Gaussian random field, log-normally transformed.

    Convergence-like (std 0.02, skewed, smooth over a few pixels), so every statistic has work to do.
    """
    rng = np.random.default_rng(seed)
    kx = np.fft.fftfreq(size)[:, None]
    ky = np.fft.rfftfreq(size)[None, :]
    k = np.hypot(kx, ky)
    k[0, 0] = np.inf
    amp = k ** (slope / 2) * np.exp(-(k * size / 40.0) ** 2)
    white = rng.standard_normal((n, size, size))
    g = np.fft.irfft2(np.fft.rfft2(white) * amp, s=(size, size))
    g /= g.std(axis=(1, 2), keepdims=True)
    if lognormal:
        s = 0.4
        g = np.exp(s * g - s * s / 2) - 1.0
    return (0.02 * g / g.std(axis=(1, 2), keepdims=True)).astype(dtype)


def lt_map(m: np.ndarray, angle_deg: float) -> ConvergenceMap:
    """A LensTools map of the float64 promotion of ``m`` (what paper_repro computes on)."""
    return ConvergenceMap(np.asarray(m, dtype=np.float64), angle_deg * u.deg)
