"""Figures of the emulator across cosmology (``paper-repro emulator-science``): maps from one latent along
sigma_8, the ratio of emulated to simulated P(ell) at every node, and posterior contours of both models.

Each function returns a :class:`matplotlib.figure.Figure` with ``fig.caption`` and ``fig.numbers``
(:func:`paper_repro.evaluation.plots.attach`).
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..errors import PaperReproError
from .plots import attach, map_grid, map_norm

#: line colours of the two models in the posterior figure
MODEL_COLORS = {"simulator": "#1f77b4", "emulator": "#d62728"}


def sigma8_row(maps, sigma_8, omega_m: float, angle_deg: float, source: str) -> Figure:
    """One row of maps from one seed at increasing sigma_8 (Omega_m fixed), on one colour scale."""
    maps = [np.asarray(m) for m in maps]
    if len(maps) != len(sigma_8) or not maps:
        raise PaperReproError(f"sigma_8 row: {len(maps)} maps for {len(sigma_8)} values of sigma_8")
    fig = map_grid([(source, maps, [f"sigma_8 = {s:.3g}" for s in sigma_8])], map_norm(maps), angle_deg,
                   title=f"One seed at Omega_m = {omega_m:g}, sigma_8 increasing")
    rms = [float(m.std()) for m in maps]
    return attach(fig, f"Maps of the {source} from one seed (the same latents or white noise) at Omega_m = "
                       f"{omega_m:g} and sigma_8 = {', '.join(f'{s:.3g}' for s in sigma_8)}: only the parameters "
                       f"change. Pixel rms {', '.join(f'{r:.3g}' for r in rms)}.",
                  {"sigma_8": list(map(float, sigma_8)), "Omega_m": float(omega_m), "pixel_rms": rms})


def power_ratio(ell, nodes: list[dict]) -> Figure:
    """Emulated / simulated mean P(ell) in bands per node: one panel per Omega_m of the training grid
    and one for the held-out nodes; the simulator's standard error as a band around 1.

    ``nodes``: dicts with name, role, Omega_m, sigma_8, ratio (B,), ratio_se (B,)."""
    import matplotlib
    import matplotlib.ticker

    ell = np.asarray(ell, dtype=np.float64)
    om_values = sorted({n["Omega_m"] for n in nodes if n["role"] == "train"})
    groups = [(f"Omega_m = {om:g}", [n for n in nodes if n["role"] == "train" and n["Omega_m"] == om])
              for om in om_values]
    held = [n for n in nodes if n["role"] != "train"]
    if held:
        groups.append(("held-out nodes", held))
    if not groups:
        raise PaperReproError("power ratio figure: no nodes")
    ncol = min(4, len(groups))
    nrow = -(-len(groups) // ncol)
    fig = Figure(figsize=(3.2 * ncol, 2.6 * nrow + 0.4), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False, sharex=True, sharey=True)
    s8_all = [n["sigma_8"] for n in nodes]
    norm = matplotlib.colors.Normalize(min(s8_all), max(s8_all))
    cmap = matplotlib.colormaps["viridis"]
    worst = 0.0
    for ax, (title, members) in zip(axes.ravel(), groups):
        for n in members:
            r, se = np.asarray(n["ratio"]), np.asarray(n["ratio_se"])
            colour = cmap(norm(n["sigma_8"]))
            ax.fill_between(ell, 1 - se, 1 + se, color=colour, alpha=0.12, lw=0)
            label = f"{n['sigma_8']:.3g}" if n["role"] == "train" else f"({n['Omega_m']:g}, {n['sigma_8']:g})"
            ax.plot(ell, r, color=colour, lw=1.2, marker="o", ms=2.5, label=label)
            worst = max(worst, float(np.nanmax(np.abs(r - 1))))
        ax.axhline(1.0, color="k", lw=0.7)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())     # decades only: no crowded labels
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=6, title="sigma_8" if title != "held-out nodes" else None, title_fontsize=6)
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(r"$\ell$")
    for ax in axes[:, 0]:
        ax.set_ylabel("P emulated / simulated")
    fig.suptitle("Mean power in bands, emulator over simulator, at every node", fontsize=10)
    return attach(fig, "Ratio of the emulator's mean P(ell) to the simulator's, per band and node; the shaded band "
                       "is the simulator's relative standard error (clustered by parent map). The emulated maps come "
                       "from one seed at every node, so their own sampling error is shared by all nodes (a common "
                       f"offset, not a trend). Largest |ratio - 1|: {worst:.3g}.",
                  {"ell": ell.tolist(), "largest_deviation": worst})


def _level(density: np.ndarray, mass: float) -> float:
    """The density above which ``mass`` of a normalised grid posterior lies."""
    d = np.sort(density.ravel())[::-1]
    c = np.cumsum(d)
    return float(d[min(np.searchsorted(c, mass), d.size - 1)])


def posterior_contours(nodes: list[dict]) -> Figure:
    """68% and 95% contours of each model's posterior per held-out node, the truth marked.

    ``nodes``: dicts with name, truth (Omega_m, sigma_8), posteriors {model: posterior dict of
    :func:`paper_repro.evaluation.inference.posterior`}."""
    if not nodes:
        raise PaperReproError("posterior figure: no held-out nodes")
    ncol = min(4, len(nodes))
    nrow = -(-len(nodes) // ncol)
    fig = Figure(figsize=(3.3 * ncol, 3.1 * nrow + 0.4), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    numbers = {}
    for ax, node in zip(axes.ravel(), nodes):
        for model, post in node["posteriors"].items():
            colour = MODEL_COLORS.get(model, "#555555")
            dens = post["density"]
            levels = sorted({_level(dens, 0.95), _level(dens, 0.68)})
            if len(levels) == 2 and levels[0] < levels[1]:
                ax.contour(post["grid_Omega_m"], post["grid_sigma_8"], dens.T, levels=levels,
                           colors=colour, linewidths=(0.9, 1.5))
            ax.plot(*post["mean"], "+", color=colour, ms=8, label=model)
        t = node["truth"]
        ax.plot(t[0], t[1], "k*", ms=9, label="truth")
        ax.set_title(f"{node['name']} ({t[0]:g}, {t[1]:g})", fontsize=9)
        ax.set_xlabel(r"$\Omega_m$")
        ax.set_ylabel(r"$\sigma_8$")
        ax.legend(fontsize=7)
        numbers[node["name"]] = {m: {"mean": p["mean"].tolist(), "sd": p["sd"].tolist()}
                                 for m, p in node["posteriors"].items()}
    for ax in axes.ravel()[len(nodes):]:
        ax.set_visible(False)
    fig.suptitle("Posterior of (Omega_m, sigma_8) at the held-out nodes: 68% and 95% contours", fontsize=10)
    return attach(fig, "Posteriors from the held-out nodes' validation maps with the simulator's and the emulator's "
                       "mean and covariance as the model (Gaussian likelihood, flat prior); contours enclose 68% and "
                       "95% of the posterior, + its mean, * the truth.", numbers)


__all__ = ["sigma8_row", "power_ratio", "posterior_contours"]
