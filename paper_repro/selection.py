"""Checkpoint selection (Sect. 2.3): a score of generated vs development maps, lowest kept.

``power_spectrum`` (the paper's): the authors scanned the generator over the last epochs and kept
the one whose generated maps' power spectra were closest to the development set's, by a chi-square
distance between histograms. Here: for each non-empty ell bin, histograms of log10 P(ell) of the
generated and the development maps on the development set's range
(:func:`paper_repro.comparison.histogram_chi2`); the score is the sum over ell bins of their
chi-square distances (0 = identical). ``statistics``: the z of the means of all three certified
statistics (:class:`StatisticsScorer`), so selection looks at what certification tests.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .comparison import histogram_chi2
from .config import SELECTION_SCORES, Preset
from .data import open_maps
from .errors import PaperReproError
from .statistics import power_spectrum


@dataclass
class PowerSpectrumScorer:
    """Callable generator -> score (lower is better), against the development set's power spectra."""

    development_power: np.ndarray   # (N_dev, K) P(ell) of the development maps, non-empty ell bins
    keep: np.ndarray                # ell bins used (non-empty)
    angle_deg: float
    n_maps: int
    seed: int
    data_scale: float
    bins: int = 20
    batch_size: int = 256
    description: str = "chi-square distance of log10 power-spectrum histograms to the development set"

    @classmethod
    def from_maps(cls, development: np.ndarray, preset: Preset, n_maps: int | None = None,
                  seed: int = 12345, bins: int | None = None) -> "PowerSpectrumScorer":
        from .config import CertificationConfig

        _, p = power_spectrum(np.asarray(development), preset.angle_deg)
        keep = np.all(p > 0, axis=0)
        return cls(p[:, keep], keep, preset.angle_deg, n_maps or preset.training.selection_maps, seed,
                   preset.training.data_scale, bins or CertificationConfig().chi2_bins)

    @classmethod
    def from_file(cls, path: str | os.PathLike, preset: Preset, **kwargs) -> "PowerSpectrumScorer":
        return cls.from_maps(open_maps(path, size=preset.model.image_size), preset, **kwargs)

    def score_maps(self, maps: np.ndarray) -> float:
        """Sum over ell bins of the chi-square distance between log10 P histograms (0: identical)."""
        _, p = power_spectrum(maps, self.angle_deg)
        p = np.maximum(p[:, self.keep], np.finfo(float).tiny)
        return histogram_chi2(p, self.development_power, self.bins, log=True)[1]

    def __call__(self, generator) -> float:
        from .runs import generate
        maps = np.concatenate(list(generate(generator, self.n_maps, self.seed,
                                            batch_size=self.batch_size, data_scale=self.data_scale)))
        return self.score_maps(maps)


@dataclass
class StatisticsScorer:
    """Callable generator -> score (lower is better): the certified statistics' means vs the development set.

    For each statistic the certification tests (pixel histogram, power spectrum, Minkowski
    functionals), z_k = (mean_gen - mean_dev) / standard error per component; the score is the
    average over the three statistics of mean(z_k^2), so about 1 for a generator whose maps match
    the development set, and no statistic outweighs another by its number of components. Selecting
    on the power spectrum alone (the paper) lets the pixel histogram drift: among cpu64 epoch-end
    generators whose power-spectrum scores all lay in 2.8-3.9, the worst pixel bin was 1.9 to 16.5
    standard errors off (2,000 maps each).
    """

    development: dict           # statistic -> (N_dev, K) of the development maps
    edges: np.ndarray           # pixel-histogram edges (development quantiles)
    angle_deg: float
    n_maps: int
    seed: int
    data_scale: float
    batch_size: int = 256
    description: str = ("mean over pixel histogram, power spectrum and Minkowski functionals of the "
                        "mean squared z of component means vs the development set (about 1: matched)")

    @classmethod
    def from_maps(cls, development: np.ndarray, preset: Preset, n_maps: int | None = None,
                  seed: int = 12345) -> "StatisticsScorer":
        from .certification import STATISTICS, pixel_edges, statistics_of

        development = np.asarray(development)
        if len(development) < 2:
            raise PaperReproError(f"the development set has {len(development)} maps; selection needs at least 2")
        edges = pixel_edges(development)
        stats = statistics_of(development, preset.angle_deg, edges)
        return cls({k: stats[k][1] for k in STATISTICS}, edges, preset.angle_deg,
                   n_maps or preset.training.selection_maps, seed, preset.training.data_scale)

    @classmethod
    def from_file(cls, path: str | os.PathLike, preset: Preset, **kwargs) -> "StatisticsScorer":
        return cls.from_maps(open_maps(path, size=preset.model.image_size), preset, **kwargs)

    def components(self, maps: np.ndarray) -> dict[str, float]:
        """mean(z^2) over the components of each statistic (finite z only)."""
        from .certification import statistics_of
        from .comparison import mean_z

        stats = statistics_of(np.asarray(maps), self.angle_deg, self.edges)
        out = {}
        for k, dev in self.development.items():
            z = mean_z(stats[k][1], dev)
            out[k] = float(np.mean(np.square(z[np.isfinite(z)]))) if np.isfinite(z).any() else math.inf
            if np.isinf(z).any():     # a component constant in both sets but different
                out[k] = math.inf
        return out

    def score_maps(self, maps: np.ndarray) -> float:
        return float(np.mean(list(self.components(maps).values())))

    def __call__(self, generator) -> float:
        from .runs import generate
        maps = np.concatenate(list(generate(generator, self.n_maps, self.seed,
                                            batch_size=self.batch_size, data_scale=self.data_scale)))
        return self.score_maps(maps)


#: selection scores by the name a preset gives (``TrainingConfig.selection_score``)
SCORERS = {"power_spectrum": PowerSpectrumScorer, "statistics": StatisticsScorer}
assert tuple(SCORERS) == SELECTION_SCORES


def scorer_for(preset: Preset, development: str | os.PathLike):
    """The selection scorer a preset names, against the development maps in ``development``."""
    name = preset.training.selection_score
    try:
        cls = SCORERS[name]
    except KeyError:
        raise PaperReproError(f"unknown selection score {name!r}; choose one of {', '.join(SCORERS)}") from None
    return cls.from_file(development, preset)
