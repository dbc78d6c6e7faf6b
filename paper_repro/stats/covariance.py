"""Covariance of summary statistics across maps, one set against another: what a likelihood uses.

A statistic is an (N, K) array (N maps, K components). Two sets' covariance matrices are compared

* element-wise: the ratio of the diagonal elements (variances, as |ln ratio|) and the difference of
  the off-diagonal correlation coefficients;
* as a whole: the root mean square over component pairs of the correlation difference (the
  Frobenius norm of R_a - R_b over the off-diagonal entries, divided by sqrt(2 x pairs));
* as emulator papers quote it: the relative error C_a,ij / C_b,ij - 1 of the off-diagonal covariance
  elements whose correlation in the reference set b is at least ``min_correlation`` in size (the
  relative error of a near-zero covariance is noise, not a fidelity figure); Armijo, Thiele & Liu
  (2026) found it up to 25% (10% typical) for a normalising-flow emulator of SLICS maps.

Components constant in either set (empty ell bins, never-populated peak bins) are left out. Box's M
test is not used: its chi-square null assumes Gaussian statistics of independent maps, while P(ell),
peak counts and Minkowski functionals are skewed and the simulated maps are overlapping crops of a
few parent maps; the criteria (:func:`paper_repro.evaluation.criteria.covariance_criterion`) instead
compare each number with its value for an independent simulation set, which has the same structure.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import PaperReproError
from .power import DEFAULT_L_EDGES, count_modes

#: pairs whose reference correlation is smaller than this in size are left out of the relative error
MIN_CORRELATION = 0.2


def _stat(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 3:
        raise PaperReproError(f"{name}: expected an (N, K) statistic with N >= 3 maps, found shape {a.shape}")
    if not np.isfinite(a).all():
        raise PaperReproError(f"{name}: contains NaN or inf")
    return a


def _cov(x: np.ndarray) -> np.ndarray:
    """``np.cov(x, rowvar=False)`` (K, K) without BLAS: a BLAS product this small is slower than einsum
    on busy cores (measured 0.1-0.3 s against 0.02 s for 4,000 x 57 with 2 cores oversubscribed)."""
    xc = x - x.mean(axis=0)
    return np.einsum("ni,nj->ij", xc, xc) / (x.shape[0] - 1)


def varying(*stats) -> np.ndarray:
    """Components (K,) that vary across the maps of every set given (the testable ones)."""
    return np.logical_and.reduce([np.ptp(np.asarray(s), axis=0) > 0 for s in stats])


def compare(a, b, *, min_correlation: float = MIN_CORRELATION, keep: np.ndarray | None = None) -> dict:
    """How the covariance of statistic ``a`` (N_a, K) differs from that of ``b`` (N_b, K), ``b`` the reference.

    ``keep``: the components to use (default: those varying in both sets). Returns plain floats:
    ``components``, ``pairs``; ``variance_log_ratio_max`` (max |ln var_a / var_b|) and
    ``variance_ratio_min`` / ``_max``; ``correlation_diff_max`` (max |R_a - R_b| off the diagonal) and
    ``correlation_diff_rms`` (its root mean square over pairs: the whole matrix);
    ``offdiag_relative_error_max`` / ``_median`` (|C_a / C_b - 1| over pairs with |R_b| >=
    ``min_correlation``; NaN when no pair qualifies), ``offdiag_pairs_used`` and
    ``offdiag_relative_error_mean_signed`` (the mean of C_a / C_b - 1 over those pairs with the sign of
    C_b: negative when the covariances are too small in size).
    """
    a, b = _stat(a, "a"), _stat(b, "b")
    if a.shape[1] != b.shape[1]:
        raise PaperReproError(f"a, b: expected the same number of components, found {a.shape[1]} and {b.shape[1]}")
    keep = varying(a, b) if keep is None else np.asarray(keep, dtype=bool)
    k = int(keep.sum())
    out = {"components": k, "pairs": k * (k - 1) // 2}
    if k == 0:
        return out | dict.fromkeys(("variance_log_ratio_max", "variance_ratio_min", "variance_ratio_max",
                                    "correlation_diff_max", "correlation_diff_rms", "offdiag_relative_error_max",
                                    "offdiag_relative_error_median", "offdiag_relative_error_mean_signed"),
                                   math.nan) | {"offdiag_pairs_used": 0}
    ca, cb = _cov(a[:, keep]), _cov(b[:, keep])
    va, vb = np.diag(ca), np.diag(cb)
    ratio = va / vb
    ra = ca / np.sqrt(np.outer(va, va))
    rb = cb / np.sqrt(np.outer(vb, vb))
    iu = np.triu_indices(k, 1)
    d = (ra - rb)[iu]
    use = np.abs(rb[iu]) >= min_correlation
    rel = ca[iu][use] / cb[iu][use] - 1.0
    out.update({
        "variance_log_ratio_max": float(np.abs(np.log(ratio)).max()),
        "variance_ratio_min": float(ratio.min()), "variance_ratio_max": float(ratio.max()),
        "correlation_diff_max": float(np.abs(d).max()) if d.size else math.nan,
        "correlation_diff_rms": float(np.sqrt(np.mean(d * d))) if d.size else math.nan,
        "offdiag_pairs_used": int(use.sum()),
        "offdiag_relative_error_max": float(np.abs(rel).max()) if rel.size else math.nan,
        "offdiag_relative_error_median": float(np.median(np.abs(rel))) if rel.size else math.nan,
        "offdiag_relative_error_mean_signed": float(np.mean(rel)) if rel.size else math.nan,
    })
    return out


def band_edges(n_bands: int = 12, l_edges=None) -> np.ndarray:
    """About ``n_bands`` logarithmic multipole bands whose edges are edges of ``l_edges`` (default: the paper's)."""
    edges = np.asarray(DEFAULT_L_EDGES if l_edges is None else l_edges, dtype=np.float64)
    if n_bands < 1 or edges.ndim != 1 or edges.size < 2:
        raise PaperReproError(f"band_edges: expected n_bands >= 1 and >= 2 l_edges, got {n_bands}, {edges.size}")
    idx = np.unique(np.rint(np.geomspace(1, edges.size, n_bands + 1)).astype(int) - 1)
    return edges[idx]


def power_bands(power, size: int, angle_deg: float, l_edges=None, n_bands: int = 12
                ) -> tuple[list[float], np.ndarray]:
    """The power spectrum (N, K) at ``l_edges`` rebinned to logarithmic bands: (band centres, (N, B)).

    A band's value is the mode-weighted mean of its bins, sum_k P_k m_k / sum_k m_k (m_k: Fourier
    modes of bin k), which is exactly LensTools' P with the band edges. Bands holding no mode are 0.
    """
    edges = np.asarray(DEFAULT_L_EDGES if l_edges is None else l_edges, dtype=np.float64)
    p = np.atleast_2d(np.asarray(power, dtype=np.float64))
    if p.shape[1] != edges.size - 1:
        raise PaperReproError(f"power: expected {edges.size - 1} ell bins, found {p.shape[1]}")
    hits = count_modes(size, angle_deg, edges).astype(np.float64)
    be = band_edges(n_bands, edges)
    which = np.searchsorted(be, edges[:-1], side="right") - 1       # the band of each bin (by lower edge)
    w = np.zeros((edges.size - 1, be.size - 1))
    ok = (which >= 0) & (which < be.size - 1)
    w[np.flatnonzero(ok), which[ok]] = hits[ok]
    tot = w.sum(axis=0)
    w = w / np.where(tot > 0, tot, 1.0)
    return [float(v) for v in 0.5 * (be[:-1] + be[1:])], p @ w
