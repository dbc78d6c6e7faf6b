"""All of the paper's summary statistics of a set of maps at once, labelled, for the criteria."""
from __future__ import annotations

import numpy as np

from .morphology import minkowski_functionals, pixel_histogram
from .power import DEFAULT_ANGLE_DEG, power_spectrum


def paper_statistics(maps, angle_deg: float = DEFAULT_ANGLE_DEG, *, pixel_edges=None,
                     l_edges=None, thresholds=None, workers: int | None = None
                     ) -> dict[str, tuple[list, np.ndarray]]:
    """The paper's statistics of a set of maps as {name: (component labels, (N, K) array)}.

    ``power_spectrum``: P at the 248 modes (labels: ell bin centres); ``minkowski_functionals``:
    V0, V1, V2 side by side (57 components; labels "V0@nu"); ``pixel_histogram`` (only with
    ``pixel_edges``, which two compared sets must share): per-map pixel-value densities. Each
    array is what :func:`paper_repro.evaluation.criteria.calibrate` takes.
    """
    ell, p = power_spectrum(maps, angle_deg, l_edges, workers=workers)
    nu, v0, v1, v2 = minkowski_functionals(maps, thresholds, workers=workers)
    if p.ndim == 1:
        p, v0, v1, v2 = p[None], v0[None], v1[None], v2[None]
    out = {
        "power_spectrum": ([float(v) for v in ell], p),
        "minkowski_functionals": ([f"{name}@{v:.4g}" for name in ("V0", "V1", "V2") for v in nu],
                                  np.concatenate([v0, v1, v2], axis=1)),
    }
    if pixel_edges is not None:
        centres, h = pixel_histogram(maps, pixel_edges, density=True, workers=workers)
        out["pixel_histogram"] = ([float(v) for v in centres], h if h.ndim == 2 else h[None])
    return out
