"""Two-sample comparison of map statistics: per-component KS and AD tests, bootstrap, reported tallies.

The paper (Sect. 3.1) compares generated and validation maps with bootstrapped two-sample
Kolmogorov-Smirnov (KS) and Anderson-Darling (AD) tests, one per component of a statistic (each
of the 248 power-spectrum modes, each of the 57 Minkowski-functional values, ...), and reports
tallies such as "p > 0.99 in 236 of 248 modes". Under the null hypothesis a valid p-value is
uniform, so such tallies cannot be pass thresholds.
This module therefore

* computes KS and AD tests for many components at once (vectorised ranks), with full-range
  p-values (:func:`ks_test`, :func:`ad_test`);
* bootstraps them (R subsamples of n maps from each set; the median p per component, as the
  paper) and turns the medians into valid p-values, min(1, 2 x median) (a median of p-values,
  doubled, is a valid p-value under any dependence: Meng 1994; Vovk & Wang 2020), Holm-corrected
  across components (:func:`bootstrap_tests`, :func:`holm`);
* gives the numbers the certification's criteria compare (mean z, correlation distances: the
  criteria themselves are :mod:`paper_repro.evaluation.criteria`);
* respects the data's structure: maps cut from one parent map are correlated, so standard errors
  are cluster-robust over parent maps (:func:`clustered_se`) and the bootstrap subsamples parent
  maps first (``groups_a``/``groups_b`` of :func:`bootstrap_tests`); without parent ids every map is
  its own cluster (independent draws, as a generator's maps are);
* reports the paper-style tallies, labelled as such (:func:`paper_tallies`), and offers the
  chi-square histogram distance of the paper's checkpoint selection (:func:`histogram_chi2`).

Statistics are (N, K) arrays: N maps, K components. Components constant over both sets (empty
ell bins) cannot be tested: they are reported, with NaN p-values, and left out of every criterion.

AD p-values are full range (:mod:`paper_repro.stats.ranktests`), not SciPy's clipped table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.stats

from ..errors import PaperReproError
from .power import correlation_difference, fourier_mode_power, offdiagonal
from .ranktests import Pooled, ad_pvalue, adinf_sf, dense_ranks
from .reports import jsonable

__all__ = [
    "ks_test", "ad_test", "ad_pvalue", "constant_components", "holm", "bootstrap_tests",
    "BootstrapResult", "paper_tallies", "mean_z", "correlation_distance", "histogram_chi2",
    "split_reference", "compare_fourier_modes", "as_stat", "smallest", "adinf_sf",
    "cluster_codes", "clustered_se", "cluster_count", "mean_z_df", "normal_equivalent",
]


# --- input checks -------------------------------------------------------------------------------

def as_stat(x, name: str) -> np.ndarray:
    """``x`` as a finite float64 statistic (N, K), N >= 2 maps (a 1-D array is one component)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 2:
        raise PaperReproError(f"{name}: expected an (N, K) statistic with N >= 2 maps, found shape {np.shape(x)}")
    if not np.isfinite(a).all():
        raise PaperReproError(f"{name}: contains NaN or inf")
    return a


def _pair(a, b, names=("a", "b")) -> tuple[np.ndarray, np.ndarray]:
    a = as_stat(a, names[0])
    b = as_stat(b, names[1])
    if a.shape[1] != b.shape[1]:
        raise PaperReproError(
            f"{names[0]}, {names[1]}: expected the same number of components, found {a.shape[1]} and {b.shape[1]}")
    return a, b


def constant_components(*stats) -> np.ndarray:
    """Components (K,) whose value is the same in every map of every set given: not testable."""
    first = np.asarray(stats[0])[0]
    return np.logical_and.reduce([np.all(np.asarray(s) == first, axis=0) for s in stats])


# --- clusters (parent maps) ----------------------------------------------------------------------------

def cluster_codes(groups, n: int, name: str = "groups") -> np.ndarray | None:
    """Parent-map ids of n maps as cluster codes 0..G-1 (None: every map its own cluster).

    Raises PaperReproError unless ``groups`` holds n integer ids of at least 2 distinct parents.
    """
    if groups is None:
        return None
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != n or not np.issubdtype(g.dtype, np.integer):
        raise PaperReproError(f"{name}: expected {n} integer parent-map ids, found {g.dtype} array of shape {g.shape}")
    codes = np.unique(g, return_inverse=True)[1].ravel()
    if codes.max(initial=0) < 1:
        raise PaperReproError(f"{name}: all {n} maps come from one parent map; a standard error needs at least 2")
    return codes


def cluster_count(groups, n: int) -> int:
    """Number of independent clusters among n maps: distinct parent maps, or n without parent ids."""
    codes = cluster_codes(groups, n)
    return n if codes is None else int(codes.max()) + 1


def clustered_se(values, groups=None) -> np.ndarray:
    """Cluster-robust standard error of each column's mean (K,), clusters = parent maps.

    Var(mean) = G / (G - 1) sum_g (sum_{i in g} (x_i - mean))^2 / N^2 (the sandwich estimator with
    the small-sample correction; Cameron & Miller 2015). Maps of one parent are correlated, so the
    naive sqrt(var / N) understates the error when there are few parents. ``groups`` None: every
    map its own cluster (independent draws), which gives exactly sqrt(var(ddof=1) / N).
    """
    x = as_stat(values, "values")
    n = x.shape[0]
    codes = cluster_codes(groups, n)
    resid = x - x.mean(axis=0)
    if codes is None:
        sums, g = resid, n
    else:
        g = int(codes.max()) + 1
        sums = np.zeros((g, x.shape[1]))
        np.add.at(sums, codes, resid)
    return np.sqrt(g / (g - 1.0) * (sums ** 2).sum(axis=0)) / n


def _subsample(rng: np.random.Generator, codes: np.ndarray | None, n_total: int, n: int) -> np.ndarray:
    """n map indices of one bootstrap replicate: without parent ids n maps at random; with them a
    random half of the parent maps first (ceil(G / 2)), then n maps among theirs (all if fewer)."""
    if codes is None:
        return rng.permutation(n_total)[:n] if n < n_total else np.arange(n_total)
    g = int(codes.max()) + 1
    chosen = np.zeros(g, dtype=bool)
    chosen[rng.permutation(g)[: (g + 1) // 2]] = True
    pool = np.flatnonzero(chosen[codes])
    return pool[rng.permutation(pool.size)[:n]] if n < pool.size else pool


# --- vectorised two-sample tests ---------------------------------------------------------------------

def ks_test(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided two-sample KS test of every component: (D (K,), p (K,)), as ``scipy.stats.ks_2samp``.

    D = max |F_a - F_b| over the pooled values (ties handled as SciPy). The p-value is SciPy's own
    (method 'auto': exact up to 10,000 maps per set), computed once per distinct (n, m, D) and
    cached. Constant components get D = 0, p = 1 (callers leave them out).
    """
    a, b = _pair(a, b)
    return Pooled(a, b).ks(a, b)


def ad_test(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample Anderson-Darling test of every component: (T (K,), p (K,)).

    T equals ``scipy.stats.anderson_ksamp([a[:, k], b[:, k]], variant='midrank').statistic``
    (Scholz & Stephens' A2akN with mid-ranks for ties, standardised); p is full range (module
    docstring), not clipped to [0.001, 0.25]. Constant components get T = NaN, p = NaN.
    """
    a, b = _pair(a, b)
    return Pooled(a, b).ad()


# --- multiple testing ----------------------------------------------------------------------------------

def holm(p) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values; NaN entries (untested components) stay NaN.

    Component i is rejected at family-wise level alpha when adjusted p_i <= alpha.
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    q = p[ok]
    order = np.argsort(q, kind="stable")
    k = q.size
    adj = np.maximum.accumulate((k - np.arange(k)) * q[order])
    res = np.empty(k)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


# --- bootstrap -------------------------------------------------------------------------------------------

@dataclass
class BootstrapResult:
    """Bootstrapped per-component KS and AD tests of one pair of sets (a: first, b: second).

    Arrays have one entry per component; untested (constant) components hold NaN.
    ``*_median_p``: the paper's bootstrap p (median over replicates); ``*_valid_p``:
    min(1, 2 median), a valid p-value; ``*_holm``: Holm-adjusted ``*_valid_p``;
    ``*_reject_fraction``: fraction of tested components with p < alpha, averaged over replicates.
    """

    n_a: int
    n_b: int
    n_sub: int
    replicates: int
    alpha: float
    constant: np.ndarray
    ks_stat_median: np.ndarray
    ks_median_p: np.ndarray
    ad_stat_median: np.ndarray
    ad_median_p: np.ndarray
    ks_reject_fraction: float
    ad_reject_fraction: float
    ks_p: np.ndarray = field(repr=False)                  # (R, K) replicate p-values
    ad_p: np.ndarray = field(repr=False)

    @property
    def ks_valid_p(self) -> np.ndarray:
        return np.minimum(1.0, 2.0 * self.ks_median_p)

    @property
    def ad_valid_p(self) -> np.ndarray:
        return np.minimum(1.0, 2.0 * self.ad_median_p)

    @property
    def ks_holm(self) -> np.ndarray:
        return holm(self.ks_valid_p)

    @property
    def ad_holm(self) -> np.ndarray:
        return holm(self.ad_valid_p)

    @property
    def tested(self) -> int:
        return int((~self.constant).sum())

    def to_dict(self, labels: Sequence | None = None, replicates: bool = False) -> dict[str, Any]:
        d = {
            "n_a": self.n_a, "n_b": self.n_b, "n_sub": self.n_sub, "replicates": self.replicates,
            "alpha": self.alpha, "tested_components": self.tested,
            "constant_components": int(self.constant.sum()),
            "ks_reject_fraction": self.ks_reject_fraction, "ad_reject_fraction": self.ad_reject_fraction,
            "ks_min_holm_p": smallest(self.ks_holm), "ad_min_holm_p": smallest(self.ad_holm),
            "components": {
                "label": jsonable(labels if labels is not None else np.arange(self.constant.size)),
                "constant": self.constant.tolist(),
                "ks_statistic_median": jsonable(self.ks_stat_median),
                "ks_median_p": jsonable(self.ks_median_p),
                "ks_valid_p": jsonable(self.ks_valid_p),
                "ks_holm_p": jsonable(self.ks_holm),
                "ad_statistic_median": jsonable(self.ad_stat_median),
                "ad_median_p": jsonable(self.ad_median_p),
                "ad_valid_p": jsonable(self.ad_valid_p),
                "ad_holm_p": jsonable(self.ad_holm),
            },
        }
        if replicates:
            d["ks_p_replicates"] = jsonable(self.ks_p)
            d["ad_p_replicates"] = jsonable(self.ad_p)
        return d


def bootstrap_tests(a, b, *, n_sub: int | None = None, replicates: int = 100, alpha: float = 0.05,
                    seed: int | np.random.Generator = 0, groups_a=None, groups_b=None) -> BootstrapResult:
    """KS and AD tests of every component on ``replicates`` subsamples of ``n_sub`` maps of each set.

    Each replicate draws ``n_sub`` maps without replacement from a and, independently, from b
    (default and maximum: the smaller set's size). With parent-map ids (``groups_a``, ``groups_b``)
    a replicate resamples parents, not maps: a random half of the set's parents, then ``n_sub`` maps
    among their maps, so replicates vary as new parent maps would. The same seed gives the same result.
    """
    a, b = _pair(a, b)
    codes_a = cluster_codes(groups_a, a.shape[0], "groups_a")
    codes_b = cluster_codes(groups_b, b.shape[0], "groups_b")
    na, nb_ = a.shape[0], b.shape[0]
    n = min(na, nb_) if n_sub is None else int(n_sub)
    if not 2 <= n <= min(na, nb_):
        raise PaperReproError(
            f"n_sub: expected 2 <= n_sub <= {min(na, nb_)} (the smaller set), found {n_sub}")
    if replicates < 1:
        raise PaperReproError(f"replicates: expected >= 1, found {replicates}")
    rng = np.random.default_rng(seed)
    const = constant_components(a, b)
    tested = np.flatnonzero(~const)
    k = a.shape[1]
    ks_p = np.full((replicates, k), np.nan)
    ad_p = np.full((replicates, k), np.nan)
    ks_s = np.full((replicates, k), np.nan)
    ad_s = np.full((replicates, k), np.nan)
    if tested.size:
        at, bt = a[:, tested], b[:, tested]
        ranks = dense_ranks(np.concatenate([at, bt]))            # ranked once, sorted fast per replicate
        ra, rb = ranks[:, :na], ranks[:, na:]
        for r in range(replicates):
            ia = _subsample(rng, codes_a, na, n)
            ib = _subsample(rng, codes_b, nb_, n)
            pooled = Pooled(None, None, (ra[:, ia], rb[:, ib]))
            ks_s[r, tested], ks_p[r, tested] = pooled.ks(at, bt, ia, ib)
            ad_s[r, tested], ad_p[r, tested] = pooled.ad()
    with np.errstate(invalid="ignore"):
        # a subsample can be constant in a component that is not constant overall: AD is then
        # undefined there (NaN): count it as not rejected, take medians over the defined ones
        ks_rej = _mean_or_nan(np.nanmean(ks_p[:, tested] < alpha, axis=1)) if tested.size else math.nan
        ad_rej = _mean_or_nan(np.nanmean(np.where(np.isnan(ad_p[:, tested]), 1.0, ad_p[:, tested]) < alpha,
                                         axis=1)) if tested.size else math.nan
    return BootstrapResult(
        n_a=na, n_b=nb_, n_sub=n, replicates=replicates, alpha=alpha, constant=const,
        ks_stat_median=_nanmedian(ks_s), ks_median_p=_nanmedian(ks_p),
        ad_stat_median=_nanmedian(ad_s), ad_median_p=_nanmedian(ad_p),
        ks_reject_fraction=ks_rej, ad_reject_fraction=ad_rej, ks_p=ks_p, ad_p=ad_p)


def _nanmedian(x: np.ndarray) -> np.ndarray:
    out = np.full(x.shape[1], np.nan)
    ok = ~np.all(np.isnan(x), axis=0)
    if ok.any():
        out[ok] = np.nanmedian(x[:, ok], axis=0)
    return out


def _mean_or_nan(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else math.nan


def smallest(x: np.ndarray) -> float | None:
    """The smallest finite entry of ``x`` as a float, None when there is none (e.g. no tested component)."""
    x = np.asarray(x)
    return float(np.nanmin(x)) if np.isfinite(x).any() else None


# --- reported summaries -------------------------------------------------------------------------------

def paper_tallies(p, levels: Sequence[float] = (0.99, 0.95, 0.9, 0.8), label: str = "components"
                  ) -> dict[str, Any]:
    """The paper-style tallies "bootstrap p > level in k of K components" (reported, never a criterion).

    Under the null a valid p exceeds 0.99 in only ~1 % of components, even between two independent
    simulation sets: these counts describe, they do not certify.
    """
    p = np.asarray(p, dtype=np.float64)
    tested = p[np.isfinite(p)]
    counts = {f"p>{lv:g}": int((tested > lv).sum()) for lv in levels}
    text = "; ".join(f"p > {lv:g} in {c} of {tested.size} {label}" for lv, c in zip(levels, counts.values()))
    return {"label": "paper-style tally (descriptive only, not a pass criterion)", "tested": int(tested.size),
            "counts": counts, "min_p": float(tested.min()) if tested.size else None, "text": text}


def mean_z(gen, ref, gen_groups=None, ref_groups=None) -> np.ndarray:
    """(mean_gen - mean_ref) / standard error, per component; NaN where both sets are constant.

    The standard error is sqrt(se_gen^2 + se_ref^2), each :func:`clustered_se` over the set's
    parent-map ids (None: independent maps, the plain sqrt(var / N)).
    """
    g, r = _pair(gen, ref, ("gen", "ref"))
    se = np.hypot(clustered_se(g, gen_groups), clustered_se(r, ref_groups))
    diff = g.mean(axis=0) - r.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff == 0, np.nan, np.inf))
    return z


def mean_z_df(gen, ref, gen_groups=None, ref_groups=None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mean_z` and its degrees of freedom per component (Welch-Satterthwaite over clusters).

    A cluster-robust standard error from G parent maps has G - 1 degrees of freedom, so with few
    parents z follows Student's t, not a normal law: df = se^4 / (se_gen^4 / (G_gen - 1) +
    se_ref^4 / (G_ref - 1)), G the number of parent maps (the number of maps without ids).
    """
    z = mean_z(gen, ref, gen_groups, ref_groups)
    g, r = _pair(gen, ref, ("gen", "ref"))
    vg, vr = clustered_se(g, gen_groups) ** 2, clustered_se(r, ref_groups) ** 2
    dg, dr = cluster_count(gen_groups, g.shape[0]) - 1.0, cluster_count(ref_groups, r.shape[0]) - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (vg + vr) ** 2 / (vg ** 2 / dg + vr ** 2 / dr)
    return z, np.where(np.isfinite(df), df, dg + dr)


def normal_equivalent(z, df) -> np.ndarray:
    """|z| of Student's t with ``df`` degrees of freedom as the normal |z| of the same two-sided tail
    probability: a limit of k standard errors then means the same false-alarm rate with 5 parent
    maps as with 5,000 independent maps. NaN stays NaN."""
    z, df = np.broadcast_arrays(np.abs(np.asarray(z, dtype=np.float64)), np.asarray(df, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        out = scipy.stats.norm.isf(scipy.stats.t.sf(z, df))
    # t.sf underflows to 0 far out; there the t quantile already exceeds any limit used
    return np.where(np.isinf(z) | (np.isfinite(z) & ~np.isfinite(out)), np.inf, np.where(np.isnan(z), np.nan, out))


def compare_fourier_modes(generated, reference, *, top: int = 8, grid_period: int = 8,
                          ring_width: int = 8) -> dict:
    """Which 2-D Fourier modes of the generated maps carry the wrong power (descriptive).

    Power per mode from :func:`~paper_repro.stats.power.fourier_mode_power`; z = (mean_gen -
    mean_ref) / combined standard error. Each mode is counted once (k and -k carry the same power
    for real maps); k = 0 is left out. Returns {"worst": the ``top`` modes by |z|, each {"k": [kx,
    ky], "ratio": power gen / ref, "z", "grid": whether both components are multiples of H /
    ``grid_period`` (wavevectors whose period divides ``grid_period`` pixels: the grid that stride-2
    upsampling layers imprint)}; "grid": {"modes", "ratio" (summed power gen / ref), "max_abs_z"}
    over those grid modes; "rings": [{"k_min", "k_max", "ratio"}] summed power in rings of |k|
    ``ring_width`` wide; "fixed_pattern_rms": {"generated", "reference", "noise_generated"}: the rms
    of each set's pixel-wise mean map and what independent maps would give (pixel std / sqrt N)}.
    """
    g = fourier_mode_power(generated)
    r = fourier_mode_power(reference)
    if g["mean"].shape != r["mean"].shape:
        raise PaperReproError(f"generated maps are {g['mean'].shape}, reference maps {r['mean'].shape}: "
                              "modes can only be compared at one size")
    size = g["mean"].shape[0]
    if grid_period < 1 or size % grid_period:
        raise PaperReproError(f"grid_period must divide the map size {size}, got {grid_period}")
    kx, ky = g["kx"], g["ky"]
    # one of each pair {k, -k} (FFT indices (i, j) and (-i, -j) mod H), without k = 0
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    ci, cj = (-i) % size, (-j) % size
    half = ((i < ci) | ((i == ci) & (j <= cj))) & ~((i == 0) & (j == 0))
    se = np.hypot(g["sem"], r["sem"])
    z = np.where(se > 0, (g["mean"] - r["mean"]) / np.where(se > 0, se, 1.0), 0.0)
    ratio = g["mean"] / np.where(r["mean"] > 0, r["mean"], np.nan)
    step = size // grid_period
    on_grid = (kx % step == 0) & (ky % step == 0)
    idx = np.flatnonzero(half.ravel())
    order = idx[np.argsort(-np.abs(z.ravel()[idx]), kind="stable")][:top]
    worst = [{"k": [int(kx.flat[q]), int(ky.flat[q])], "ratio": float(ratio.flat[q]), "z": float(z.flat[q]),
              "grid": bool(on_grid.flat[q])} for q in order]
    gm = half & on_grid
    kk = np.hypot(kx, ky)
    rings = []
    for lo in range(0, int(np.ceil(kk.max())) + 1, ring_width):
        m = half & (kk >= max(lo, 1e-9)) & (kk < lo + ring_width)
        if m.any():
            rings.append({"k_min": lo, "k_max": lo + ring_width,
                          "ratio": float(g["mean"][m].sum() / r["mean"][m].sum())})
    n = g["n"]
    pixel_std = float(np.sqrt(max(g["mean"].sum() / size ** 2 - float(np.mean(g["mean_map"])) ** 2, 0.0)))
    return {"worst": worst,
            "grid": {"period_pixels": grid_period, "modes": int(gm.sum()),
                     "ratio": float(g["mean"][gm].sum() / r["mean"][gm].sum()) if gm.any() else math.nan,
                     "max_abs_z": float(np.abs(z[gm]).max()) if gm.any() else math.nan},
            "rings": rings,
            "fixed_pattern_rms": {"generated": float(g["mean_map"].std()), "reference": float(r["mean_map"].std()),
                                  "noise_generated": pixel_std / math.sqrt(n)},
            "n_generated": int(n), "n_reference": int(r["n"])}


def correlation_distance(stat_a, stat_b, quantile: float = 0.99) -> dict[str, float]:
    """Summary of |C_a - C_b| (correlation matrices across maps) over off-diagonal component pairs.

    Returns {"quantile": q, "value": the q-quantile, "max": the largest}; constant components are
    left out (their correlations are undefined).
    """
    a, b = _pair(stat_a, stat_b)
    d = np.abs(offdiagonal(correlation_difference(a, b)))
    if d.size == 0:
        return {"quantile": quantile, "value": math.nan, "max": math.nan}
    return {"quantile": quantile, "value": float(np.quantile(d, quantile)), "max": float(d.max())}


def histogram_chi2(gen, ref, bins: int = 20, *, log: bool = False) -> tuple[np.ndarray, float]:
    """Chi-square distance between per-component histograms of two sets (paper Sect. 2.3 selection).

    For each component, both sets are histogrammed on ``bins`` equal bins spanning the reference
    set's range (values outside go to the end bins), normalised to unit sum, and compared with
    chi2 = 1/2 sum_i (g_i - r_i)^2 / (g_i + r_i) (0: identical, 1: disjoint). ``log``: bin
    log10 of the values (for positive, skewed statistics such as the power spectrum). Returns
    (per-component distances (K,), their sum over non-constant components).
    """
    g, r = _pair(gen, ref, ("gen", "ref"))
    if bins < 2:
        raise PaperReproError(f"bins: expected >= 2, found {bins}")
    if log:
        if (g <= 0).any() or (r <= 0).any():
            const = constant_components(g, r)
            bad = ((g <= 0) | (r <= 0)).any(axis=0) & ~const
            if bad.any():
                raise PaperReproError("histogram_chi2: log=True needs positive values in every tested component")
        with np.errstate(divide="ignore"):
            g, r = np.log10(np.where(g > 0, g, 1.0)), np.log10(np.where(r > 0, r, 1.0))
    lo, hi = r.min(axis=0), r.max(axis=0)
    width = np.where(hi > lo, hi - lo, 1.0)

    def hist(x: np.ndarray) -> np.ndarray:
        k = np.clip(np.floor((x - lo) / width * bins), 0, bins - 1).astype(np.intp)
        k += (np.arange(x.shape[1]) * bins)[None, :]
        h = np.bincount(k.ravel(), minlength=bins * x.shape[1]).reshape(x.shape[1], bins).astype(np.float64)
        return h / x.shape[0]

    hg, hr = hist(g), hist(r)
    s = hg + hr
    with np.errstate(divide="ignore", invalid="ignore"):
        d = 0.5 * np.where(s > 0, (hg - hr) ** 2 / np.where(s > 0, s, 1.0), 0.0).sum(axis=1)
    const = constant_components(gen if not log else g, ref if not log else r)
    d[const] = 0.0
    return d, float(d.sum())


def split_reference(n: int, seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random disjoint halves (indices) of a reference set of n maps, for when no auxiliary set is given.

    Use the first half as the validation set and the second as the auxiliary set, so that the
    generated-vs-validation and the baseline comparisons have the same validation-set size.
    """
    if n < 4:
        raise PaperReproError(f"split_reference: expected at least 4 maps, found {n}")
    perm = np.random.default_rng(seed).permutation(n)
    h = n // 2
    return np.sort(perm[:h]), np.sort(perm[h:2 * h])
