"""Checkpoint selection (Sect. 2.3): chi-square distance between power-spectrum histograms.

The authors scanned the generator over the last epochs and kept the one whose generated maps' power
spectra were closest to the development set's, by a chi-square distance between histograms. Here:
for each non-empty ell bin, histograms of log10 P(ell) of the generated and the development maps on
the development set's range (:func:`paper_repro.comparison.histogram_chi2`); the score is the sum
over ell bins of their chi-square distances (0 = identical).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .comparison import histogram_chi2
from .config import Preset
from .data import open_maps
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
