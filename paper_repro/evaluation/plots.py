"""Drawing helpers shared by the paper's figures (:mod:`.figures_maps`, :mod:`.figures_power`,
:mod:`.figures_morphology`): colours, the arcsinh map stretch, map grids, bands, histogram pairs,
checks of the arrays a figure takes and the p-value texts of its caption.

Every figure function returns a :class:`matplotlib.figure.Figure` with the numbers behind it as
``fig.numbers`` (a dict) and ``fig.caption`` (one paragraph): :func:`attach`. Lensing maps have
heavy positive tails (halos): maps are shown with an arcsinh stretch (linear within one pixel
standard deviation of zero, logarithmic beyond) on a perceptual colour map, so both the
Gaussian-like background and the peaks stay visible. Figures are built on ``Figure`` directly (no
pyplot state, no window) with the Agg backend, so they render on machines without a display.
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..config import CertificationConfig  # noqa: E402
from ..errors import PaperReproError  # noqa: E402
from ..stats import twosample  # noqa: E402

#: map colour map: perceptual, dark background so the positive tails (peaks) stand out
MAP_CMAP = "magma"


#: colours of the sets in every comparison figure
COLORS = {"validation": "#1f77b4", "generated": "#d62728", "auxiliary": "#2ca02c"}


def fmt_num(x: float) -> str:
    """A number for a caption: three significant digits."""
    return f"{x:.3g}"


def fmt_p(p: float | None) -> str:
    """A p-value for a caption: three significant digits, scientific below 0.001, n/a if unknown."""
    if p is None or not np.isfinite(p):
        return "n/a"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.1e}"


def attach(fig: Figure, caption: str, numbers: dict) -> Figure:
    """Attach the caption paragraph and the numbers behind a figure to it (``fig.caption``, ``fig.numbers``)."""
    fig.caption = caption
    fig.numbers = numbers
    return fig


def as_maps(maps, name: str) -> np.ndarray:
    """``maps`` as float (N, H, W) with N >= 1 (a trailing channel axis dropped), else a one-line error."""
    arr = np.asarray(maps)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1] != arr.shape[2] or arr.dtype.kind != "f":
        raise PaperReproError(f"{name}: expected float maps (N, H, W), found {arr.dtype} {arr.shape}")
    return arr


def as_stat(x, name: str, k: int | None = None) -> np.ndarray:
    """A statistic as float64 (N >= 2, K) (K = ``k`` when given), else a one-line error."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or (k is not None and arr.shape[1] != k):
        want = f"(N >= 2, {k})" if k is not None else "(N >= 2, K)"
        raise PaperReproError(f"{name}: expected an array of shape {want}, found {arr.shape}")
    return arr


def component_tests(a, b, *, seed: int = 0, n_sub: int | None = None,
                    replicates: int | None = None) -> dict:
    """Per-component bootstrapped two-sample KS and AD p-values of (N, K) statistics (paper Sect. 3.1).

    Uses :func:`paper_repro.twosample.bootstrap_tests` with the certification's settings
    (:class:`~paper_repro.config.CertificationConfig`: R subsamples of n maps per set). Returns
    {"KS": (K,), "AD": (K,)} valid p-values min(1, 2 x median p) (NaN for constant components),
    the paper's bootstrap medians ("KS median", "AD median"), the paper-style tallies over all K
    components ("tallies", descriptive only) and a description of the test ("test").
    """
    cfg = CertificationConfig()
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = min(cfg.bootstrap_maps if n_sub is None else int(n_sub), len(a), len(b))
    r = cfg.bootstrap_replicates if replicates is None else int(replicates)
    res = twosample.bootstrap_tests(a, b, n_sub=n, replicates=r, alpha=cfg.alpha, seed=seed)
    return {"KS": res.ks_valid_p, "AD": res.ad_valid_p,
            "KS median": res.ks_median_p, "AD median": res.ad_median_p,
            "tallies": {"KS": twosample.paper_tallies(res.ks_median_p, cfg.tally_levels, "components"),
                        "AD": twosample.paper_tallies(res.ad_median_p, cfg.tally_levels, "components")},
            "test": f"bootstrap KS/AD ({r} subsamples of {n} maps per set; p = min(1, 2 x median p))",
            "n_sub": n, "replicates": r}


def select_p(pvalues, idx: Sequence[int], name: str) -> dict[str, list[float]]:
    """{test name: p at components ``idx``} from an array (one test called ``name``) or from a
    mapping such as :func:`component_tests` returns (its "KS" and "AD" entries)."""
    if isinstance(pvalues, dict):
        items = [(k, pvalues[k]) for k in ("KS", "AD") if k in pvalues]
        if not items:
            items = [(k, v) for k, v in pvalues.items() if np.ndim(v) == 1]
    else:
        items = [(name, pvalues)]
    return {k: [float(np.asarray(v, dtype=np.float64)[i]) for i in idx] for k, v in items}


def p_text(ps: dict[str, list[float]], j: int) -> str:
    """"KS p = ..., AD p = ..." for the j-th shown component of :func:`select_p`'s result."""
    return ", ".join(f"{k} p = {fmt_p(v[j])}" for k, v in ps.items())


def tally_text(pvalues) -> str:
    """The caption sentence with the paper-style tallies of a :func:`component_tests`-shaped mapping ("" without)."""
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


def _map_panel(ax, m, norm, angle_deg: float | None, *, cmap=MAP_CMAP):
    extent = None if angle_deg is None else (0.0, angle_deg, 0.0, angle_deg)
    im = ax.imshow(np.asarray(m), norm=norm, cmap=cmap, origin="lower", extent=extent,
                   interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def map_grid(rows: list[tuple[str, Sequence[np.ndarray], Sequence[str] | None]], norm, angle_deg,
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


def band(ax, x, stat, color, label, *, positive: bool = False):
    """Mean line and +/- one standard deviation band of a statistic (N, K) over x; returns (mean, sd)."""
    mean = stat.mean(axis=0)
    sd = stat.std(axis=0, ddof=1)
    lo, hi = mean - sd, mean + sd
    if positive:
        floor = np.nanmin(np.where(mean > 0, mean, np.inf)) * 1e-3
        lo = np.maximum(lo, floor)
    ax.fill_between(x, lo, hi, color=color, alpha=0.3, lw=0)
    ax.plot(x, mean, color=color, lw=1.3, label=label)
    return mean, sd


def hist_pair(ax, a, b, *, bins: int = 30, labels=("validation", "generated")):
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
