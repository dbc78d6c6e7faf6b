"""The paper's map figures: Fig. 1 (validation and generated maps), Fig. 7 (generated maps and their
nearest training maps) and Fig. 8 (maps along slerp paths in latent space); drawing helpers in
:mod:`.plots`."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..errors import PaperReproError
from .plots import MAP_CMAP, as_maps, attach, map_grid, map_norm


def figure_1(generated, validation, *, angle_deg: float | None = None, n_show: int = 8,
             n_cols: int = 4) -> Figure:
    """Fig. 1: validation maps (top rows) and generated maps (bottom rows) on one colour scale."""
    gen = as_maps(generated, "generated")
    val = as_maps(validation, "validation")
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
    fig = map_grid(rows, norm, angle_deg,
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
    return attach(fig, caption, numbers)


def figure_7(generated, nearest_pixel, nearest_power, *, distance_pixel=None, distance_power=None,
             index_pixel=None, index_power=None, angle_deg: float | None = None,
             n_training: int | None = None) -> Figure:
    """Fig. 7: generated maps (left) with their nearest training maps in pixel L2 and in power-spectrum space.

    All arrays (R, H, W): row r shows generated map r and its two nearest training maps; the
    distances (and training indices) are printed above each neighbour.
    """
    gen = as_maps(generated, "generated")
    npx = as_maps(nearest_pixel, "nearest_pixel")
    nps = as_maps(nearest_power, "nearest_power")
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
    fig = map_grid(rows, norm, angle_deg, panel=2.3,
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
    return attach(fig, caption, numbers)


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
    fig = map_grid(rows, norm, angle_deg, panel=1.6,
                    title=f"Generator along spherical linear interpolations in latent space{side}")
    numbers = {"n_paths": int(r), "n_steps": int(k), "t": [float(x) for x in t], "angle_deg": angle_deg}
    if stats:
        numbers["path_statistics"] = stats
    caption = (f"Figure 8. {r} slerp paths between pairs of latent vectors z ~ N(0, I), {k} generated "
               f"maps each at t = {', '.join(f'{x:.2f}' for x in t)} (t = 0 and 1: the generator's maps "
               f"at the endpoints); one colour scale (arcsinh stretch).")
    return attach(fig, caption, numbers)
