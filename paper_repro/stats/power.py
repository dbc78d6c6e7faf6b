"""Power spectra and correlation matrices of convergence maps, exactly as LensTools 1.2.

* :func:`power_spectrum` -- ``ConvergenceMap.powerSpectrum(l_edges)`` (same binning, same sums,
  agreement ~1e-14 relative: tests/stats/test_power.py, tests_lenstools/ against LensTools 1.2);
* :func:`count_modes`, :func:`nonempty_bins` -- Fourier modes per ell bin, the bins holding any;
* :func:`power_features` -- ln P over the non-empty bins: the space of power-spectrum distances;
* :func:`fourier_mode_power` -- not LensTools: the power of every 2-D Fourier mode, for the
  orientation-dependent errors (checkerboards) that ring averages hide;
* :func:`correlation_matrix`, :func:`correlation_difference`, :func:`offdiagonal` -- the paper's
  Fig. 4 (correlations between ell bins).

Maps: one (H, W) or a batch (N, H, W), float32 or float64, square, promoted to float64 chunk by
chunk (:mod:`paper_repro.stats.batching`).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft

from ..errors import PaperReproError
from ..maps.io import check_maps
from .batching import as_batch, check_angle, check_edges, iter_chunks, run_parallel, unbatch

#: the paper's power-spectrum binning: 249 edges, 248 modes (paper-facts; authors' slides)
DEFAULT_L_EDGES = np.arange(200.0, 50000.0, 200.0)
#: the paper's side angle of a 256^2 crop in degrees (sqrt(12)/4)
DEFAULT_ANGLE_DEG = 0.866


@functools.lru_cache(maxsize=32)
def _ps_binning(size: int, angle_deg: float, edges_bytes: bytes) -> tuple[np.ndarray, np.ndarray, float]:
    """Bin of every rfft2 half-plane mode of a ``size``^2 map (nb: none), hits per bin, normalisation.

    Mirrors LensTools ``azimuthal_rfft2``: ell of mode (i, j) is sqrt(lx^2 + ly^2) with
    lx = min(i, N - i) * 360/angle, ly = j * 360/angle; bin k holds e_k < ell <= e_{k+1}.
    """
    edges = np.frombuffer(edges_bytes, dtype=np.float64)
    nb = edges.size - 1
    lpix = 360.0 / angle_deg
    i = np.arange(size)
    lx = np.minimum(i, size - i) * lpix
    ly = np.arange(size // 2 + 1) * lpix
    ell = np.sqrt(lx[:, None] * lx[:, None] + ly[None, :] * ly[None, :]).ravel()
    k = np.searchsorted(edges, ell, side="left") - 1      # e_k < ell <= e_{k+1}
    k[(k < 0) | (k >= nb)] = nb                             # outside every bin: a dump bin
    hits = np.bincount(k, minlength=nb + 1)[:nb]
    norm = ((angle_deg * math.pi / 180.0) / (size * size)) ** 2
    k.setflags(write=False)
    hits.setflags(write=False)
    return k, hits, norm


def power_spectrum(maps, angle_deg: float = DEFAULT_ANGLE_DEG, l_edges=None, *,
                   workers: int | None = None,
                   chunk_maps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Binned convergence power spectrum, LensTools' ``powerSpectrum`` (dimensionless C_ell, sr).

    ``maps``: one map (H, W) or a batch (N, H, W) covering ``angle_deg`` degrees on a side.
    ``l_edges``: multipole bin edges (default: the paper's ``arange(200, 50000, 200)``).
    Returns (ell bin centres (K,), P of shape (K,) or (N, K)). P_k = (theta_rad / N^2)^2 times
    the mean of |rfft2(map)|^2 over the half-plane modes with e_k < ell <= e_{k+1}; bins holding
    no mode are 0 (at the paper's settings, (200, 400] and (600, 800]).
    """
    arr, single = as_batch(maps)
    angle = check_angle(angle_deg)
    edges = check_edges(DEFAULT_L_EDGES if l_edges is None else l_edges, "l_edges")
    size = arr.shape[1]
    bins, hits, norm = _ps_binning(size, angle, edges.tobytes())
    nb = edges.size - 1
    ell = 0.5 * (edges[:-1] + edges[1:])
    out = np.zeros((arr.shape[0], nb))
    nonempty = hits > 0

    def run(lo: int, hi: int) -> None:
        index = sq = power = None
        for start, chunk in iter_chunks(arr[lo:hi], chunk_maps, offset=lo):
            n = chunk.shape[0]
            ft = scipy.fft.rfft2(chunk).reshape(n, -1)
            if index is None or index.size != n * bins.size:
                index = (np.arange(n)[:, None] * (nb + 1) + bins[None, :]).ravel()
                sq = np.empty((n, bins.size, 2))
                power = np.empty((n, bins.size))
            np.multiply(ft.view(np.float64).reshape(sq.shape), ft.view(np.float64).reshape(sq.shape), out=sq)
            np.add(sq[..., 0], sq[..., 1], out=power)             # creal^2 + cimag^2, as LensTools
            # sums in LensTools' loop order (i-major, then j): bit-identical sums
            sums = np.bincount(index, weights=power.ravel(), minlength=n * (nb + 1)).reshape(n, nb + 1)
            out[lo + start:lo + start + n, nonempty] = norm * (sums[:, :nb][:, nonempty] / hits[nonempty])

    run_parallel(arr.shape[0], workers, run)
    return ell, unbatch(out, single)


def count_modes(size: int, angle_deg: float = DEFAULT_ANGLE_DEG, l_edges=None) -> np.ndarray:
    """Number of rfft2 half-plane Fourier modes in each ell bin for a ``size``^2 map (0: empty bin)."""
    edges = check_edges(DEFAULT_L_EDGES if l_edges is None else l_edges, "l_edges")
    return np.array(_ps_binning(int(size), check_angle(angle_deg), edges.tobytes())[1])


def nonempty_bins(size: int, angle_deg: float, l_edges) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ell bins holding at least one Fourier mode of a ``size``^2 map, and their centres."""
    hits = count_modes(size, angle_deg, l_edges)
    edges = DEFAULT_L_EDGES if l_edges is None else np.asarray(l_edges, dtype=np.float64)
    keep = np.flatnonzero(hits > 0)
    if keep.size < 1:
        raise PaperReproError(f"l_edges: no ell bin holds a Fourier mode of a {size}^2 map of {angle_deg} deg")
    return keep, 0.5 * (edges[:-1] + edges[1:])[keep]


def power_features(maps, angle_deg: float = DEFAULT_ANGLE_DEG, l_edges=None, *,
                   chunk: int = 4096) -> np.ndarray:
    """ln of the LensTools power spectrum of each map over its non-empty ell bins, (N, K) float64.

    The space of the ``"power"`` searches: L2 distances between rows are root-sum-squares of the
    bins' relative differences. A bin with zero power (a constant map) is floored at the smallest
    positive float64, so it is far from every real map rather than undefined.
    """
    arr = check_maps(maps, name="maps", check_finite=False)
    keep, _ = nonempty_bins(arr.shape[1], angle_deg, l_edges)
    out = np.empty((arr.shape[0], keep.size))
    for s in range(0, arr.shape[0], chunk):
        try:
            _, p = power_spectrum(arr[s:s + chunk], angle_deg, l_edges)
        except PaperReproError as exc:
            raise PaperReproError(f"maps[{s}:{s + chunk}]: {exc}") from None
        out[s:s + len(p)] = np.log(np.maximum(np.atleast_2d(p)[:, keep], np.finfo(np.float64).tiny))
    return out


def fourier_mode_power(maps, *, chunk_maps: int | None = None) -> dict[str, np.ndarray]:
    """Mean and standard error over maps of the power |FFT|^2 of every 2-D Fourier mode (not a
    LensTools statistic: ring averages such as :func:`power_spectrum` hide errors that depend on
    orientation, like a generator's checkerboard at the grid of its strided layers).

    ``maps``: (N, H, W), N >= 2, square. Orthonormal FFT, so the mean over modes of one map's power
    is the mean of its squared pixels (kappa^2). Returns {"kx", "ky" (H, W) integer wavevectors in
    fundamental modes, in (-H/2, H/2]; "mean", "sem" (H, W); "mean_map" (H, W), the pixel-wise
    mean of the maps (a fixed pattern shared by all of them); "n"}.
    """
    arr, single = as_batch(maps)
    n, h, w = arr.shape
    if single or n < 2:
        raise PaperReproError(f"maps: a standard error needs at least 2 maps, found {n}")
    if h != w:
        raise PaperReproError(f"maps: expected square maps, found {h}x{w}")
    s1 = np.zeros((h, w))
    s2 = np.zeros((h, w))
    pix = np.zeros((h, w))
    for _, chunk in iter_chunks(arr, chunk_maps):
        p = np.abs(scipy.fft.fft2(chunk, norm="ortho")) ** 2
        s1 += p.sum(axis=0)
        s2 += np.square(p).sum(axis=0)
        pix += chunk.sum(axis=0)
    mean = s1 / n
    var = np.maximum(s2 / n - mean ** 2, 0.0) * n / (n - 1)
    k = (np.arange(h) + h // 2 - 1) % h - h // 2 + 1          # 0, 1, ..., h/2, -h/2 + 1, ..., -1
    kx, ky = np.meshgrid(k, k, indexing="ij")
    return {"kx": kx, "ky": ky, "mean": mean, "sem": np.sqrt(var / n), "mean_map": pix / n, "n": n}


def correlation_matrix(stat) -> np.ndarray:
    """Pearson correlation matrix (K, K) of a statistic's K components across N maps (stat: (N, K)).

    Components constant across the maps (e.g. empty ell bins) get NaN rows and columns (their
    correlation is undefined), never a spurious 0 or 1.
    """
    x = np.asarray(stat, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise PaperReproError(f"stat: expected an (N, K) array with N >= 2 maps, found shape {x.shape}")
    if not np.isfinite(x).all():
        raise PaperReproError("stat: contains NaN or inf")
    xc = x - x.mean(axis=0)
    sd = np.sqrt((xc * xc).sum(axis=0))
    const = np.all(x == x[:1], axis=0) | ~(sd > 0)
    z = xc / np.where(const, 1.0, sd)
    c = np.clip(z.T @ z, -1.0, 1.0)
    c[const, :] = np.nan
    c[:, const] = np.nan
    keep = np.flatnonzero(~const)
    c[keep, keep] = 1.0
    return c


def correlation_difference(stat_a, stat_b) -> np.ndarray:
    """Difference C_a - C_b of the correlation matrices of one statistic over two sets of maps."""
    a = np.asarray(stat_a)
    b = np.asarray(stat_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise PaperReproError(
            f"stat_a, stat_b: expected (N, K) arrays with the same K, found {a.shape} and {b.shape}")
    return correlation_matrix(a) - correlation_matrix(b)


def offdiagonal(matrix: np.ndarray) -> np.ndarray:
    """The finite strictly-upper-triangular entries of a square matrix (each pair of components once)."""
    m = np.asarray(matrix)
    v = m[np.triu_indices(m.shape[0], k=1)]
    return v[np.isfinite(v)]
