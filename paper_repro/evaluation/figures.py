"""The paper's Figures 1-8 (Mustafa et al. 2019), regenerated for any run and dataset.

Each figure is a function ``figure_N(...)`` that takes arrays (maps, statistics, p-values) and
returns a :class:`matplotlib.figure.Figure`; the numbers behind it (N maps, angle, p-values,
distances) are attached as ``fig.numbers`` (a dict) and ``fig.caption`` (one paragraph), so the
validation report can reuse the figures. :func:`make_figures` computes everything from a run
directory and a dataset directory and writes ``figN.png``, ``figN.pdf``, ``figN.txt`` and
``captions.json``; :func:`main` is the ``make-figures`` command.

Lensing maps have heavy positive tails (halos): maps are shown with an arcsinh stretch (linear
within one pixel standard deviation of zero, logarithmic beyond) on a perceptual colour map, so
both the Gaussian-like background and the peaks stay visible; histograms use log axes.
Figures are built on :class:`~matplotlib.figure.Figure` directly (no pyplot state, no window), and
the Agg backend is selected, so they render on machines without a display.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.ticker  # noqa: E402

import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..errors import PaperReproError  # noqa: E402

#: figure identifiers, in the paper's order (Fig. 3 has two panels, written as two files)
FIGURES = ("1", "2", "3a", "3b", "4", "5", "6", "7", "8")
#: the authors' slides show per-mode histograms at these multipoles (bin centres at 0.866 deg)
DEFAULT_MODES = (3300.0, 23300.0, 43300.0)
#: map colour map: perceptual, dark background so the positive tails (peaks) stand out
MAP_CMAP = "magma"
#: correlation matrices: diverging, symmetric around 0
CORR_CMAP = "RdBu_r"
#: colours of the sets in every comparison figure
COLORS = {"validation": "#1f77b4", "generated": "#d62728", "auxiliary": "#2ca02c"}
#: default number of generated maps (and at most as many validation/auxiliary maps)
DEFAULT_N = 1000
#: default project locations used by ``make-figures`` without arguments
DEFAULT_DATA = Path("data") / "reference"
DEFAULT_OUT = Path("figures")


def default_run() -> Path:
    """The project's shipped reference model (``paper_repro/reference_model``)."""
    return Path(__file__).resolve().parents[1] / "reference_model"


# ===================================================================================== helpers
def _pct(x: float) -> str:
    return f"{x:.3g}"


def _fmt_p(p: float | None) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.1e}"


def _attach(fig: Figure, caption: str, numbers: dict) -> Figure:
    fig.caption = caption
    fig.numbers = numbers
    return fig


def _as_maps(maps, name: str) -> np.ndarray:
    arr = np.asarray(maps)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1] != arr.shape[2] or arr.dtype.kind != "f":
        raise PaperReproError(f"{name}: expected float maps (N, H, W), found {arr.dtype} {arr.shape}")
    return arr


def _as_stat(x, name: str, k: int | None = None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or (k is not None and arr.shape[1] != k):
        want = f"(N >= 2, {k})" if k is not None else "(N >= 2, K)"
        raise PaperReproError(f"{name}: expected an array of shape {want}, found {arr.shape}")
    return arr


def component_tests(a, b, *, seed: int = 0, n_sub: int | None = None,
                    replicates: int | None = None) -> dict:
    """Per-component bootstrapped two-sample KS and AD p-values of (N, K) statistics (paper Sect. 3.1).

    Uses :func:`paper_repro.comparison.bootstrap_tests` with the certification's settings
    (:class:`~paper_repro.config.CertificationConfig`: R subsamples of n maps per set). Returns
    {"KS": (K,), "AD": (K,)} valid p-values min(1, 2 x median p) (NaN for constant components),
    the paper's bootstrap medians ("KS median", "AD median"), the paper-style tallies over all K
    components ("tallies", descriptive only) and a description of the test ("test").
    """
    from ..stats import twosample as comparison
    from ..config import CertificationConfig

    cfg = CertificationConfig()
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = min(cfg.bootstrap_maps if n_sub is None else int(n_sub), len(a), len(b))
    r = cfg.bootstrap_replicates if replicates is None else int(replicates)
    res = comparison.bootstrap_tests(a, b, n_sub=n, replicates=r, alpha=cfg.alpha, seed=seed)
    return {"KS": res.ks_valid_p, "AD": res.ad_valid_p,
            "KS median": res.ks_median_p, "AD median": res.ad_median_p,
            "tallies": {"KS": comparison.paper_tallies(res.ks_median_p, cfg.tally_levels, "components"),
                        "AD": comparison.paper_tallies(res.ad_median_p, cfg.tally_levels, "components")},
            "test": f"bootstrap KS/AD ({r} subsamples of {n} maps per set; p = min(1, 2 x median p))",
            "n_sub": n, "replicates": r}


def _select_p(pvalues, idx: Sequence[int], name: str) -> dict[str, list[float]]:
    """{test name: p at components ``idx``} from an array (one test called ``name``) or from a
    mapping such as :func:`component_tests` returns (its "KS" and "AD" entries)."""
    if isinstance(pvalues, dict):
        items = [(k, pvalues[k]) for k in ("KS", "AD") if k in pvalues]
        if not items:
            items = [(k, v) for k, v in pvalues.items() if np.ndim(v) == 1]
    else:
        items = [(name, pvalues)]
    return {k: [float(np.asarray(v, dtype=np.float64)[i]) for i in idx] for k, v in items}


def _p_text(ps: dict[str, list[float]], j: int) -> str:
    return ", ".join(f"{k} p = {_fmt_p(v[j])}" for k, v in ps.items())


def _tally_text(pvalues) -> str:
    if not isinstance(pvalues, dict) or "tallies" not in pvalues:
        return ""
    t = pvalues["tallies"]
    return (" Paper-style tallies of the bootstrap median p over all tested components "
            "(descriptive only: under the null only ~1% of valid p-values exceed 0.99): "
            + "; ".join(f"{k}: {v['text']}" for k, v in t.items()) + ".")


def map_norm(maps: Sequence[np.ndarray], *, linear_sigmas: float = 1.0,
             percentiles: tuple[float, float] = (0.01, 99.99)) -> mcolors.Normalize:
    """One arcsinh colour stretch for all the maps shown together (same scale on every panel).

    Linear within ``linear_sigmas`` pixel standard deviations of 0, logarithmic beyond, between
    the given percentiles of the pooled pixels, so the positive tails of lensing maps (halos) stay
    visible next to the near-Gaussian background. Returns an ``AsinhNorm`` (convergence units).
    """
    pooled = np.concatenate([np.asarray(m, dtype=np.float64).ravel() for m in maps])
    lo, hi = np.percentile(pooled, percentiles)
    sd = float(pooled.std()) or 1.0
    if not hi > lo:
        lo, hi = lo - sd, hi + sd
    return mcolors.AsinhNorm(linear_width=linear_sigmas * sd, vmin=float(lo), vmax=float(hi))


def asinh_ticks(norm: mcolors.Normalize, min_gap: float = 0.07) -> list[float]:
    """Colour-bar ticks for an arcsinh stretch: 0 and +/-{1, 2, 5} x 10^k, at least ``min_gap`` apart.

    Spacing is measured on the stretched (0-1) scale, so ticks neither crowd around 0 nor thin out
    in the tails; the ends of the range are always labelled.
    """
    lo, hi = float(norm.vmin), float(norm.vmax)
    span = max(abs(lo), abs(hi))
    k0 = int(math.floor(math.log10(span))) - 4
    cand = {0.0}
    for k in range(k0, k0 + 6):
        for m in (1, 2, 5):
            cand.update((m * 10.0 ** k, -m * 10.0 ** k))
    cand = sorted(c for c in cand if lo <= c <= hi)
    pos = {c: float(norm(c)) for c in cand}
    # keep 0 first, then larger magnitudes first, so the round numbers of the tails survive
    order = ([0.0] if 0.0 in pos else []) + sorted((c for c in cand if c != 0.0), key=lambda c: -abs(c))
    kept: list[float] = []
    for c in order:
        if all(abs(pos[c] - pos[t]) >= min_gap for t in kept):
            kept.append(c)
    return sorted(kept)


def _cmap(name: str, bad: str = "0.8"):
    import matplotlib as mpl

    return mpl.colormaps[name].with_extremes(bad=bad)


def _map_panel(ax, m, norm, angle_deg: float | None, *, cmap=MAP_CMAP):
    extent = None if angle_deg is None else (0.0, angle_deg, 0.0, angle_deg)
    im = ax.imshow(np.asarray(m), norm=norm, cmap=cmap, origin="lower", extent=extent,
                   interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _map_grid(rows: list[tuple[str, Sequence[np.ndarray], Sequence[str] | None]], norm, angle_deg,
              *, title: str, panel: float = 1.9) -> Figure:
    """Rows of maps on one colour scale: (row label, maps, per-panel titles)."""
    ncol = max(len(r[1]) for r in rows)
    fig = Figure(figsize=(panel * ncol + 1.3, panel * len(rows) + 0.8), layout="constrained")
    axes = fig.subplots(len(rows), ncol, squeeze=False)
    im = None
    for i, (label, maps, titles) in enumerate(rows):
        for j in range(ncol):
            ax = axes[i, j]
            if j >= len(maps):
                ax.set_visible(False)
                continue
            im = _map_panel(ax, maps[j], norm, angle_deg)
            if titles is not None:
                ax.set_title(titles[j], fontsize=8)
        axes[i, 0].set_ylabel(label, fontsize=9)
    cb = fig.colorbar(im, ax=axes, shrink=0.9, pad=0.01)
    cb.set_ticks(asinh_ticks(norm))
    cb.ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.2g}"))
    cb.ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    cb.set_label(r"convergence $\kappa$ (asinh stretch)")
    fig.suptitle(title, fontsize=10)
    return fig


def _band(ax, x, stat, color, label, *, positive: bool = False):
    mean = stat.mean(axis=0)
    sd = stat.std(axis=0, ddof=1)
    lo, hi = mean - sd, mean + sd
    if positive:
        floor = np.nanmin(np.where(mean > 0, mean, np.inf)) * 1e-3
        lo = np.maximum(lo, floor)
    ax.fill_between(x, lo, hi, color=color, alpha=0.3, lw=0)
    ax.plot(x, mean, color=color, lw=1.3, label=label)
    return mean, sd


def _hist_pair(ax, a, b, *, bins: int = 30, labels=("validation", "generated")):
    """Normalised histograms of two 1-D samples on common bins."""
    pooled = np.concatenate([a, b])
    lo, hi = float(pooled.min()), float(pooled.max())
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    for x, lab in zip((a, b), labels):
        ax.hist(x, bins=edges, density=True, histtype="step", lw=1.4, color=COLORS[lab],
                label=f"{lab} ({len(x)})")
        ax.hist(x, bins=edges, density=True, histtype="stepfilled", alpha=0.15, color=COLORS[lab])


def _round_label(v: float, _pos=None) -> str:
    """Tick label for 1, 2, 5 x 10^k: plain integers from 1 to 10^6, else m x 10^k in mathtext."""
    if v <= 0:
        return ""
    if 1 <= v < 1e6:
        return f"{v:.0f}"
    k = math.floor(math.log10(v) + 1e-9)
    m = v / 10.0 ** k
    return f"$10^{{{k}}}$" if abs(m - 1) < 1e-6 else f"${m:.0f}\\times10^{{{k}}}$"


def _log_axis(ax, axis: str = "x") -> None:
    """Log axis with labelled decades only (minor labels crowd on short ranges)."""
    a = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    a.set_minor_formatter(matplotlib.ticker.NullFormatter())
    lo, hi = (ax.get_xlim() if axis == "x" else ax.get_ylim())
    if hi / lo < 100:  # under two decades: label 1, 2, 5 x 10^k instead of decades only
        a.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        a.set_major_formatter(matplotlib.ticker.FuncFormatter(_round_label))


def _sci(ax, axis: str = "both", nbins: int = 4) -> None:
    """Compact tick labels for small values (offset exponent), at most ``nbins`` ticks."""
    ax.ticklabel_format(axis=axis, style="sci", scilimits=(-2, 3), useMathText=True)
    for a in ((ax.xaxis, ax.yaxis) if axis == "both" else ((ax.xaxis,) if axis == "x" else (ax.yaxis,))):
        a.set_major_locator(matplotlib.ticker.MaxNLocator(nbins))


def _ell_factor(ell: np.ndarray) -> np.ndarray:
    return ell * (ell + 1.0) / (2.0 * math.pi)


# ===================================================================================== figures
def figure_1(generated, validation, *, angle_deg: float | None = None, n_show: int = 8,
             n_cols: int = 4) -> Figure:
    """Fig. 1: validation maps (top rows) and generated maps (bottom rows) on one colour scale."""
    gen = _as_maps(generated, "generated")
    val = _as_maps(validation, "validation")
    k_val, k_gen = min(n_show, len(val)), min(n_show, len(gen))
    shown_val = [np.asarray(val[i]) for i in range(k_val)]
    shown_gen = [np.asarray(gen[i]) for i in range(k_gen)]
    norm = map_norm(shown_val + shown_gen)
    rows = []
    for label, maps in (("validation", shown_val), ("generated", shown_gen)):
        for r in range(0, len(maps), n_cols):
            rows.append((label, maps[r:r + n_cols], None))
    size = val.shape[1]
    side = f", {angle_deg:.4g}° on a side" if angle_deg else ""
    fig = _map_grid(rows, norm, angle_deg,
                    title=f"Validation (top) and generated (bottom) convergence maps, {size}² px{side}")
    numbers = {"n_shown_validation": k_val, "n_shown_generated": k_gen,
               "n_validation": int(len(val)), "n_generated": int(len(gen)), "map_size": int(size),
               "angle_deg": angle_deg, "color_scale": "asinh", "linear_width": float(norm.linear_width),
               "vmin": float(norm.vmin), "vmax": float(norm.vmax), "cmap": MAP_CMAP}
    caption = (f"Figure 1. {k_val} validation maps (top) and {k_gen} generated maps (bottom), the first "
               f"of N = {len(val)} validation and N = {len(gen)} generated maps, {size}^2 px"
               f"{side}. One colour scale for all panels ({MAP_CMAP}): arcsinh stretch, linear within "
               f"+/-{norm.linear_width:.3g} (one pixel standard deviation) and logarithmic beyond, "
               f"from {norm.vmin:.3g} to {norm.vmax:.3g} (0.01st and 99.99th percentiles of the shown "
               f"pixels) so that the positive tails (halos) stay visible.")
    return _attach(fig, caption, numbers)


#: permutations of the map labels in :func:`pixel_values_pvalue`
PIXEL_PERMUTATIONS = 2000


def _map_cdfs(maps: np.ndarray, grid: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Fraction of each map's pixels <= each grid value, (N, G); memory bounded by ``chunk`` maps."""
    out = np.empty((len(maps), grid.size))
    for s in range(0, len(maps), chunk):
        block = np.sort(np.asarray(maps[s:s + chunk], dtype=np.float64).reshape(-1, maps.shape[1] * maps.shape[2]), axis=1)
        for j, row in enumerate(block):
            out[s + j] = np.searchsorted(row, grid, side="right")
        out[s:s + len(block)] /= block.shape[1]
    return out


def pixel_values_pvalue(generated, validation, *, n_permutations: int = PIXEL_PERMUTATIONS,
                        seed: int = 0) -> tuple[float, str, float]:
    """p-value for "same distribution of pixel intensities": (p, name of the test, KS distance D).

    D = max |F_gen - F_val| between the pooled pixel CDFs (on a grid of 202 pooled quantiles,
    tails included). Pixels of one map are correlated, so the textbook KS p-value (pixels as
    independent draws) is far too small; here the null distribution of D comes from permuting
    whole maps between the two sets (maps are exchangeable under the null), which is valid.
    p = (1 + #{D_perm >= D}) / (1 + n_permutations).
    """
    gen = _as_maps(generated, "generated")
    val = _as_maps(validation, "validation")
    rng = np.random.default_rng(seed)
    sample = np.concatenate([np.asarray(m[:: max(1, len(m) // 256)], dtype=np.float64).ravel()
                             for m in (gen, val)])
    levels = np.concatenate([np.linspace(0.0025, 0.9975, 200), [0.999, 0.9999]])
    grid = np.unique(np.quantile(sample, levels))
    cdf = np.concatenate([_map_cdfs(gen, grid), _map_cdfs(val, grid)])
    ng, n = len(gen), len(gen) + len(val)

    def distance(mask_rows: np.ndarray) -> np.ndarray:
        # mask_rows (P, n) booleans, True = "generated"; pooled CDF = mean of per-map CDFs
        m = mask_rows.astype(np.float64)
        fg = m @ cdf / ng
        fv = (1.0 - m) @ cdf / (n - ng)
        return np.abs(fg - fv).max(axis=1)

    observed = distance(np.arange(n)[None, :] < ng)[0]
    exceed = 0
    for s in range(0, n_permutations, 250):
        k = min(250, n_permutations - s)
        perms = np.argsort(rng.random((k, n)), axis=1) < ng
        exceed += int(np.count_nonzero(distance(perms) >= observed - 1e-12))
    p = (1 + exceed) / (1 + n_permutations)
    return float(p), f"KS distance, {n_permutations} map permutations", float(observed)


def figure_2(generated, validation, *, bins: int | np.ndarray = 60, pvalue: float | None = None,
             test: str | None = None, seed: int = 0) -> Figure:
    """Fig. 2: pixel-intensity histograms, generated vs validation, log y, with a p-value (see
    :func:`pixel_values_pvalue`).

    Lines: pooled histogram (density) of each set; bands: +/- one standard deviation of the
    per-map histograms (map-to-map scatter).
    """
    from ..stats import morphology

    gen = _as_maps(generated, "generated")
    val = _as_maps(validation, "validation")
    if np.ndim(bins) == 0:
        lo = min(float(np.min(val)), float(np.min(gen)))
        hi = max(float(np.max(val)), float(np.max(gen)))
        edges = np.linspace(lo, hi, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
    ks_d = None
    if pvalue is None:
        pvalue, test, ks_d = pixel_values_pvalue(gen, val, seed=seed)
    test = test or "two-sample test"
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.subplots()
    for lab, arr in (("validation", val), ("generated", gen)):
        centres, h = morphology.pixel_histogram(arr, edges, density=True)
        mean = h.mean(axis=0)
        sem = h.std(axis=0, ddof=1) / math.sqrt(len(h)) if len(h) > 1 else np.zeros(len(centres))
        pos = mean > 0
        shown = np.where(pos, mean, np.nan)
        ax.stairs(shown, edges, color=COLORS[lab], lw=1.4, baseline=None,
                  label=f"{lab} (N = {len(arr)} maps)")
        lo = np.where(pos, np.maximum(mean - sem, mean * 0.1), np.nan)
        ax.stairs(mean + sem, edges, baseline=lo, fill=True, color=COLORS[lab], alpha=0.25, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel(r"pixel convergence $\kappa$")
    ax.set_ylabel(r"probability density $p(\kappa)$")
    ax.legend(title=f"{test}: p = {_fmt_p(pvalue)}", fontsize=8, title_fontsize=8)
    ax.set_title("Pixel intensities (mean per-map histogram ± its standard error)", fontsize=10)
    numbers = {"n_generated": int(len(gen)), "n_validation": int(len(val)), "pvalue": pvalue,
               "test": test, "ks_distance": ks_d, "bins": int(len(edges) - 1), "kappa_range": [float(edges[0]), float(edges[-1])]}
    caption = (f"Figure 2. Pixel-intensity distributions of N = {len(gen)} generated and N = {len(val)} "
               f"validation maps ({len(edges) - 1} bins from {edges[0]:.3g} to {edges[-1]:.3g} in kappa; "
               f"log y). Lines: mean of the per-map histograms (densities); bands: +/- the standard error "
               f"of that mean across maps. {test}: p = {_fmt_p(pvalue)}"
               + (f" (largest difference of the pooled pixel CDFs D = {ks_d:.3g}; its null distribution "
                  f"from permuting whole maps between the sets, because pixels of one map are "
                  f"correlated and a KS test treating them as independent would be invalid)"
                  if ks_d is not None else "") + ".")
    return _attach(fig, caption, numbers)


def _nonempty(P_sets: Sequence[np.ndarray], modes: np.ndarray | None) -> np.ndarray:
    keep = np.ones(P_sets[0].shape[1], dtype=bool)
    if modes is not None:
        keep &= np.asarray(modes) > 0
    for P in P_sets:
        keep &= np.any(P != 0, axis=0)
    return keep


def figure_3a(ell, P_generated, P_validation, *, angle_deg: float | None = None,
              modes: np.ndarray | None = None) -> Figure:
    """Fig. 3(a): power-spectrum bands, mean +/- std of ell(ell+1)P/2pi, generated vs validation.

    ``modes``: Fourier modes per bin (:func:`paper_repro.statistics.count_modes`); empty bins are
    left out. Lower panel: ratio of the means with the validation mean's standard error.
    """
    ell = np.asarray(ell, dtype=np.float64)
    Pg = _as_stat(P_generated, "P_generated", ell.size)
    Pv = _as_stat(P_validation, "P_validation", ell.size)
    keep = _nonempty([Pg, Pv], modes)
    x, f = ell[keep], _ell_factor(ell[keep])
    fig = Figure(figsize=(6.6, 5.6), layout="constrained")
    ax, rax = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    mv, sv = _band(ax, x, Pv[:, keep] * f, COLORS["validation"], f"validation (N = {len(Pv)})",
                   positive=True)
    mg, sg = _band(ax, x, Pg[:, keep] * f, COLORS["generated"], f"generated (N = {len(Pg)})",
                   positive=True)
    _log_axis(ax, "y")
    ax.set_xscale("log")
    ax.set_ylabel(r"$\ell(\ell+1)P(\ell)/2\pi$")
    ax.legend(fontsize=8, title="mean ± 1σ", title_fontsize=8)
    side = f", maps {angle_deg:.4g}° on a side" if angle_deg else ""
    ax.set_title(f"Convergence power spectrum ({keep.sum()} non-empty ℓ bins{side})", fontsize=10)
    ratio = mg / mv
    sem = sv / mv / math.sqrt(len(Pv))
    rax.fill_between(x, 1 - sem, 1 + sem, color=COLORS["validation"], alpha=0.3, lw=0,
                     label="validation s.e.m.")
    rax.plot(x, ratio, color=COLORS["generated"], lw=1.2, label="generated / validation")
    rax.axhline(1.0, color="k", lw=0.6)
    finite = ratio[np.isfinite(ratio) & (ratio > 0)]
    if finite.size and (finite.max() > 2.0 or finite.min() < 0.5):
        rax.set_yscale("log")                 # large departures: a factor 2 up looks like 2 down
    rax.set_xlabel(r"multipole $\ell$")
    _log_axis(rax, "x")
    rax.set_ylabel("mean ratio")
    rax.legend(fontsize=7, loc="best")
    numbers = {"n_generated": int(len(Pg)), "n_validation": int(len(Pv)), "angle_deg": angle_deg,
               "n_bins": int(ell.size), "n_nonempty_bins": int(keep.sum()),
               "ell_range": [float(x.min()), float(x.max())] if x.size else None,
               "max_abs_mean_ratio_minus_1": float(np.nanmax(np.abs(ratio - 1))) if x.size else None,
               "median_abs_mean_ratio_minus_1": float(np.nanmedian(np.abs(ratio - 1))) if x.size else None}
    caption = (f"Figure 3(a). Power spectrum l(l+1)P(l)/2pi, mean +/- one standard deviation over "
               f"N = {len(Pg)} generated and N = {len(Pv)} validation maps{side}, in "
               f"{keep.sum()} of {ell.size} ell bins (bins with no Fourier mode left out). Lower panel: "
               f"ratio of the means (median |ratio - 1| = "
               f"{_pct(numbers['median_abs_mean_ratio_minus_1'] or float('nan'))}, max = "
               f"{_pct(numbers['max_abs_mean_ratio_minus_1'] or float('nan'))}) against the "
               f"validation mean's standard error.")
    return _attach(fig, caption, numbers)


def select_modes(ell, targets=DEFAULT_MODES, *, modes: np.ndarray | None = None) -> list[int]:
    """Indices of the non-empty ell bins nearest each target multipole (duplicates dropped).

    Targets outside the binned range are clipped to the nearest non-empty bin, so the selection
    exists at any map angle; with the paper's binning at 0.866 deg, 3300/23300/43300 are bin
    centres.
    """
    ell = np.asarray(ell, dtype=np.float64)
    ok = np.ones(ell.size, bool) if modes is None else np.asarray(modes) > 0
    cand = np.flatnonzero(ok)
    if cand.size == 0:
        return []
    out: list[int] = []
    for t in targets:
        i = int(cand[np.argmin(np.abs(ell[cand] - float(t)))])
        if i not in out:
            out.append(i)
    return out


def figure_3b(ell, P_generated, P_validation, *, targets=DEFAULT_MODES, modes: np.ndarray | None = None,
              pvalues=None, test: str | None = None, l_edges: np.ndarray | None = None,
              seed: int = 0) -> Figure:
    """Fig. 3(b): distributions of the power at a few equally spaced multipoles, with p-values.

    ``pvalues``: per-bin p-values (K,), or a mapping as :func:`component_tests` returns (KS and AD,
    with the paper-style tallies); default: :func:`component_tests` on the shown bins.
    """
    ell = np.asarray(ell, dtype=np.float64)
    Pg = _as_stat(P_generated, "P_generated", ell.size)
    Pv = _as_stat(P_validation, "P_validation", ell.size)
    keep = _nonempty([Pg, Pv], modes)
    idx = select_modes(ell, targets, modes=keep.astype(int))
    if not idx:
        raise PaperReproError("figure_3b: every ell bin is empty; no per-mode distribution to show")
    if pvalues is None:
        res = component_tests(Pg[:, idx], Pv[:, idx], seed=seed)
        ps = _select_p(res, range(len(idx)), "p")
        test = test or res["test"]
    else:
        ps = _select_p(pvalues, idx, "p")
        if isinstance(pvalues, dict):
            test = test or pvalues.get("test")
    test = test or "two-sample test"
    fig = Figure(figsize=(3.3 * len(idx) + 0.4, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(idx)))
    shown = []
    for j, (ax, i) in enumerate(zip(axes, idx)):
        f = _ell_factor(ell[i])
        with np.errstate(divide="ignore"):
            lv, lg = np.log10(Pv[:, i] * f), np.log10(Pg[:, i] * f)
        _hist_pair(ax, lv[np.isfinite(lv)], lg[np.isfinite(lg)], bins=25)
        rng = ""
        if l_edges is not None:
            rng = f" ({l_edges[i]:.0f}, {l_edges[i + 1]:.0f}]"
        ax.set_title(f"ℓ = {ell[i]:.0f}{rng}\n{_p_text(ps, j)}", fontsize=9)
        ax.set_xlabel(r"$\log_{10}[\ell(\ell+1)P(\ell)/2\pi]$")
        pv = {k: v[j] for k, v in ps.items()}
        shown.append({"ell": float(ell[i]), "bin": int(i), "pvalue": next(iter(pv.values())),
                      "pvalues": pv, "n_modes": None if modes is None else int(np.asarray(modes)[i])})
    axes[0].set_ylabel("probability density (per dex)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Power at {len(idx)} multipoles ({test})", fontsize=9)
    numbers = {"n_generated": int(len(Pg)), "n_validation": int(len(Pv)), "test": test,
               "targets": [float(t) for t in targets], "modes_shown": shown}
    if isinstance(pvalues, dict) and "tallies" in pvalues:
        numbers["paper_style_tallies"] = pvalues["tallies"]
    caption = (f"Figure 3(b). Distributions of l(l+1)P(l)/2pi over N = {len(Pg)} generated and "
               f"N = {len(Pv)} validation maps at the non-empty bins nearest ell = "
               f"{', '.join(f'{t:.0f}' for t in targets)}; {test}: "
               + "; ".join(f"ell = {sh['ell']:.0f}: {_p_text(ps, j)}" for j, sh in enumerate(shown)) + "."
               + _tally_text(pvalues))
    return _attach(fig, caption, numbers)


def figure_4(P_validation, P_generated, P_auxiliary=None, *, ell=None,
             modes: np.ndarray | None = None) -> Figure:
    """Fig. 4: correlation matrices of the power spectra and their differences.

    Top: validation, generated (and auxiliary) correlation matrices on [-1, 1]. Bottom: validation
    - generated and validation - auxiliary (the real-vs-real baseline) on one diverging scale
    symmetric around 0, and the distributions of their off-diagonal entries. Empty bins are left
    out; bins constant within a set show grey.
    """
    from ..stats import power

    Pv = _as_stat(P_validation, "P_validation")
    Pg = _as_stat(P_generated, "P_generated", Pv.shape[1])
    Pa = None if P_auxiliary is None else _as_stat(P_auxiliary, "P_auxiliary", Pv.shape[1])
    sets = [Pv, Pg] + ([Pa] if Pa is not None else [])
    keep = _nonempty(sets, modes)
    names = ["validation", "generated"] + (["auxiliary"] if Pa is not None else [])
    C = {n: power.correlation_matrix(P[:, keep]) for n, P in zip(names, sets)}
    diffs = {"validation - generated": C["validation"] - C["generated"]}
    if Pa is not None:
        diffs["validation - auxiliary"] = C["validation"] - C["auxiliary"]
    fig = Figure(figsize=(13.0, 8.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1)
    bl, br = bottom.subfigures(1, 2, width_ratios=(2, 1))
    x = None if ell is None else np.asarray(ell, dtype=np.float64)[keep]
    corr_cmap = _cmap(CORR_CMAP)

    def ell_axes(ax):
        # matrices are shown bin by bin (non-empty bins only): ticks name the bins' ell
        if x is None or x.size == 0:
            ax.set_xlabel("ell bin")
            return
        ticks = np.unique(np.linspace(0, x.size - 1, 5).round().astype(int))
        labels = [f"{x[t]:.0f}" for t in ticks]
        ax.set_xticks(ticks, labels, fontsize=7)
        ax.set_yticks(ticks, labels, fontsize=7)
        ax.set_xlabel(r"$\ell$")
        ax.set_ylabel(r"$\ell'$")

    taxes = np.atleast_1d(top.subplots(1, len(names)))
    im = None
    for ax, name, P in zip(taxes, names, sets):
        im = ax.imshow(C[name], cmap=corr_cmap, vmin=-1, vmax=1, origin="lower", interpolation="nearest")
        ax.set_title(f"{name} (N = {len(P)})", fontsize=9)
        ell_axes(ax)
    top.colorbar(im, ax=taxes.tolist(), shrink=0.85, label="correlation coefficient")
    vals = {k: power.offdiagonal(d) for k, d in diffs.items()}
    vmax = max((float(np.max(np.abs(v))) for v in vals.values() if v.size), default=0.0) or 1.0
    daxes = np.atleast_1d(bl.subplots(1, len(diffs)))
    for ax, (k, d) in zip(daxes, diffs.items()):
        im = ax.imshow(d, cmap=corr_cmap, norm=mcolors.TwoSlopeNorm(0.0, -vmax, vmax), origin="lower",
                       interpolation="nearest")
        ax.set_title(k, fontsize=9)
        ell_axes(ax)
    bl.colorbar(im, ax=daxes.tolist(), shrink=0.85, label="difference of correlation coefficients")
    hax = br.subplots()
    hist_edges = np.linspace(-vmax, vmax, 41)
    summary = {}
    for k, v in vals.items():
        color = COLORS["generated"] if "generated" in k else COLORS["auxiliary"]
        hax.hist(v, bins=hist_edges, histtype="step", lw=1.4, density=True, color=color, label=k)
        summary[k] = {"max_abs": float(np.max(np.abs(v))) if v.size else None,
                      "p99_abs": float(np.percentile(np.abs(v), 99)) if v.size else None,
                      "rms": float(np.sqrt(np.mean(v * v))) if v.size else None,
                      "mean": float(np.mean(v)) if v.size else None}
    hax.set_yscale("log")
    hax.set_xlabel("off-diagonal difference")
    hax.set_ylabel("density")
    hax.legend(fontsize=7, loc="lower center")
    hax.set_title("distribution of the off-diagonal differences", fontsize=9)
    numbers = {"n_validation": int(len(Pv)), "n_generated": int(len(Pg)),
               "n_auxiliary": None if Pa is None else int(len(Pa)), "n_bins": int(keep.sum()),
               "differences": summary}
    parts = "; ".join(f"{k}: max |diff| = {_pct(s['max_abs'])}, 99th percentile = {_pct(s['p99_abs'])}"
                      for k, s in summary.items() if s["max_abs"] is not None)
    aux = f", N = {len(Pa)} auxiliary" if Pa is not None else " (no auxiliary set)"
    caption = (f"Figure 4. Correlation matrices of the power spectra of N = {len(Pv)} validation, "
               f"N = {len(Pg)} generated{aux} maps over {keep.sum()} non-empty ell bins, and their "
               f"differences on one diverging scale symmetric around 0. {parts}. The validation - "
               f"auxiliary difference is the real-vs-real baseline for the validation - generated one.")
    return _attach(fig, caption, numbers)


MF_NAMES = ("V0", "V1", "V2")
MF_LABELS = (r"$V_0$ (area fraction)", r"$V_1$ (boundary length)", r"$V_2$ (genus)")


def _check_mf(mf, name, k=None):
    if len(mf) != 3:
        raise PaperReproError(f"{name}: expected (V0, V1, V2), found {len(mf)} arrays")
    return [_as_stat(v, f"{name}.{n}", k) for v, n in zip(mf, MF_NAMES)]


def figure_5(nu, mf_generated, mf_validation) -> Figure:
    """Fig. 5: Minkowski functionals V0, V1, V2, mean +/- std bands, generated vs validation.

    ``mf_*``: (V0, V1, V2), each (N, K) at thresholds ``nu`` (units of the map's std). Lower
    panels: difference of the means in units of the validation standard deviation.
    """
    nu = np.asarray(nu, dtype=np.float64)
    g = _check_mf(mf_generated, "mf_generated", nu.size)
    v = _check_mf(mf_validation, "mf_validation", nu.size)
    fig = Figure(figsize=(12, 5.2), layout="constrained")
    axes = fig.subplots(2, 3, sharex=True, height_ratios=(3, 1))
    worst = {}
    for j in range(3):
        ax, rax = axes[0, j], axes[1, j]
        mv, sv = _band(ax, nu, v[j], COLORS["validation"], f"validation (N = {len(v[j])})")
        mg, _ = _band(ax, nu, g[j], COLORS["generated"], f"generated (N = {len(g[j])})")
        ax.set_title(MF_LABELS[j], fontsize=10)
        _sci(ax, "y", 6)
        z = (mg - mv) / np.where(sv > 0, sv, np.nan)
        rax.axhline(0, color="k", lw=0.6)
        rax.plot(nu, z, color=COLORS["generated"], marker=".", lw=1)
        rax.set_xlabel(r"threshold $\nu$ ($\sigma$ of each map)")
        worst[MF_NAMES[j]] = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else None
    axes[0, 0].legend(fontsize=8, title="mean ± 1σ", title_fontsize=8)
    axes[1, 0].set_ylabel(r"$\Delta$mean / $\sigma_{val}$")
    numbers = {"n_generated": int(len(g[0])), "n_validation": int(len(v[0])),
               "n_thresholds": int(nu.size), "nu_range": [float(nu[0]), float(nu[-1])],
               "max_abs_mean_difference_in_sigma": worst}
    caption = (f"Figure 5. Minkowski functionals V0, V1, V2 at {nu.size} thresholds nu from "
               f"{nu[0]:.3g} to {nu[-1]:.3g} (units of each map's standard deviation), mean +/- one "
               f"standard deviation over N = {len(g[0])} generated and N = {len(v[0])} validation "
               f"maps. Lower panels: difference of the means in units of the validation standard "
               f"deviation (max |diff|: "
               + ", ".join(f"{k} {_pct(w) if w is not None else 'n/a'}" for k, w in worst.items()) + ").")
    return _attach(fig, caption, numbers)


def _split_mf_p(pvalues, k: int) -> tuple[list, dict | None]:
    """Per-functional p-values from (p_V0, p_V1, p_V2) or one array/mapping over the 3K stacked values."""
    if isinstance(pvalues, dict):
        parts = [{key: np.asarray(v)[r * k:(r + 1) * k] for key, v in pvalues.items()
                  if key in ("KS", "AD", "KS median", "AD median")} for r in range(3)]
        return parts, pvalues
    arr = np.asarray(pvalues, dtype=object if isinstance(pvalues, (list, tuple)) else np.float64)
    if arr.dtype != object and arr.ndim == 1 and arr.size == 3 * k:
        return [arr[r * k:(r + 1) * k] for r in range(3)], None
    if len(pvalues) != 3:
        raise PaperReproError(f"pvalues: expected (p_V0, p_V1, p_V2) or {3 * k} stacked values, "
                              f"found {len(pvalues)} entries")
    return list(pvalues), None


def figure_6(nu, mf_generated, mf_validation, *, n_thresholds: int = 4, pvalues=None,
             test: str | None = None, seed: int = 0) -> Figure:
    """Fig. 6: distributions of V0, V1, V2 at a few equally spaced thresholds, with p-values.

    ``pvalues``: (p_V0, p_V1, p_V2) each (K,) or a mapping {"KS", "AD"} of such; or one array /
    mapping (as :func:`component_tests` returns) over the 3K values [V0 | V1 | V2]; default:
    :func:`component_tests` on the shown thresholds.
    """
    nu = np.asarray(nu, dtype=np.float64)
    g = _check_mf(mf_generated, "mf_generated", nu.size)
    v = _check_mf(mf_validation, "mf_validation", nu.size)
    k = max(1, min(n_thresholds, nu.size))
    idx = sorted(set(np.linspace(1 if nu.size > 2 else 0, nu.size - (2 if nu.size > 2 else 1), k)
                     .round().astype(int).tolist()))
    whole = None
    if pvalues is None:
        res = component_tests(np.hstack([x[:, idx] for x in g]), np.hstack([x[:, idx] for x in v]),
                              seed=seed)
        parts = [{key: np.asarray(res[key])[r * len(idx):(r + 1) * len(idx)] for key in ("KS", "AD")}
                 for r in range(3)]
        cols = list(range(len(idx)))
        test = test or res["test"]
    else:
        parts, whole = _split_mf_p(pvalues, nu.size)
        cols = idx
        if whole is not None:
            test = test or whole.get("test")
    test = test or "two-sample test"
    fig = Figure(figsize=(3.0 * len(idx) + 0.5, 8.2), layout="constrained")
    axes = fig.subplots(3, len(idx), squeeze=False)
    table = {}
    for r in range(3):
        ps = _select_p(parts[r], cols, "p")
        rows = []
        for c, i in enumerate(idx):
            ax = axes[r, c]
            _hist_pair(ax, v[r][:, i], g[r][:, i], bins=20)
            _sci(ax, "x")
            ax.set_title(f"{MF_NAMES[r]}, ν = {nu[i]:.2g}σ\n{_p_text(ps, c)}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"density\n{MF_LABELS[r]}", fontsize=8)
            pv = {key: val[c] for key, val in ps.items()}
            rows.append({"nu": float(nu[i]), "pvalue": next(iter(pv.values())), "pvalues": pv})
        table[MF_NAMES[r]] = rows
    for c in range(len(idx)):
        axes[-1, c].set_xlabel("value of the functional")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Minkowski functionals at {len(idx)} thresholds ({test})", fontsize=9)
    numbers = {"n_generated": int(len(g[0])), "n_validation": int(len(v[0])), "test": test,
               "thresholds_shown": [float(nu[i]) for i in idx], "pvalues": table}
    if whole is not None and "tallies" in whole:
        numbers["paper_style_tallies"] = whole["tallies"]
    caption = (f"Figure 6. Distributions of V0, V1, V2 over N = {len(g[0])} generated and "
               f"N = {len(v[0])} validation maps at thresholds nu = "
               f"{', '.join(f'{nu[i]:.2g}' for i in idx)} (units of each map's std); {test}: "
               + "; ".join(f"{n}: " + ", ".join(
                   "(" + ", ".join(f"{key} {_fmt_p(val)}" for key, val in x["pvalues"].items()) + ")"
                   for x in rows) for n, rows in table.items()) + "."
               + _tally_text(whole))
    return _attach(fig, caption, numbers)


def figure_7(generated, nearest_pixel, nearest_power, *, distance_pixel=None, distance_power=None,
             index_pixel=None, index_power=None, angle_deg: float | None = None,
             n_training: int | None = None) -> Figure:
    """Fig. 7: generated maps (left) with their nearest training maps in pixel L2 and in power-spectrum space.

    All arrays (R, H, W): row r shows generated map r and its two nearest training maps; the
    distances (and training indices) are printed above each neighbour.
    """
    gen = _as_maps(generated, "generated")
    npx = _as_maps(nearest_pixel, "nearest_pixel")
    nps = _as_maps(nearest_power, "nearest_power")
    if not (len(gen) == len(npx) == len(nps)):
        raise PaperReproError(f"figure_7: expected as many neighbours as generated maps, found "
                              f"{len(gen)}, {len(npx)}, {len(nps)}")
    norm = map_norm([np.asarray(gen), np.asarray(npx), np.asarray(nps)])
    rows = []
    for r in range(len(gen)):
        t = [f"generated {r}",
             "NN pixel L2" + ("" if distance_pixel is None else f": d = {distance_pixel[r]:.3g}")
             + ("" if index_pixel is None else f"\ntraining #{index_pixel[r]}"),
             "NN power spectrum" + ("" if distance_power is None else f": d = {distance_power[r]:.3g}")
             + ("" if index_power is None else f"\ntraining #{index_power[r]}")]
        rows.append(("", [gen[r], npx[r], nps[r]], t))
    side = f" (each {gen.shape[1]}² px, {angle_deg:.4g}° on a side)" if angle_deg else ""
    fig = _map_grid(rows, norm, angle_deg, panel=2.3,
                    title=f"Generated maps and their nearest training maps{side}")
    numbers = {"n_examples": int(len(gen)), "n_training": n_training, "angle_deg": angle_deg,
               "distance_pixel": None if distance_pixel is None else [float(d) for d in distance_pixel],
               "distance_power": None if distance_power is None else [float(d) for d in distance_power],
               "index_pixel": None if index_pixel is None else [int(i) for i in index_pixel],
               "index_power": None if index_power is None else [int(i) for i in index_power]}
    among = f" among N = {n_training} training maps" if n_training else ""
    caption = (f"Figure 7. {len(gen)} generated maps (left) and their nearest neighbours{among}: by "
               f"Euclidean (L2) distance in pixel space (middle) and in power-spectrum space (right); "
               f"one colour scale (arcsinh stretch).")
    if distance_pixel is not None:
        caption += f" Pixel L2 distances: {', '.join(f'{d:.3g}' for d in distance_pixel)}."
    if distance_power is not None:
        caption += f" Power-spectrum distances: {', '.join(f'{d:.3g}' for d in distance_power)}."
    return _attach(fig, caption, numbers)


def figure_8(strips, t=None, *, angle_deg: float | None = None, stats: dict | None = None) -> Figure:
    """Fig. 8: generated maps along spherical linear interpolations (slerp) between latent vectors.

    ``strips``: (R, K, H, W), R paths of K maps each; ``t``: the K interpolation fractions.
    ``stats``: optional smoothness numbers of the paths (stored in the caption numbers).
    """
    s = np.asarray(strips)
    if s.ndim == 5 and s.shape[-1] == 1:
        s = s[..., 0]
    if s.ndim != 4 or s.shape[0] < 1 or s.shape[1] < 2 or s.dtype.kind != "f":
        raise PaperReproError(f"strips: expected float maps (R paths, K >= 2 steps, H, W), found "
                              f"{s.dtype} {s.shape}")
    r, k = s.shape[:2]
    t = np.linspace(0.0, 1.0, k) if t is None else np.asarray(t, dtype=np.float64)
    norm = map_norm([s])
    rows = [(f"path {i + 1}", list(s[i]), [f"t = {x:.2f}" for x in t] if i == 0 else None)
            for i in range(r)]
    side = f" (each {s.shape[2]}² px, {angle_deg:.4g}° on a side)" if angle_deg else ""
    fig = _map_grid(rows, norm, angle_deg, panel=1.6,
                    title=f"Generator along spherical linear interpolations in latent space{side}")
    numbers = {"n_paths": int(r), "n_steps": int(k), "t": [float(x) for x in t], "angle_deg": angle_deg}
    if stats:
        numbers["path_statistics"] = stats
    caption = (f"Figure 8. {r} slerp paths between pairs of latent vectors z ~ N(0, I), {k} generated "
               f"maps each at t = {', '.join(f'{x:.2f}' for x in t)} (t = 0 and 1: the generator's maps "
               f"at the endpoints); one colour scale (arcsinh stretch).")
    return _attach(fig, caption, numbers)


# ===================================================================================== pipeline
def _dataset_preset_for(preset) -> str:
    """The dataset preset whose crops match a model preset's map size and angle (for defaults)."""
    from ..config import DATASET_PRESETS

    # "reference" first: its seeds were never used in training
    for name, cfg in sorted(DATASET_PRESETS.items(), key=lambda kv: kv[0] != "reference"):
        if cfg.crop_size == preset.model.image_size and math.isclose(
                cfg.crop_angle_deg, preset.angle_deg, rel_tol=1e-3):
            return name
    raise PaperReproError(
        f"no dataset preset makes {preset.model.image_size}^2 maps of {preset.angle_deg:.4g} deg "
        f"(the run's preset {preset.name!r}); simulate a dataset and pass --data")


def _check_run(run: Path, checkpoint, *, default: bool):
    """The run's info and generator file, checked without loading TensorFlow."""
    from ..gan import runs

    if default and not (run / "config.json").exists():
        raise PaperReproError(
            f"{run}: no reference model (config.json and best/generator.keras or generator.keras); "
            f"train one with 'paper-repro train' and pass --run RUN_DIR")
    info = runs.read_run_info(run)
    path = runs.generator_path(run, checkpoint)
    return info, path


def _check_data(data: Path, preset, *, default: bool, progress: bool):
    from ..maps import datasets as _data

    if default and not (data / _data.MANIFEST).exists():
        name = _dataset_preset_for(preset)
        if progress:
            print(f"make-figures: simulating the {name!r} dataset into {data} (once)", file=sys.stderr)
        _data.build_dataset(data, name, progress=progress)
    ds = _data.load_dataset(data)
    if "validation" not in ds.splits:
        raise PaperReproError(f"{data}: the dataset has no 'validation' split (has {', '.join(ds.splits)})")
    size = int(ds.manifest["crop_size"])
    if size != preset.model.image_size:
        raise PaperReproError(f"{data}: holds {size}^2 maps, the run makes "
                              f"{preset.model.image_size}^2 maps (preset {preset.name!r})")
    if not math.isclose(ds.angle_deg, preset.angle_deg, rel_tol=1e-3):
        raise PaperReproError(f"{data}: maps are {ds.angle_deg:.5g} deg on a side, the run's maps are "
                              f"{preset.angle_deg:.5g} deg (preset {preset.name!r})")
    return ds


def _training_maps(info, ds, size: int):
    """The run's own training maps (config.json ``data``) when readable, else the dataset's train split."""
    from ..maps import io as _data

    if info.data and Path(info.data).exists():
        try:
            return _data.open_maps(info.data, size=size, check_finite=False), str(info.data)
        except PaperReproError:
            pass
    if "train" in ds.splits:
        return ds["train"], str(ds.path / ds.manifest["splits"]["train"]["file"])
    raise PaperReproError(f"no training maps for Figure 7: the run's data {info.data!r} is not readable "
                          f"and {ds.path} has no 'train' split")


def _save(fig: Figure, stem: Path, dpi: int) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf, each to a temporary name first, then renamed."""
    out = []
    for fmt in ("png", "pdf"):
        final = stem.with_suffix(f".{fmt}")
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
        os.close(fd)
        try:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=None if fmt == "png" else {"CreationDate": None})
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        out.append(final)
    return out


def make_figures(run: str | os.PathLike | None = None, data: str | os.PathLike | None = None,
                 out: str | os.PathLike = DEFAULT_OUT, *, n: int | None = None, seed: int = 0,
                 checkpoint: str | int | None = None, l_edges=None, thresholds=None,
                 n_examples: int = 4, n_paths: int = 3, n_steps: int = 8, dpi: int = 150,
                 progress: bool = False) -> dict[str, list[Path]]:
    """Regenerate Figures 1-8 for a run against a dataset; returns {figure id: written files}.

    ``run``, ``data``: default to the shipped reference model and ``data/reference`` (simulated on
    first use with the dataset preset matching the model). ``n`` generated maps (seed ``seed``;
    default min(#validation, 1000)) are compared with up to ``n`` validation and auxiliary maps.
    ``l_edges``, ``thresholds``: power-spectrum bins and Minkowski thresholds (default: the
    paper's). Every figure goes to ``out/figN.png``, ``.pdf`` and ``.txt`` (caption with the numbers
    behind it), plus ``out/captions.json``; files are written under temporary names and renamed only
    after every figure was made, so a failure leaves no partial output.
    """
    from ..stats.neighbours import nearest_neighbors
    from .interpolation import slerp_path
    from ..gan import latents, runs
    from ..stats import morphology, power

    for name, value in (("n", n), ("n_examples", n_examples), ("n_paths", n_paths)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise PaperReproError(f"{name}: expected a positive integer, got {value!r}")
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 2:
        raise PaperReproError(f"n_steps: expected an integer >= 2, got {n_steps!r}")
    run_default, data_default = run is None, data is None
    run = default_run() if run is None else Path(run)
    data = DEFAULT_DATA if data is None else Path(data)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PaperReproError(f"{out}: exists and is not a directory")
    info, gen_path = _check_run(run, checkpoint, default=run_default)
    preset = info.preset
    ds = _check_data(data, preset, default=data_default, progress=progress)
    angle, size = ds.angle_deg, preset.model.image_size
    train_maps, train_src = _training_maps(info, ds, size)

    def say(msg: str) -> None:
        if progress:
            print(f"make-figures: {msg}", file=sys.stderr)

    val_all = ds["validation"]
    n = min(len(val_all), DEFAULT_N) if n is None else int(n)
    if n < 2 or len(val_all) < 2:
        raise PaperReproError(f"need at least 2 generated and 2 validation maps for the bands and "
                              f"correlation matrices, got --n {n} and {len(val_all)} validation maps")
    val = np.asarray(val_all[:n], dtype=np.float32)
    aux = np.asarray(ds["auxiliary"][:n], dtype=np.float32) if "auxiliary" in ds.splits else None
    say(f"generating {n} maps from {gen_path} (seed {seed})")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    generator, _ = runs.load_generator(run, checkpoint)
    scale = preset.training.data_scale
    gen = np.concatenate(list(latents.generate(generator, n, seed, data_scale=scale)))

    say("statistics")
    ell, P_gen = power.power_spectrum(gen, angle, l_edges)
    _, P_val = power.power_spectrum(val, angle, l_edges)
    P_aux = power.power_spectrum(aux, angle, l_edges)[1] if aux is not None else None
    edges = power.DEFAULT_L_EDGES if l_edges is None else np.asarray(l_edges, dtype=np.float64)
    modes = power.count_modes(size, angle, edges)
    nu, *mf_gen = morphology.minkowski_functionals(gen, thresholds)
    _, *mf_val = morphology.minkowski_functionals(val, thresholds)
    say("bootstrap KS/AD tests")
    ps_tests = component_tests(P_gen, P_val, seed=seed)          # constant (empty) bins: NaN
    mf_tests = component_tests(np.hstack(mf_gen), np.hstack(mf_val), seed=seed)

    common = {"run": str(run), "generator": str(gen_path), "checkpoint": checkpoint or "default",
              "preset": preset.name, "data": str(ds.path), "training_maps": train_src,
              "n_generated": int(len(gen)), "n_validation": int(len(val)),
              "n_auxiliary": None if aux is None else int(len(aux)), "seed": int(seed),
              "angle_deg": angle, "map_size": int(size)}
    k = min(n_examples, len(gen))
    builders: list[tuple[str, Callable[[], Figure]]] = [
        ("1", lambda: figure_1(gen, val, angle_deg=angle)),
        ("2", lambda: figure_2(gen, val, seed=seed)),
        ("3a", lambda: figure_3a(ell, P_gen, P_val, angle_deg=angle, modes=modes)),
        ("3b", lambda: figure_3b(ell, P_gen, P_val, modes=modes, pvalues=ps_tests, l_edges=edges)),
        ("4", lambda: figure_4(P_val, P_gen, P_aux, ell=ell, modes=modes)),
        ("5", lambda: figure_5(nu, mf_gen, mf_val)),
        ("6", lambda: figure_6(nu, mf_gen, mf_val, pvalues=mf_tests)),
    ]

    def fig7() -> Figure:
        say(f"nearest training maps of {k} generated maps among {len(train_maps)}")
        q, base = gen[:k], val[:k]
        nn_px = nearest_neighbors(q, train_maps, 1, space="pixel")
        nn_ps = nearest_neighbors(q, train_maps, 1, space="power", angle_deg=angle,
                                          l_edges=l_edges)
        b_px = nearest_neighbors(base, train_maps, 1, space="pixel")
        b_ps = nearest_neighbors(base, train_maps, 1, space="power", angle_deg=angle,
                                         l_edges=l_edges)
        ipx, ips = nn_px.indices[:, 0], nn_ps.indices[:, 0]
        fig = figure_7(q, np.asarray(train_maps[np.sort(ipx)])[np.argsort(np.argsort(ipx))],
                       np.asarray(train_maps[np.sort(ips)])[np.argsort(np.argsort(ips))],
                       distance_pixel=nn_px.distances[:, 0], distance_power=nn_ps.distances[:, 0],
                       index_pixel=ipx, index_power=ips, angle_deg=angle, n_training=len(train_maps))
        bpx, bps = b_px.distances[:, 0], b_ps.distances[:, 0]
        fig.numbers["baseline_validation_distance_pixel"] = [float(d) for d in bpx]
        fig.numbers["baseline_validation_distance_power"] = [float(d) for d in bps]
        fig.numbers["power_space"] = "L2 distance between ln P(ell) over the non-empty ell bins"
        fig.caption += (f" For comparison, the first {k} validation maps lie at pixel distances "
                        f"{', '.join(f'{d:.3g}' for d in bpx)} and power-spectrum distances "
                        f"{', '.join(f'{d:.3g}' for d in bps)} from their nearest training maps. "
                        f"Power-spectrum distance: L2 between ln P(ell) over the non-empty ell bins.")
        return fig

    def fig8() -> Figure:
        say(f"{n_paths} slerp paths of {n_steps} maps")
        rng = np.random.default_rng([seed, 8])
        latent = int(generator.inputs[0].shape[-1])
        strips, smooth, max_steps = [], [], []
        for _ in range(n_paths):
            z0, z1 = rng.standard_normal((2, latent))
            res = slerp_path(generator, z0, z1, n_steps, data_scale=scale, angle_deg=angle,
                                     l_edges=l_edges, seed=seed)
            strips.append(res.maps)
            smooth.append(bool(res.smooth))
            max_steps.append({kk: float(v) for kk, v in res.max_step.items()})
        fig = figure_8(np.stack(strips), np.linspace(0, 1, n_steps), angle_deg=angle,
                       stats={"smooth": smooth, "max_step": max_steps})
        worst = max(max(m.values()) for m in max_steps)
        fig.caption += (f" Smoothness: the largest step of any tracked statistic (mean, variance, power "
                        f"at three ell, pixel L2) between neighbouring maps is {worst:.3g} of its spread "
                        f"over random generated maps; paths smooth (< {res.threshold:g}): "
                        f"{sum(smooth)} of {len(smooth)}.")
        return fig

    builders += [("7", fig7), ("8", fig8)]

    out_created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".make-figures-", dir=out))
    written: dict[str, list[Path]] = {}
    try:
        captions = {"inputs": common}
        for fid, build in builders:
            say(f"figure {fid}")
            fig = build()
            _save(fig, stage / f"fig{fid}", dpi)
            numbers = dict(fig.numbers)
            captions[f"fig{fid}"] = {"caption": fig.caption, "numbers": numbers}
            (stage / f"fig{fid}.txt").write_text(
                fig.caption + "\n\n" + json.dumps({**common, **numbers}, indent=2, default=_json) + "\n")
            del fig
        (stage / "captions.json").write_text(json.dumps(captions, indent=2, default=_json) + "\n")
        for fid, _ in builders:
            files = []
            for ext in ("png", "pdf", "txt"):
                os.replace(stage / f"fig{fid}.{ext}", out / f"fig{fid}.{ext}")
                files.append(out / f"fig{fid}.{ext}")
            written[fid] = files
        os.replace(stage / "captions.json", out / "captions.json")
        written["captions"] = [out / "captions.json"]
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if out_created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return written


def _json(o):
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


# ========================================================================================= CLI
def build_parser() -> argparse.ArgumentParser:
    from ..cli import _positive_int, _seed

    p = argparse.ArgumentParser(
        prog="make-figures",
        description="Regenerate Figures 1-8 of Mustafa et al. (2019) for a run against a dataset "
                    "(PNG, PDF and a caption file with the numbers behind each figure).")
    p.add_argument("--run", help=f"run directory (default: the shipped reference model, {default_run()})")
    p.add_argument("--data", help=f"dataset directory made by 'paper-repro simulate' (default: "
                                  f"{DEFAULT_DATA}, simulated on first use)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"output directory (default: {DEFAULT_OUT})")
    p.add_argument("--n", type=_positive_int, default=None,
                   help=f"generated maps, and at most as many validation/auxiliary maps "
                        f"(default: min(validation maps, {DEFAULT_N}))")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the generated maps and slerp paths (default 0)")
    p.add_argument("--checkpoint", default=None,
                   help="epoch number, step-N (a kept candidate), 'last', 'best' or 'averaged' (default: best if present, else last)")
    p.add_argument("--examples", type=_positive_int, default=4, help="rows of Figure 7 (default 4)")
    p.add_argument("--paths", type=_positive_int, default=3, help="slerp paths in Figure 8 (default 3)")
    p.add_argument("--steps", type=int, default=8, help="maps per slerp path (default 8)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    return p



def main(argv: Sequence[str] | None = None) -> int:
    """``make-figures``: parse arguments, make the figures; user errors: one line on stderr, exit 2."""
    args = build_parser().parse_args(argv)
    try:
        written = make_figures(args.run, args.data, args.out, n=args.n, seed=args.seed,
                               checkpoint=args.checkpoint, n_examples=args.examples,
                               n_paths=args.paths, n_steps=args.steps, progress=not args.quiet)
    except PaperReproError as exc:
        print("make-figures: error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("make-figures: interrupted", file=sys.stderr)
        return 130
    n_files = sum(len(v) for v in written.values())
    print(f"wrote {n_files} files to {args.out}: "
          + ", ".join(f"fig{k}" for k in written if k != "captions") + " (png, pdf, txt) and captions.json")
    return 0
