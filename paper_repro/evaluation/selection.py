"""Checkpoint selection (Sect. 2.3): a score of generated vs development maps, lowest kept.

``power_spectrum`` (the paper's): the authors scanned the generator over the last epochs and kept
the one whose generated maps' power spectra were closest to the development set's, by a chi-square
distance between histograms. Here: for each non-empty ell bin, histograms of log10 P(ell) of the
generated and the development maps on the development set's range
(:func:`paper_repro.stats.twosample.histogram_chi2`); the score is the sum over ell bins of their
chi-square distances (0 = identical). ``statistics``: the z of the means of all three certified
statistics (:class:`StatisticsScorer`), so selection looks at what certification tests.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import SELECTION_SCORES, CertificationConfig, ConditionalPreset, Preset
from ..errors import PaperReproError
from ..gan.latents import generate
from ..maps.io import open_maps
from ..stats.power import power_spectrum
from ..stats.twosample import histogram_chi2, mean_z
from .certification import STATISTICS, pixel_edges, shown_path, statistics_of


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

    def generated(self, generator) -> np.ndarray:
        """The ``n_maps`` maps (kappa) this score draws from ``generator`` with latent seed ``seed``."""
        return np.concatenate(list(generate(generator, self.n_maps, self.seed,
                                            batch_size=self.batch_size, data_scale=self.data_scale)))

    def __call__(self, generator) -> float:
        return self.score_maps(self.generated(generator))


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

    def generated(self, generator) -> np.ndarray:
        """The ``n_maps`` maps (kappa) this score draws from ``generator`` with latent seed ``seed``."""
        return np.concatenate(list(generate(generator, self.n_maps, self.seed,
                                            batch_size=self.batch_size, data_scale=self.data_scale)))

    def __call__(self, generator) -> float:
        return self.score_maps(self.generated(generator))


#: selection scores by the name a preset gives (``TrainingConfig.selection_score``)
SCORERS = {"power_spectrum": PowerSpectrumScorer, "statistics": StatisticsScorer}
assert tuple(SCORERS) == SELECTION_SCORES


#: latent seed of the selection score during training
SELECTION_SEED = 12345


def scorer_for(preset: Preset, development: str | os.PathLike, *, n_maps: int | None = None,
               seed: int = SELECTION_SEED):
    """The selection scorer a preset names, against the development maps in ``development``."""
    name = preset.training.selection_score
    try:
        cls = SCORERS[name]
    except KeyError:
        raise PaperReproError(f"unknown selection score {name!r}; choose one of {', '.join(SCORERS)}") from None
    return cls.from_file(development, preset, n_maps=n_maps, seed=seed)


#: generated maps an unconditional calibration fit uses by default
CALIBRATION_MAPS = 16384

#: latent seeds of :func:`pick_calibrated` (the shipping rule's seeds; not the training score's)
PICK_SEEDS = (777, 2027)


@dataclass
class WorstMeanScorer:
    """Callable generator -> W (lower is better): the largest |z| of a component mean over the three
    certified mean statistics, the shape of certification's mean criterion (|z| <= 4 everywhere).

    z_k = (mean_gen - mean_ref) / standard error per component (pixel-histogram bins, ell bins,
    Minkowski thresholds) against a reference set, for each latent seed; W is its maximum over
    components and statistics, averaged over the seeds. Certification fails a statistic on one bad
    component, which a mean of z^2 (:class:`StatisticsScorer`) dilutes: the shipped model of
    2026-12-04 scored lowest on that but failed by one Minkowski V2 mean (docs/history.md).
    """

    reference: dict             # statistic -> (N_ref, K) of the reference maps
    edges: np.ndarray           # pixel-histogram edges (reference quantiles)
    angle_deg: float
    n_maps: int
    seeds: tuple
    data_scale: float
    batch_size: int = 256
    description: str = ("largest |z| of a component mean over pixel histogram, power spectrum and "
                        "Minkowski functionals vs the reference set, averaged over latent seeds")

    @classmethod
    def from_maps(cls, reference: np.ndarray, preset: Preset, n_maps: int = 8192,
                  seeds: tuple = PICK_SEEDS) -> "WorstMeanScorer":
        reference = np.asarray(reference)
        if len(reference) < 2:
            raise PaperReproError(f"the reference set has {len(reference)} maps; the pick needs at least 2")
        if n_maps < 2 or not seeds:
            raise PaperReproError(f"the pick needs at least 2 maps and one seed, got {n_maps} maps, seeds {seeds}")
        # pixel edges from <= 2,000 maps spread over the whole set (pooled sets differ in order)
        edges = pixel_edges(reference[::max(1, len(reference) // 2000)])
        stats = statistics_of(reference, preset.angle_deg, edges)
        return cls({k: stats[k][1] for k in STATISTICS}, edges, preset.angle_deg, int(n_maps),
                   tuple(int(s) for s in seeds), preset.training.data_scale)

    def worst_means(self, maps: np.ndarray) -> dict:
        """{"W", "statistics": {name: {"worst_abs_z", "worst_component", "mean_z2"}}} of maps (kappa)."""
        stats = statistics_of(np.asarray(maps), self.angle_deg, self.edges)
        per = {}
        for k, ref in self.reference.items():
            z = mean_z(stats[k][1], ref)
            absz = np.where(np.isnan(z), -1.0, np.abs(z))   # NaN: constant and equal in both sets
            i = int(np.argmax(absz))
            finite = np.isfinite(z)
            per[k] = {"worst_abs_z": float(max(absz[i], 0.0)), "worst_component": str(stats[k][0][i]),
                      "mean_z2": float(np.mean(z[finite] ** 2)) if finite.any() else math.inf}
        return {"W": max(v["worst_abs_z"] for v in per.values()), "statistics": per}

    def evaluate(self, generator) -> dict:
        """{seed: :meth:`worst_means` of ``n_maps`` maps from ``generator`` with that latent seed}."""
        return {seed: self.worst_means(np.concatenate(list(generate(
                    generator, self.n_maps, seed, batch_size=self.batch_size, data_scale=self.data_scale))))
                for seed in self.seeds}

    def __call__(self, generator) -> float:
        return float(np.mean([r["W"] for r in self.evaluate(generator).values()]))


def refuse_conditional(preset: Preset, run: str | os.PathLike) -> None:
    """``pick``'s ranking is for unconditional runs: its score is one development set's, not meaningful
    at every (Omega_m, sigma_8) at once (and a conditional run keeps no candidates); a conditional run
    is a one-line error (``paper-repro pick`` picks one over its grid: :mod:`.conditional_selection`)."""
    if isinstance(preset, ConditionalPreset):
        raise PaperReproError(f"{shown_path(run)} is a conditional run: its generators are calibrated and "
                              "picked over its cosmology grid (paper-repro pick, conditional_selection), not "
                              "against one cosmology's maps")


def pick_calibrated(run: str | os.PathLike, out: str | os.PathLike, reference: Sequence[str | os.PathLike], *,
                    data: str | os.PathLike | None = None, n_maps: int = 8192, seeds: tuple = PICK_SEEDS,
                    calibration_maps: int = CALIBRATION_MAPS, progress: bool = True) -> dict:
    """Calibrate each kept candidate of ``run`` and write the one with the lowest W into run ``out``.

    Each candidate in ``candidates/`` gets the output calibration it would ship with
    (:func:`paper_repro.gan.calibration.fit` on the training maps, its own latent seed) and is scored by
    :class:`WorstMeanScorer` on the maps of ``reference`` pooled (development-type sets, never the
    validation set); ``calibration_maps`` generated maps per fit. The pick is written, with the
    calibration it was scored with, as :func:`paper_repro.gan.runs.calibrate_run` writes a
    calibrated run, plus ``best/pick.json`` with every candidate's W. Returns that record.
    """
    from ..gan import calibration, runs  # keras

    run, out = Path(run), Path(out)
    runs.check_output_run(run, out)
    info = runs.read_run_info(run)
    refuse_conditional(info.preset, run)
    p = info.preset
    kept = runs.list_candidates(run)
    if not kept:
        raise PaperReproError(f"{run}: no kept candidates in {run / 'candidates'} (the preset's "
                              "selection_candidates keeps them during the selection epochs)")
    if not reference:
        raise PaperReproError("give at least one reference (development) set to pick on")
    train = _training_maps(run, info, data)
    pooled = np.concatenate([np.asarray(open_maps(r, size=p.model.image_size)) for r in reference])
    scorer = WorstMeanScorer.from_maps(pooled, p, n_maps=n_maps, seeds=seeds)
    results, best = {}, None      # best: (calibrated model, fit) of the lowest W so far, written as scored
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(kept), unit="candidate", desc="pick")
    for step in sorted(kept):
        model, _ = runs.load_generator(run, f"step-{step}")
        pattern, gain, fitted = calibration.fit(model, train, data_scale=p.training.data_scale,
                                                n_maps=calibration_maps)
        model = calibration.calibrated(model, pattern, gain)
        res = scorer.evaluate(model)
        results[step] = {"W": float(np.mean([r["W"] for r in res.values()])), "seeds": res}
        if best is None or results[step]["W"] < results[best[0]]["W"]:
            best = (step, model, fitted)
        if bar is not None:
            bar.update(1)
            bar.set_postfix({"step": step, "W": f"{results[step]['W']:.3g}"})
    if bar is not None:
        bar.close()
    pick, model, fitted = best          # the first of equal lowest W, as min() over sorted steps
    record = {"metric": scorer.description, "reference": [shown_path(r) for r in reference],
              "reference_maps": int(len(pooled)), "maps": scorer.n_maps, "seeds": list(scorer.seeds),
              "global_step": pick, "W": results[pick]["W"],
              "candidates": {str(s): r for s, r in results.items()}}
    runs.write_calibrated_run(run, out, model, runs.generator_path(run, f"step-{pick}"), fitted,
                              extra={"pick.json": record})
    return record


def calibrate_checkpoint(run: str | os.PathLike, out: str | os.PathLike, checkpoint: str | int, *,
                         data: str | os.PathLike | None = None, calibration_maps: int | None = None,
                         progress: bool = True):
    """Calibrate the one generator ``checkpoint`` names (step-N, best, last, an epoch) without
    scoring it, and write it as :func:`pick_calibrated` writes its pick (no ``pick.json``).

    The fit uses ``calibration_maps`` generated maps (default 16,384) and the run's training maps (or
    ``data``). A conditional run is calibrated over its grid's training nodes
    (:func:`~.conditional_selection.calibrate_conditional_checkpoint`, ``calibration_maps`` per node).
    Returns the :class:`~paper_repro.gan.calibration.CalibrationFit`.
    """
    from ..gan import runs  # keras

    run, out = Path(run), Path(out)
    runs.check_output_run(run, out)
    info = runs.read_run_info(run)
    if isinstance(info.preset, ConditionalPreset):
        from .conditional_selection import calibrate_conditional_checkpoint

        return calibrate_conditional_checkpoint(run, out, checkpoint, data=data, progress=progress,
                                                **({} if calibration_maps is None else {"n_maps": calibration_maps}))
    runs.generator_path(run, checkpoint)          # an unknown checkpoint fails before any work
    return runs.calibrate_run(run, out, _training_maps(run, info, data), n_maps=calibration_maps or CALIBRATION_MAPS,
                              checkpoint=checkpoint, progress=progress)


def _training_maps(run: Path, info, data: str | os.PathLike | None) -> np.ndarray:
    """The real maps a calibration is fitted to: ``data``, else the run's training data."""
    path = data or info.data
    if path is None:
        raise PaperReproError(f"{run}: the run names no training data; pass --data TRAIN.npy")
    return open_maps(path, size=info.preset.model.image_size)
