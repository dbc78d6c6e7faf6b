"""The paper's power-spectrum figures: Fig. 3(a) (bands of l(l+1)P/2pi), Fig. 3(b) (the power at a
few multipoles, with p-values) and Fig. 4 (correlation matrices and their differences); drawing
helpers in :mod:`.plots`."""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from ..errors import PaperReproError
from ..stats import power
from .plots import COLORS, as_stat, attach, band, component_tests, fmt_num, hist_pair, p_text, select_p, tally_text

#: the authors' slides show per-mode histograms at these multipoles (bin centres at 0.866 deg)
DEFAULT_MODES = (3300.0, 23300.0, 43300.0)


#: correlation matrices: diverging, symmetric around 0
CORR_CMAP = "RdBu_r"


def _cmap(name: str, bad: str = "0.8"):
    return matplotlib.colormaps[name].with_extremes(bad=bad)


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


def _ell_factor(ell: np.ndarray) -> np.ndarray:
    return ell * (ell + 1.0) / (2.0 * math.pi)


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

    ``modes``: Fourier modes per bin (:func:`paper_repro.stats.power.count_modes`); empty bins are
    left out. Lower panel: ratio of the means with the validation mean's standard error.
    """
    ell = np.asarray(ell, dtype=np.float64)
    Pg = as_stat(P_generated, "P_generated", ell.size)
    Pv = as_stat(P_validation, "P_validation", ell.size)
    keep = _nonempty([Pg, Pv], modes)
    x, f = ell[keep], _ell_factor(ell[keep])
    fig = Figure(figsize=(6.6, 5.6), layout="constrained")
    ax, rax = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    mv, sv = band(ax, x, Pv[:, keep] * f, COLORS["validation"], f"validation (N = {len(Pv)})",
                   positive=True)
    mg, sg = band(ax, x, Pg[:, keep] * f, COLORS["generated"], f"generated (N = {len(Pg)})",
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
               f"{fmt_num(numbers['median_abs_mean_ratio_minus_1'] or float('nan'))}, max = "
               f"{fmt_num(numbers['max_abs_mean_ratio_minus_1'] or float('nan'))}) against the "
               f"validation mean's standard error.")
    return attach(fig, caption, numbers)


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
    Pg = as_stat(P_generated, "P_generated", ell.size)
    Pv = as_stat(P_validation, "P_validation", ell.size)
    keep = _nonempty([Pg, Pv], modes)
    idx = select_modes(ell, targets, modes=keep.astype(int))
    if not idx:
        raise PaperReproError("figure_3b: every ell bin is empty; no per-mode distribution to show")
    if pvalues is None:
        res = component_tests(Pg[:, idx], Pv[:, idx], seed=seed)
        ps = select_p(res, range(len(idx)), "p")
        test = test or res["test"]
    else:
        ps = select_p(pvalues, idx, "p")
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
        hist_pair(ax, lv[np.isfinite(lv)], lg[np.isfinite(lg)], bins=25)
        rng = ""
        if l_edges is not None:
            rng = f" ({l_edges[i]:.0f}, {l_edges[i + 1]:.0f}]"
        ax.set_title(f"ℓ = {ell[i]:.0f}{rng}\n{p_text(ps, j)}", fontsize=9)
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
               + "; ".join(f"ell = {sh['ell']:.0f}: {p_text(ps, j)}" for j, sh in enumerate(shown)) + "."
               + tally_text(pvalues))
    return attach(fig, caption, numbers)


def figure_4(P_validation, P_generated, P_auxiliary=None, *, ell=None,
             modes: np.ndarray | None = None) -> Figure:
    """Fig. 4: correlation matrices of the power spectra and their differences.

    Top: validation, generated (and auxiliary) correlation matrices on [-1, 1]. Bottom: validation
    - generated and validation - auxiliary (the real-vs-real baseline) on one diverging scale
    symmetric around 0, and the distributions of their off-diagonal entries. Empty bins are left
    out; bins constant within a set show grey.
    """
    Pv = as_stat(P_validation, "P_validation")
    Pg = as_stat(P_generated, "P_generated", Pv.shape[1])
    Pa = None if P_auxiliary is None else as_stat(P_auxiliary, "P_auxiliary", Pv.shape[1])
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
    parts = "; ".join(f"{k}: max |diff| = {fmt_num(s['max_abs'])}, 99th percentile = {fmt_num(s['p99_abs'])}"
                      for k, s in summary.items() if s["max_abs"] is not None)
    aux = f", N = {len(Pa)} auxiliary" if Pa is not None else " (no auxiliary set)"
    caption = (f"Figure 4. Correlation matrices of the power spectra of N = {len(Pv)} validation, "
               f"N = {len(Pg)} generated{aux} maps over {keep.sum()} non-empty ell bins, and their "
               f"differences on one diverging scale symmetric around 0. {parts}. The validation - "
               f"auxiliary difference is the real-vs-real baseline for the validation - generated one.")
    return attach(fig, caption, numbers)
