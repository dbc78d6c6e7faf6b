"""Checkpoint selection (Sect. 2.3): chi-square distance between power-spectrum histograms.

The authors scanned the generator over the last epochs and kept the one whose generated maps' power
spectra were closest to the development set's, by a chi-square distance between histograms. Here:
for each non-empty ell bin, the development maps' log10 P(ell) define histogram edges (quantiles, so
every bin holds development maps); the score is the sum over ell bins of the chi-square distance
between the normalised histograms of the generated and development maps (0 = identical).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .config import Preset
from .data import open_maps
from .statistics import power_spectrum


@dataclass
class PowerSpectrumScorer:
    """Callable generator -> score (lower is better), against fixed development-set histograms."""

    edges: np.ndarray          # (n_ell, n_bins + 1) log10 P edges per ell bin
    reference: np.ndarray      # (n_ell, n_bins) normalised development histograms
    keep: np.ndarray           # ell bins used (non-empty)
    angle_deg: float
    n_maps: int
    seed: int
    data_scale: float
    batch_size: int = 256
    description: str = "chi-square distance of log power-spectrum histograms to the development set"

    @classmethod
    def from_maps(cls, development: np.ndarray, preset: Preset, n_bins: int = 20,
                  n_maps: int | None = None, seed: int = 12345) -> "PowerSpectrumScorer":
        _, p = power_spectrum(np.asarray(development), preset.angle_deg)
        keep = np.all(p > 0, axis=0)
        logp = np.log10(p[:, keep])
        qs = np.linspace(0, 1, n_bins + 1)
        edges = np.quantile(logp, qs, axis=0).T
        edges[:, 0], edges[:, -1] = -np.inf, np.inf
        reference = histograms(logp, edges)
        return cls(edges, reference, keep, preset.angle_deg,
                   n_maps or preset.training.selection_maps, seed, preset.training.data_scale)

    @classmethod
    def from_file(cls, path: str | os.PathLike, preset: Preset, **kwargs) -> "PowerSpectrumScorer":
        return cls.from_maps(open_maps(path, size=preset.model.image_size), preset, **kwargs)

    def score_maps(self, maps: np.ndarray) -> float:
        _, p = power_spectrum(maps, self.angle_deg)
        with np.errstate(divide="ignore"):
            logp = np.log10(p[:, self.keep])
        return float(chi2_distance(histograms(logp, self.edges), self.reference).sum())

    def __call__(self, generator) -> float:
        from .runs import generate
        maps = np.concatenate(list(generate(generator, self.n_maps, self.seed,
                                            batch_size=self.batch_size, data_scale=self.data_scale)))
        return self.score_maps(maps)


def histograms(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Normalised histogram of values[:, j] on edges[j] for each column j -> (n_cols, n_bins)."""
    n_cols, n_bins = edges.shape[0], edges.shape[1] - 1
    out = np.empty((n_cols, n_bins))
    for j in range(n_cols):
        idx = np.clip(np.searchsorted(edges[j], values[:, j], side="right") - 1, 0, n_bins - 1)
        out[j] = np.bincount(idx, minlength=n_bins) / len(values)
    return out


def chi2_distance(h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """Chi-square distance sum_b (h1 - h2)^2 / (h1 + h2) along the last axis (empty bins skipped)."""
    num = (h1 - h2) ** 2
    den = h1 + h2
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0).sum(-1)
