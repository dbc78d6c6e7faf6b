"""Spherical interpolation in the generator's prior (White 2016) and the maps along it (the paper's Fig. 8).

:func:`slerp` interpolates latent vectors on the great circle; :func:`slerp_path` runs a generator
along the path z0 -> z1 and measures how smoothly its maps and their statistics (mean, variance,
power in a few ell bands) change, against the spread of the same statistics over random maps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..config import NoveltyConfig
from ..errors import PaperReproError
from ..stats.power import DEFAULT_ANGLE_DEG, count_modes, nonempty_bins, power_spectrum
from ..stats.reports import jsonable

#: the default novelty settings (steps, random maps, smoothness threshold)
DEFAULTS = NoveltyConfig()


def slerp(z0, z1, t) -> np.ndarray:
    """Spherical linear interpolation (White 2016) between latent vectors, float32 (len(t), latent_dim).

    p(t) = sin((1-t) W)/sin W z0 + sin(t W)/sin W z1, W the angle between z0 and z1 (lengths are
    interpolated too); t = 0 and t = 1 give z0 and z1 exactly. Nearly parallel vectors fall back to
    linear interpolation; antipodal ones (no unique great circle) raise PaperReproError.
    """
    a = np.asarray(z0, dtype=np.float64)
    b = np.asarray(z1, dtype=np.float64)
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise PaperReproError(f"z0, z1: expected two latent vectors of one length, found shapes {np.shape(z0)} and {np.shape(z1)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all() and np.isfinite(tt).all()):
        raise PaperReproError("z0, z1, t: expected finite values, found NaN or inf")
    if tt.ndim != 1 or tt.size == 0:
        raise PaperReproError(f"t: expected a 1-D array of interpolation parameters, found shape {np.shape(t)}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise PaperReproError("z0, z1: a zero latent vector has no direction to interpolate")
    cos = float(np.clip(a @ b / (na * nb), -1.0, 1.0))
    omega = math.acos(cos)
    if math.sin(omega) < 1e-6:
        if cos < 0:
            raise PaperReproError("z0, z1: antipodal latent vectors, the slerp path is not unique")
        path = (1.0 - tt)[:, None] * a + tt[:, None] * b
    else:
        so = math.sin(omega)
        path = (np.sin((1.0 - tt) * omega) / so)[:, None] * a + (np.sin(tt * omega) / so)[:, None] * b
    path = path.astype(np.float32)
    path[tt == 0.0] = np.asarray(z0, dtype=np.float32)
    path[tt == 1.0] = np.asarray(z1, dtype=np.float32)
    return path


def _run_generator(generator: Callable, z: np.ndarray, batch_size: int, data_scale: float) -> np.ndarray:
    """Maps (n, H, W) float32 in convergence units from a Keras generator (or any callable z -> maps)."""
    try:
        import keras
        is_keras = isinstance(generator, keras.Model)
    except ImportError:                                   # pragma: no cover
        is_keras = False
    out = []
    for s in range(0, len(z), batch_size):
        y = generator(z[s:s + batch_size], training=False) if is_keras else generator(z[s:s + batch_size])
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 4 and y.shape[-1] == 1:
            y = y[..., 0]
        out.append(y / np.float32(data_scale))
    maps = np.concatenate(out)
    if maps.ndim != 3 or not np.isfinite(maps).all():
        raise PaperReproError(f"generator: expected finite maps (n, H, W[, 1]), found shape {maps.shape}")
    return maps


@dataclass
class SlerpResult:
    """Maps along a slerp path and the statistics tracked along it.

    ``stats[name]`` (n_steps,): ``mean``, ``variance`` (convergence units) and ``power_ell=<ell>``
    (C_ell in sr); ``spread[name]``: the standard deviation over random generated maps of the mean,
    ln variance and ln power (logs: these are positive, heavy-tailed statistics);
    ``max_step[name]`` = max |s(t_{i+1}) - s(t_i)| / spread on the same scale (``pixel``: the L2 step
    between consecutive maps over the RMS distance between two random maps). A generator that maps
    nearby latents to unrelated maps has steps ~1.4 or more; ``smooth`` = every max_step <
    ``threshold`` (0.5 suits the default 16 steps, where a uniform path between two typical maps
    moves ~0.1 per step).
    """

    t: np.ndarray
    latents: np.ndarray
    maps: np.ndarray
    ell: np.ndarray
    stats: dict
    spread: dict
    max_step: dict
    threshold: float
    smooth: bool

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary (no maps)."""
        return jsonable({"t": self.t, "ell": self.ell, "stats": self.stats, "spread": self.spread,
                          "max_step": self.max_step, "threshold": self.threshold, "smooth": self.smooth})


#: Fourier modes (half plane) in each band whose power a slerp path tracks: single bins of small
#: maps hold a handful of modes, whose power can pass through ~0 and is no usable smooth statistic
SLERP_BAND_MODES = 64


def _bands(size: int, angle_deg: float, l_edges, track_ell) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(mode-weighted ell, bin indices, their mode counts) of the power bands around each tracked ell."""
    hits = count_modes(size, angle_deg, l_edges)
    keep, centres = nonempty_bins(size, angle_deg, l_edges)
    if track_ell is None:                    # 10%, 50%, 90% of the non-empty ell range
        targets = centres[np.round(np.array([0.1, 0.5, 0.9]) * (keep.size - 1)).astype(int)]
    else:
        targets = np.atleast_1d(np.asarray(track_ell, dtype=np.float64))
        if targets.ndim != 1 or targets.size == 0 or not np.isfinite(targets).all():
            raise PaperReproError(f"track_ell: expected finite multipoles, found {track_ell!r}")
    bands, seen = [], set()
    for ell in targets:
        order = np.argsort(np.abs(centres - ell), kind="stable")
        n = int(np.searchsorted(np.cumsum(hits[keep[order]]), SLERP_BAND_MODES)) + 1
        sel = np.sort(order[:n])
        if tuple(sel) in seen:
            continue
        seen.add(tuple(sel))
        w = hits[keep[sel]].astype(np.float64)
        bands.append((float(np.sum(w * centres[sel]) / w.sum()), keep[sel], w))
    return bands


def _path_stats(maps: np.ndarray, angle_deg: float, l_edges, bands) -> dict[str, np.ndarray]:
    flat = maps.reshape(len(maps), -1).astype(np.float64)
    _, p = power_spectrum(maps, angle_deg, l_edges)
    p = np.atleast_2d(p)
    out = {"mean": flat.mean(axis=1), "variance": flat.var(axis=1)}
    for ell, bins, w in bands:
        out[f"power_ell={ell:.0f}"] = p[:, bins] @ w / w.sum()     # mean power per mode of the band
    return out


def slerp_path(generator, z0, z1, n_steps: int = DEFAULTS.slerp_steps, *, data_scale: float = 1.0,
               angle_deg: float = DEFAULT_ANGLE_DEG, l_edges=None, track_ell: Sequence[float] | None = None,
               n_random: int = DEFAULTS.slerp_random_maps, seed: int = 0, batch_size: int = 64,
               threshold: float = DEFAULTS.slerp_max_step) -> SlerpResult:
    """Generate maps along the slerp path z0 -> z1 (Fig. 8) and measure how smoothly they change.

    ``generator``: a Keras generator (z -> tanh maps (B, H, W, 1)) or a callable; maps are output /
    ``data_scale``. ``track_ell``: multipoles whose power is tracked (default: three, at 10%, 50%
    and 90% of the non-empty ell range), each as the mean power of the nearest ell bins holding
    at least :data:`SLERP_BAND_MODES` Fourier modes; ``n_random`` maps from z ~ N(0, 1)
    (``seed``) set each statistic's spread.
    """
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 2:
        raise PaperReproError(f"n_steps: expected an integer >= 2, found {n_steps!r}")
    if not isinstance(n_random, (int, np.integer)) or n_random < 2:
        raise PaperReproError(f"n_random: expected an integer >= 2, found {n_random!r}")
    t = np.linspace(0.0, 1.0, int(n_steps))
    z = slerp(z0, z1, t)
    maps = _run_generator(generator, z, batch_size, data_scale)
    bands = _bands(maps.shape[1], angle_deg, l_edges, track_ell)
    rng = np.random.default_rng(seed)
    zr = rng.standard_normal((int(n_random), z.shape[1])).astype(np.float32)
    rand = _run_generator(generator, zr, batch_size, data_scale)
    if rand.shape[1:] != maps.shape[1:]:
        raise PaperReproError(f"generator: maps of inconsistent shapes {maps.shape[1:]} and {rand.shape[1:]}")
    stats = _path_stats(maps, angle_deg, l_edges, bands)
    rstats = _path_stats(rand, angle_deg, l_edges, bands)
    tiny = np.finfo(np.float64).tiny

    def scaled(name: str, v: np.ndarray) -> np.ndarray:
        return v if name == "mean" else np.log(np.maximum(v, tiny))

    spread = {k: float(np.std(scaled(k, v), ddof=1)) for k, v in rstats.items()}
    max_step = {k: (float(np.max(np.abs(np.diff(scaled(k, stats[k]))))) / spread[k] if spread[k] > 0 else math.inf)
                for k in stats}
    steps = np.sqrt(np.sum((np.diff(maps.astype(np.float64), axis=0)) ** 2, axis=(1, 2)))
    flat = rand.reshape(len(rand), -1).astype(np.float64)
    rms_pair = math.sqrt(2.0 * float(np.sum(flat.var(axis=0, ddof=1))))   # RMS distance of two random maps
    stats["pixel_step"] = steps
    spread["pixel"] = rms_pair
    max_step["pixel"] = float(steps.max()) / rms_pair if rms_pair > 0 else math.inf
    smooth = all(v < threshold for v in max_step.values())
    return SlerpResult(t=t, latents=z, maps=maps, ell=np.array([b[0] for b in bands]), stats=stats,
                       spread=spread, max_step=max_step, threshold=float(threshold), smooth=bool(smooth))
