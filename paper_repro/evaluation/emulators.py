"""Map sources at any (Omega_m, sigma_8), and the summary statistics the science checks measure.

An *emulator* here is anything with ``maps(params, n, seed) -> (maps (n, c, c) float32, parent ids
(n,) or None)`` and ``angle_deg`` (the side of a map in degrees). One ``seed`` gives the same
random numbers at every parameter point (common random numbers), so differences between points
are the parameters' effect, not noise:

- :class:`GeneratorEmulator`: a conditional run's generator; ``seed`` fixes the latents z, so the
  maps at two parameter points come from the same z. Each map is an independent draw (no parents).
- :class:`SimulatorEmulator`: the simulator standing in for an emulator (to check the machinery: it
  must give response ratios of 1 and unbiased recovery). ``seed`` fixes the parent fields' white
  noise and the crop corners, so the maps at two points are the same crops of the same fields at
  two cosmologies; crops of one parent share a parent id.

:func:`science_statistics` turns maps into the statistics of :mod:`.responses` and
:mod:`.inference`: mean power in logarithmic ell bands (LensTools' P, the bands holding Fourier
modes), per-map pixel variance and skewness, and peak counts of the maps smoothed by 1 arcmin in
bins of kappa / sigma with one sigma for every set (:mod:`paper_repro.stats.peaks`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Protocol

import numpy as np

from ..config import DatasetConfig
from ..errors import PaperReproError

#: the statistics of the science checks, in the order they are reported
STATISTICS = ("power", "pixel", "peaks")


class Emulator(Protocol):
    """What the science checks need of a map source (module docstring)."""

    name: str
    angle_deg: float

    def maps(self, params, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]: ...


def _params(params) -> tuple[float, float]:
    try:
        om, s8 = (float(v) for v in params)
    except (TypeError, ValueError):
        raise PaperReproError(f"expected parameters (Omega_m, sigma_8), got {params!r}") from None
    if not (math.isfinite(om) and math.isfinite(s8) and om > 0 and s8 > 0):
        raise PaperReproError(f"parameters (Omega_m, sigma_8) must be positive and finite, got ({om}, {s8})")
    return om, s8


def _count(n) -> int:
    if not (isinstance(n, (int, np.integer)) and n >= 2):
        raise PaperReproError(f"number of maps must be an integer >= 2, got {n!r}")
    return int(n)


class GeneratorEmulator:
    """A conditional generator at any parameters; ``seed`` fixes the latents (common random numbers)."""

    def __init__(self, generator, preset, name: str = "emulator", batch_size: int = 256):
        from ..config import ConditionalPreset

        if not isinstance(preset, ConditionalPreset):
            raise PaperReproError(f"preset {preset.name!r} is not conditional: it makes maps at one cosmology only")
        self.generator, self.preset, self.name = generator, preset, name
        self.angle_deg = float(preset.angle_deg)
        self.batch_size = batch_size

    @classmethod
    def from_run(cls, run, checkpoint=None) -> "GeneratorEmulator":
        """The generator of a conditional run directory (``checkpoint`` as ``paper-repro generate``)."""
        from ..gan.runs import load_generator
        from ..maps.io import shown_path

        model, preset = load_generator(run, checkpoint)
        return cls(model, preset, name=f"emulator ({shown_path(run)})")    # records carry no machine path

    def maps(self, params, n: int, seed: int) -> tuple[np.ndarray, None]:
        """``n`` maps (n, c, c) float32 at ``params`` from latents seeded by ``seed``; no parents."""
        from ..gan.conditional import generation_inputs
        from ..gan.latents import generate

        y = generation_inputs(self.preset, _params(params))
        out = np.concatenate(list(generate(self.generator, _count(n), seed, batch_size=self.batch_size,
                                           data_scale=self.preset.training.data_scale, params=y)))
        return out, None


class SimulatorEmulator:
    """The simulator as an emulator: crops of parent fields at any cosmology, the geometry of
    ``base`` (a grid node's :class:`~paper_repro.config.DatasetConfig`); ``seed`` fixes the white
    noise and the crop corners of every parent (common random numbers)."""

    def __init__(self, base: DatasetConfig, name: str = "simulator stand-in"):
        self.base, self.name = base, name
        self.angle_deg = float(base.crop_angle_deg)

    @classmethod
    def from_grid(cls, grid) -> "SimulatorEmulator":
        """The geometry of a :class:`~paper_repro.maps.cosmo_grid.CosmoGrid`'s nodes, about the grid's base
        cosmology (so that a node's parameters give exactly its cosmology, and its cached C_ell)."""
        from ..config import CosmologyConfig

        base = grid.node(grid.node_names("train")[0]).config
        try:
            fiducial = CosmologyConfig(**grid.manifest["config"]["node"]["simulation"]["cosmology"])
        except (KeyError, TypeError) as exc:
            raise PaperReproError(f"{grid.path}: grid manifest without its base cosmology ({exc})") from None
        return cls(dataclasses.replace(base, simulation=dataclasses.replace(base.simulation, cosmology=fiducial)))

    def config_at(self, params, seed: int) -> DatasetConfig:
        """The dataset config at ``params``: Omega_b at the base's baryon fraction, the shift of the
        new cosmology, seed ``seed``."""
        om, s8 = _params(params)
        cos = self.base.simulation.cosmology
        cosmology = dataclasses.replace(cos, Omega_m=om, sigma_8=s8, Omega_b=cos.baryon_fraction * om)
        return dataclasses.replace(self.base, simulation=dataclasses.replace(self.base.simulation, cosmology=cosmology),
                                   seed=int(seed), auxiliary_seed=int(seed) + 1)

    def maps(self, params, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` crops (n, c, c) float32 at ``params`` and their parent ids (n,)."""
        from ..maps.datasets import simulated_crops
        from ..maps.simulation import ConvergenceSimulator

        n = _count(n)
        cfg = self.config_at(params, seed)
        sim = ConvergenceSimulator(cfg.simulation)      # not the cache of 8: a grid visits many cosmologies once
        k = cfg.crops_per_map
        parts = [simulated_crops(sim, cfg, "validation", i)[0] for i in range(-(-n // k))]
        return np.concatenate(parts)[:n], np.repeat(np.arange(len(parts)), k)[:n]


def peak_sigma(maps, angle_deg: float) -> float:
    """The kappa unit of the peak bins: the rms of the smoothed ``maps`` (one value for every set)."""
    from ..stats.peaks import reference_sigma

    return reference_sigma(np.asarray(maps), angle_deg)


def science_statistics(maps, angle_deg: float, sigma: float) -> dict[str, tuple[list[str], np.ndarray]]:
    """{statistic: (component labels, values (N, K) float64)} of ``maps`` (N, c, c):

    - ``power``: P(ell) (steradians) in logarithmic bands (:func:`paper_repro.stats.covariance.power_bands`),
      the bands holding Fourier modes of a c^2 map;
    - ``pixel``: each map's pixel variance (kappa^2) and skewness (dimensionless);
    - ``peaks``: peaks per map in bins of kappa / ``sigma`` of the maps smoothed by 1 arcmin.
    """
    from scipy import stats as sstats

    from ..stats.covariance import power_bands
    from ..stats.peaks import DEFAULT_PEAK_NU, extremum_counts
    from ..stats.power import count_modes, power_spectrum

    arr = np.asarray(maps, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[0] < 2 or arr.shape[1] != arr.shape[2]:
        raise PaperReproError(f"expected at least 2 square maps (N, c, c), found shape {arr.shape}")
    size = arr.shape[1]
    _, p = power_spectrum(arr, angle_deg)
    centres, bands = power_bands(p, size, angle_deg)
    # a band holds modes when any of its paper bins does: its mode-weighted mean is then defined
    _, has = power_bands(count_modes(size, angle_deg)[None, :].astype(float), size, angle_deg)
    keep = has[0] > 0
    flat = arr.reshape(len(arr), -1)
    pixel = np.stack([flat.var(axis=1), sstats.skew(flat, axis=1)], axis=1)
    labels, counts = extremum_counts(arr, angle_deg, sigma)
    n_peak = DEFAULT_PEAK_NU.size - 1
    return {
        "power": ([f"P(ell~{c:g})" for c, k in zip(centres, keep) if k], bands[:, keep]),
        "pixel": (["variance", "skewness"], pixel),
        "peaks": (labels[:n_peak], counts[:, :n_peak]),
    }


__all__ = ["STATISTICS", "Emulator", "GeneratorEmulator", "SimulatorEmulator", "peak_sigma", "science_statistics"]
