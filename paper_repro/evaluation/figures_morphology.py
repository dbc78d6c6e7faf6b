"""The paper's one-point and morphology figures: Fig. 2 (pixel intensities, with a map-permutation
p-value), Fig. 5 (Minkowski functionals V0, V1, V2) and Fig. 6 (their distributions at a few
thresholds, with p-values); drawing helpers in :mod:`.plots`."""
from __future__ import annotations

import math

import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from ..errors import PaperReproError
from ..stats import morphology
from .plots import (
    COLORS,
    as_maps,
    as_stat,
    attach,
    band,
    component_tests,
    fmt_num,
    fmt_p,
    hist_pair,
    p_text,
    select_p,
    tally_text,
)

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
    gen = as_maps(generated, "generated")
    val = as_maps(validation, "validation")
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
    gen = as_maps(generated, "generated")
    val = as_maps(validation, "validation")
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
    ax.legend(title=f"{test}: p = {fmt_p(pvalue)}", fontsize=8, title_fontsize=8)
    ax.set_title("Pixel intensities (mean per-map histogram ± its standard error)", fontsize=10)
    numbers = {"n_generated": int(len(gen)), "n_validation": int(len(val)), "pvalue": pvalue,
               "test": test, "ks_distance": ks_d, "bins": int(len(edges) - 1), "kappa_range": [float(edges[0]), float(edges[-1])]}
    caption = (f"Figure 2. Pixel-intensity distributions of N = {len(gen)} generated and N = {len(val)} "
               f"validation maps ({len(edges) - 1} bins from {edges[0]:.3g} to {edges[-1]:.3g} in kappa; "
               f"log y). Lines: mean of the per-map histograms (densities); bands: +/- the standard error "
               f"of that mean across maps. {test}: p = {fmt_p(pvalue)}"
               + (f" (largest difference of the pooled pixel CDFs D = {ks_d:.3g}; its null distribution "
                  f"from permuting whole maps between the sets, because pixels of one map are "
                  f"correlated and a KS test treating them as independent would be invalid)"
                  if ks_d is not None else "") + ".")
    return attach(fig, caption, numbers)


def _sci(ax, axis: str = "both", nbins: int = 4) -> None:
    """Compact tick labels for small values (offset exponent), at most ``nbins`` ticks."""
    ax.ticklabel_format(axis=axis, style="sci", scilimits=(-2, 3), useMathText=True)
    for a in ((ax.xaxis, ax.yaxis) if axis == "both" else ((ax.xaxis,) if axis == "x" else (ax.yaxis,))):
        a.set_major_locator(matplotlib.ticker.MaxNLocator(nbins))


MF_NAMES = ("V0", "V1", "V2")


MF_LABELS = (r"$V_0$ (area fraction)", r"$V_1$ (boundary length)", r"$V_2$ (genus)")


def _check_mf(mf, name, k=None):
    if len(mf) != 3:
        raise PaperReproError(f"{name}: expected (V0, V1, V2), found {len(mf)} arrays")
    return [as_stat(v, f"{name}.{n}", k) for v, n in zip(mf, MF_NAMES)]


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
        mv, sv = band(ax, nu, v[j], COLORS["validation"], f"validation (N = {len(v[j])})")
        mg, _ = band(ax, nu, g[j], COLORS["generated"], f"generated (N = {len(g[j])})")
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
               + ", ".join(f"{k} {fmt_num(w) if w is not None else 'n/a'}" for k, w in worst.items()) + ").")
    return attach(fig, caption, numbers)


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
        ps = select_p(parts[r], cols, "p")
        rows = []
        for c, i in enumerate(idx):
            ax = axes[r, c]
            hist_pair(ax, v[r][:, i], g[r][:, i], bins=20)
            _sci(ax, "x")
            ax.set_title(f"{MF_NAMES[r]}, ν = {nu[i]:.2g}σ\n{p_text(ps, c)}", fontsize=8)
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
                   "(" + ", ".join(f"{key} {fmt_p(val)}" for key, val in x["pvalues"].items()) + ")"
                   for x in rows) for n, rows in table.items()) + "."
               + tally_text(whole))
    return attach(fig, caption, numbers)
