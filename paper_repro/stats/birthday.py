"""Birthday-paradox test of a generated batch (Arora & Zhang 2017): too many near-duplicates?

Arora & Zhang (2017): closest pairs within a batch (32,768 maps in the
  paper) in pixel, power-spectrum and discriminator-feature space, pairwise distances in blocks
  keeping only the closest pairs; near-duplicates are pairs closer than a threshold calibrated on
  independent reference maps; their count gives a support-size estimate and a test of the
  generated batch's near-duplicate rate against the reference's.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import scipy.stats

from ..errors import PaperReproError
from .distances import (
    DEFAULTS,
    Rows,
    block_budget,
    check_level,
    check_map_set,
    check_same_size,
    check_vectors,
    knn_rows,
    pairs_rows,
)
from .power import DEFAULT_ANGLE_DEG, power_features
from .reports import JsonReport

#: spaces of :func:`birthday_test`
BIRTHDAY_SPACES = ("pixel", "power", "features")


@dataclass
class BirthdaySpace(JsonReport):
    """Birthday-paradox result in one space.

    Near-duplicates: pairs closer than ``threshold``, the ``quantile`` quantile of the reference
    maps' nearest-neighbour distances (within the reference set). Under the null hypothesis the
    generated batch has near-duplicate pairs at the reference's rate per pair; given the total,
    the generated count is binomial (a conditional test of two Poisson rates), one-sided p-value.
    ``support`` = C(s, 2) / duplicates: the number of equally likely distinct maps (at resolution
    ``threshold``) that would give this many duplicates, with a 95% Poisson (Garwood) interval
    (Arora & Zhang 2017: a batch of s has a duplicate with probability ~1/2 when support ~ s^2 / 1.4);
    ``support_ratio`` compares it with the reference's own (about 1 for a faithful generator).
    """

    space: str
    n_maps: int
    n_reference: int
    quantile: float
    threshold: float
    duplicates: int
    reference_duplicates: int
    expected_duplicates: float
    p_value: float
    support: float | None
    support_low: float | None
    support_high: float | None
    reference_support: float | None
    support_ratio: float | None
    reference_closest: float
    closest_pairs: list
    passed: bool


@dataclass
class BirthdayVerdict(JsonReport):
    """Birthday-paradox test over several spaces; each space at level alpha / (number of spaces)."""

    n_maps: int
    n_reference: int
    alpha: float
    passed: bool
    spaces: dict


def _support(pairs: float, count: int) -> tuple[float, float, float]:
    if count == 0:
        return math.inf, pairs / (scipy.stats.chi2.ppf(0.975, 2) / 2.0), math.inf
    lo = scipy.stats.chi2.ppf(0.025, 2 * count) / 2.0
    hi = scipy.stats.chi2.ppf(0.975, 2 * count + 2) / 2.0
    return pairs / count, pairs / hi, pairs / lo


def _birthday_space(space: str, gen: Rows, ref: Rows, n_pairs: int, quantile: float, level: float,
                    budget: int) -> BirthdaySpace:
    idx, d2 = knn_rows(ref, ref, 1, budget, exclude_self=True)
    nn = np.sqrt(np.maximum(d2[:, 0], 0.0))
    tau = float(np.quantile(nn, quantile))
    c_ref = pairs_rows(ref, 1, tau * tau, budget).n_below
    found = pairs_rows(gen, n_pairs, tau * tau, budget)
    n_dup = int(found.n_below)
    p_gen, p_ref = gen.n * (gen.n - 1) / 2.0, ref.n * (ref.n - 1) / 2.0
    expected = p_gen * c_ref / p_ref
    total = n_dup + c_ref
    p = 1.0 if total == 0 else float(scipy.stats.binomtest(n_dup, total, p_gen / (p_gen + p_ref),
                                                               alternative="greater").pvalue)
    s, s_lo, s_hi = _support(p_gen, n_dup)
    s_ref = p_ref / c_ref if c_ref else math.inf
    ratio = s / s_ref if math.isfinite(s) and math.isfinite(s_ref) else None
    pairs = [{"i": int(a), "j": int(b), "distance": float(d)}
             for a, b, d in zip(found.i, found.j, found.distances)]
    return BirthdaySpace(space=space, n_maps=gen.n, n_reference=ref.n, quantile=quantile, threshold=tau,
                         duplicates=n_dup, reference_duplicates=int(c_ref), expected_duplicates=expected,
                         p_value=p, support=s, support_low=s_lo, support_high=s_hi, reference_support=s_ref,
                         support_ratio=ratio, reference_closest=float(nn.min()), closest_pairs=pairs,
                         passed=bool(p >= level))


#: a feature map for the ``features`` space: ``features(maps, out=None)`` -> (N, F) float array, written
#: to the ``.npy`` path ``out`` (through a memory map) when given
FeatureFn = Callable[..., np.ndarray]


def birthday_test(maps, reference, *, spaces: Sequence[str] = BIRTHDAY_SPACES,
                  features: FeatureFn | None = None, n_pairs: int = DEFAULTS.birthday_pairs,
                  quantile: float = DEFAULTS.duplicate_quantile, alpha: float = DEFAULTS.alpha,
                  standardize: bool = False, angle_deg: float = DEFAULT_ANGLE_DEG, l_edges=None,
                  block_bytes: int | None = None,
                  feature_memory_bytes: int = 2**31, workdir: str | os.PathLike | None = None) -> BirthdayVerdict:
    """Birthday-paradox test (Arora & Zhang 2017) of a batch of generated ``maps`` (paper: 32,768).

    ``reference``: independent maps of the same size (e.g. validation maps: one per parent map or
    well-separated crops, since overlapping crops of one parent are near-duplicates themselves);
    it calibrates the near-duplicate threshold of each space and the rate expected of a faithful
    generator. ``spaces``: any of ``pixel`` (L2 between maps), ``power`` (ln power spectra, see
    :func:`~paper_repro.stats.power.power_features`) and ``features`` (``features(maps)``, e.g. a
    discriminator's last convolutional activations from
    :func:`paper_repro.evaluation.features.discriminator_embedding`; the generated batch's features
    are written to a temporary file under ``workdir`` when larger than ``feature_memory_bytes``). A mode-collapsed batch (few maps repeated with small noise)
    has far more near-duplicates than expected and fails.
    """
    g = check_map_set(maps, "maps", min_maps=2)
    r = check_map_set(reference, "reference", min_maps=3)
    check_same_size(g, r, "maps", "reference")
    spaces = tuple(spaces)
    bad = [s for s in spaces if s not in BIRTHDAY_SPACES]
    if not spaces or bad:
        raise PaperReproError(f"spaces: expected some of {', '.join(BIRTHDAY_SPACES)}, found {list(spaces)!r}")
    if "features" in spaces and features is None:
        raise PaperReproError("spaces: 'features' needs a feature map (features=None given)")
    if not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise PaperReproError(f"n_pairs: expected a positive integer, found {n_pairs!r}")
    quantile = check_level(quantile, "quantile")
    alpha = check_level(alpha, "alpha")
    budget = block_budget(block_bytes)
    level = alpha / len(spaces)
    results = {}
    for space in spaces:
        if space == "pixel":
            results[space] = _birthday_space(space, Rows(g, "maps", standardize),
                                             Rows(r, "reference", standardize), n_pairs, quantile, level, budget)
        elif space == "power":
            results[space] = _birthday_space(space, Rows(power_features(g, angle_deg, l_edges), "maps"),
                                             Rows(power_features(r, angle_deg, l_edges), "reference"),
                                             n_pairs, quantile, level, budget)
        else:
            with tempfile.TemporaryDirectory(prefix="birthday-", dir=workdir) as tmp:
                fe_ref = check_vectors(features(r), "features(reference)", min_rows=r.shape[0])
                big = g.shape[0] * fe_ref.shape[1] * 4 > feature_memory_bytes
                fe_gen = check_vectors(features(g, out=os.path.join(tmp, "features.npy") if big else None),
                                       "features(maps)", min_rows=g.shape[0])
                check_same_size(fe_gen, fe_ref, "features(maps)", "features(reference)")
                results[space] = _birthday_space(space, Rows(fe_gen, "maps (features)"),
                                                 Rows(fe_ref, "reference (features)"), n_pairs, quantile, level,
                                                 budget)
                del fe_gen
    return BirthdayVerdict(n_maps=int(g.shape[0]), n_reference=int(r.shape[0]), alpha=alpha,
                           passed=all(res.passed for res in results.values()),
                           spaces={k: v.to_dict() for k, v in results.items()})
