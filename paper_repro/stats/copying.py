"""Does the generator copy training maps? Two tests of the paper's Sect. 3.2 question.

* :func:`memorisation_test` -- a data-copying test with a baseline (Meehan, Chaudhuri & Dasgupta
  2020): distances of generated maps to their nearest training map against distances of
  independent (validation) maps to theirs; one-sided Mann-Whitney U (a systematic shift to smaller
  distances) and one-sided KS (a subset of copies at small distance), Bonferroni-combined.

* :func:`copying_test` -- the same question with a held-out control that removes the confound of
  the above (a generator smoother than the data sits closer to *every* set of maps): distances to
  several training sets and one held-out set of the same parent structure; a generated map whose
  nearest set stands out should find a training set there no more often than chance (binomial test).

  Where the copying test's yardstick comes from. Each set's log distances are centred, and the
  threshold for "stands out" is scaled, by real maps, never by the maps under test: the centre of
  a training set is the median ln distance to it of held-out maps, the centre of the held-out set
  the median ln distance to it of training maps (each a real map against a set it is independent
  of), and sigma is 1.4826 x the MAD of those centred values. Centring by the generated maps'
  own median would let a generator that copies most of its maps set the centre itself: a copy
  would then no longer stand out. The binomial test's validity does not rest on the yardstick
  (under no copying the sets are exchangeable for any generator, whatever the threshold, up to
  the few extra parents a training set may hold, which the centring absorbs); the yardstick sets
  its power: every copy (d ~ 0, or the noise's norm) stands out by
  tens of sigma, so a generator copying a fraction f of n maps fails with p ~ (K / (K + 1))^(f n).

Both search with :func:`paper_repro.stats.neighbours.nearest_neighbors` (by default the shift- and
flip-invariant distance between standardized maps, so shifted, flipped or rescaled copies count).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.stats

from ..errors import PaperReproError
from .distances import DEFAULTS, check_level, check_map_set, check_same_size
from .neighbours import TRANSFORM_NAMES, nearest_neighbors
from .power import DEFAULT_ANGLE_DEG
from .reports import JsonReport

#: real maps on each side of the copying test's reference (held-out maps searched against each
#: training set, training maps against the held-out set): they set the centres and the scale
CALIBRATION_MAPS = 256
_TINY = np.finfo(float).tiny


@dataclass
class MemorisationVerdict(JsonReport):
    """Generated-to-training vs validation-to-training nearest distances (data-copying test).

    ``passed`` is False when generated maps are significantly closer to the training set than
    independent maps are: Bonferroni-combined p = min(1, 2 min(p_MW, p_KS)) < ``alpha``.
    """

    space: str
    standardize: bool
    n_generated: int
    n_validation: int
    n_training: int
    median_generated: float
    median_validation: float
    mannwhitney_u: float
    mannwhitney_p: float
    ks_statistic: float
    ks_p: float
    p_value: float
    alpha: float
    passed: bool
    close_quantile: float
    close_fraction_generated: float
    certified_generated: float
    certified_validation: float
    closest: list = field(default_factory=list)
    method: str = ""


def memorisation_test(generated, validation, training, *, space: str = "invariant",
                      standardize: bool = True, alpha: float = DEFAULTS.alpha,
                      candidates: int | None = DEFAULTS.prefilter_candidates,
                      lb_modes: int | None = DEFAULTS.prefilter_modes, close_quantile: float = 0.01,
                      n_closest: int = 5, angle_deg: float = DEFAULT_ANGLE_DEG, l_edges=None,
                      block_bytes: int | None = None, workers: int | None = None) -> MemorisationVerdict:
    """Does the generator copy training maps? Baseline: independent (validation) maps.

    For each generated and each validation map, its distance to the nearest training map (in
    ``space``, default the shift/flip-invariant one on standardized maps, so shifted, flipped or
    rescaled copies are caught). Generated maps systematically closer than validation maps is
    memorisation: one-sided Mann-Whitney U (Meehan et al. 2020) and one-sided two-sample KS
    (sensitive to a copied subset), Bonferroni-combined at level ``alpha``. Both sets go through
    the same search, so the prefilter (``candidates``) treats them alike. Also reported: the
    fraction of generated maps closer than the ``close_quantile`` quantile of the validation
    distances (about ``close_quantile`` for a novel generator) and the closest generated-training
    pairs. The validation maps must be independent of the training maps (other parent maps: crops
    overlapping training crops sit close to them and make the baseline lenient). Note: a generator
    whose maps are smoother than the data also sits closer to everything; read a failure together
    with the statistics verdicts and the close fraction.
    """
    g = check_map_set(generated, "generated", min_maps=3)
    v = check_map_set(validation, "validation", min_maps=3)
    t = check_map_set(training, "training", min_maps=1)
    check_same_size(g, t, "generated", "training")
    check_same_size(v, t, "validation", "training")
    alpha = check_level(alpha, "alpha")
    close_quantile = check_level(close_quantile, "close_quantile")
    if space != "invariant":
        candidates = lb_modes = None
    elif candidates is not None:
        candidates = min(int(candidates), t.shape[0])
    kw = dict(space=space, standardize=standardize, angle_deg=angle_deg, l_edges=l_edges,
              candidates=candidates, lb_modes=lb_modes, block_bytes=block_bytes, workers=workers)
    ng = nearest_neighbors(g, t, 1, **kw)
    nv = nearest_neighbors(v, t, 1, **kw)
    dg, dv = ng.distances[:, 0], nv.distances[:, 0]
    mw = scipy.stats.mannwhitneyu(dg, dv, alternative="less")
    ks = scipy.stats.ks_2samp(dg, dv, alternative="greater")   # CDF of generated above: closer
    p = min(1.0, 2.0 * min(float(mw.pvalue), float(ks.pvalue)))
    order = np.argsort(dg, kind="stable")[:n_closest]
    closest = []
    for i in order:
        row = {"generated": int(i), "training": int(ng.indices[i, 0]), "distance": float(dg[i])}
        if ng.transforms is not None:
            row["transform"] = TRANSFORM_NAMES[int(ng.transforms[i, 0])]
            row["shift"] = [int(x) for x in ng.shifts[i, 0]]
        closest.append(row)
    q_close = float(np.quantile(dv, close_quantile))
    method = (f"nearest training map in {space} space{' (standardized maps)' if standardize and space != 'power' else ''}"
              f"{f', prefilter {candidates} candidates' if candidates else ''}; one-sided Mann-Whitney U and "
              f"KS (generated closer), Bonferroni p = min(1, 2 min(p_MW, p_KS)) vs alpha = {alpha}")
    return MemorisationVerdict(
        space=space, standardize=bool(standardize), n_generated=len(dg), n_validation=len(dv),
        n_training=int(t.shape[0]), median_generated=float(np.median(dg)), median_validation=float(np.median(dv)),
        mannwhitney_u=float(mw.statistic), mannwhitney_p=float(mw.pvalue), ks_statistic=float(ks.statistic),
        ks_p=float(ks.pvalue), p_value=p, alpha=alpha, passed=bool(p >= alpha), close_quantile=close_quantile,
        close_fraction_generated=float(np.mean(dg < q_close)),
        certified_generated=float(np.mean(ng.certified)), certified_validation=float(np.mean(nv.certified)),
        closest=closest, method=method)


# ============================================================================== held-out-controlled copying test
@dataclass
class CopyingVerdict(JsonReport):
    """Nearest training map vs nearest held-out map, per generated map (:func:`copying_test`).

    ``passed`` is False when, among generated maps with one set much nearer than the others
    (by ``tail_sigma`` robust sigmas), that set is a training set more often than the
    K / (K + 1) that exchangeable sets give: one-sided binomial p < ``alpha``. ``certified``: share
    of generated maps whose distances to every set are provably the exhaustive search's;
    ``certified_outlying``: the same among maps with an outlying set, for that set (1.0 if none);
    ``training_outliers``: indices of the generated maps whose outlying set is a training set.
    """

    space: str
    n_generated: int
    n_groups: int
    parents_per_set: int
    maps_per_set: int
    training_set_sizes: list
    parent_structure: str
    median_distance_training: float
    median_distance_held_out: float
    log_distance_offsets: list
    outlier_sigma: float
    tail_sigma: float
    training_tail: int
    held_out_tail: int
    expected_training_share: float
    p_value: float
    alpha: float
    passed: bool
    certified: float
    certified_outlying: float
    calibration_maps: list = field(default_factory=list)
    training_outliers: list = field(default_factory=list)
    closest: list = field(default_factory=list)
    method: str = ""


def _parent_ids(parents, n: int, name: str) -> np.ndarray:
    if parents is None:
        return np.arange(n)
    ids = np.asarray(parents)
    if ids.ndim != 1 or len(ids) != n or not np.issubdtype(ids.dtype, np.integer):
        raise PaperReproError(f"{name}_parents: expected {n} integer parent-map ids, found "
                              f"{ids.dtype} array of shape {ids.shape}")
    return ids


def copying_test(generated, training, held_out, *, training_parents=None, held_out_parents=None,
                 alpha: float = DEFAULTS.alpha, tail_sigma: float = DEFAULTS.copying_tail_sigma, seed: int = 0,
                 candidates: int | None = DEFAULTS.prefilter_candidates,
                 lb_modes: int | None = DEFAULTS.prefilter_modes, calibration_maps: int = CALIBRATION_MAPS,
                 n_closest: int = 5, block_bytes: int | None = None, workers: int | None = None) -> CopyingVerdict:
    """Does the generator copy training maps? Control: held-out maps with the training set's structure.

    Each generated map g is compared, by the shift/flip-invariant distance between standardized
    maps, with K disjoint training sets T_1..T_K and one held-out set H of the same structure (as
    many parent maps, K = training parents // held-out parents; the training parents are dealt
    into the K sets, so every training map is in one, and a set may hold a few parents more than H,
    a difference the centring absorbs). When the
    generator does not copy, the K + 1 sets are exchangeable: a generator that is merely smoother or
    more typical than the data moves every distance alike (the confound of
    :func:`memorisation_test`), while a copy of a training map (shifted, flipped, noisy) has
    d(g, T_k) ~ 0 for the set holding its source. Per map, u_j = ln d(g, S_j) - c_j and o_j = u_j -
    median of the other sets' u; among maps whose nearest set stands out (o < -``tail_sigma`` x
    sigma) the outlying set should be a training set with probability K / (K + 1); more often is
    copying (one-sided binomial). The centres c_j and the scale sigma come from real maps, never
    from the maps under test (module docstring). ``calibration_maps``: maps of each side of that
    reference. ``*_parents``: parent-map id of each map (crops of one parent are alike); None
    treats every map as its own parent.
    """
    g = check_map_set(generated, "generated", min_maps=3)
    t = check_map_set(training, "training", min_maps=1)
    h = check_map_set(held_out, "held_out", min_maps=1)
    check_same_size(g, t, "generated", "training")
    check_same_size(h, t, "held_out", "training")
    alpha = check_level(alpha, "alpha")
    if not (isinstance(tail_sigma, (int, float)) and math.isfinite(tail_sigma) and tail_sigma > 0):
        raise PaperReproError(f"tail_sigma: expected a positive number, found {tail_sigma!r}")
    if not isinstance(calibration_maps, (int, np.integer)) or calibration_maps < 3:
        raise PaperReproError(f"calibration_maps: expected an integer >= 3, found {calibration_maps!r}")
    tp = _parent_ids(training_parents, t.shape[0], "training")
    hp = _parent_ids(held_out_parents, h.shape[0], "held_out")
    structure = ("given parent ids" if training_parents is not None and held_out_parents is not None
                 else "unknown: maps treated as independent parents")
    rng = np.random.default_rng(seed)
    t_par = np.unique(tp)
    h_par = np.unique(hp)
    n_par = min(len(h_par), len(t_par))
    groups = len(t_par) // n_par
    h_idx = np.flatnonzero(np.isin(hp, np.sort(rng.choice(h_par, n_par, replace=False))))
    t_perm = rng.permutation(t_par)             # parents dealt round-robin: every training map in one set
    t_idx = [np.flatnonzero(np.isin(tp, t_perm[k::groups])) for k in range(groups)]
    kw = dict(space="invariant", standardize=True, candidates=None if candidates is None else
              min(int(candidates), len(h_idx)), lb_modes=lb_modes, block_bytes=block_bytes, workers=workers)
    sets = [np.asarray(t[idx]) for idx in t_idx] + [np.asarray(h[h_idx])]   # T_1..T_K, then H
    n = g.shape[0]
    found = [nearest_neighbors(g, s, 1, **kw) for s in sets]
    dist = np.stack([f.distances[:, 0] for f in found], axis=1)
    cert = np.logical_and.reduce([f.certified for f in found])
    cert_each = np.stack([f.certified for f in found], axis=1)
    # the reference: held-out maps to each training set, training maps to the held-out set
    m = int(calibration_maps)
    h_cal = sets[groups][np.sort(rng.choice(len(h_idx), min(m, len(h_idx)), replace=False))]
    pool = np.concatenate(t_idx)
    t_cal = np.asarray(t[np.sort(rng.choice(pool, min(m, len(pool)), replace=False))])
    ref = [np.log(np.maximum(nearest_neighbors(h_cal, sets[k], 1, **kw).distances[:, 0], _TINY))
           for k in range(groups)]
    ref.append(np.log(np.maximum(nearest_neighbors(t_cal, sets[groups], 1, **kw).distances[:, 0], _TINY)))
    offsets = np.array([np.median(r) for r in ref])
    pooled = np.concatenate([r - c for r, c in zip(ref, offsets)])
    sigma = float(1.4826 * np.median(np.abs(pooled - np.median(pooled))))
    u = np.log(np.maximum(dist, _TINY)) - offsets
    # how much nearer each set is than the median of the others; exchangeable across sets when
    # nothing is copied, so an outlying set is a training set with probability K / (K + 1)
    o = np.empty_like(u)
    for j in range(groups + 1):
        o[:, j] = u[:, j] - np.median(np.delete(u, j, axis=1), axis=1)
    cut = tail_sigma * max(sigma, _TINY)
    nearest = np.argmin(o, axis=1)
    outlying = o[np.arange(n), nearest] < -cut
    low = int(np.sum(outlying & (nearest < groups)))
    high = int(np.sum(outlying & (nearest == groups)))
    share = groups / (groups + 1)
    p = (float(scipy.stats.binomtest(low, low + high, share, alternative="greater").pvalue)
         if low + high else 1.0)
    best_t = np.argmin(o[:, :groups], axis=1)
    rows = np.arange(n)
    closest = []
    for i in np.argsort(o[rows, best_t], kind="stable")[:n_closest]:
        f = found[best_t[i]]
        closest.append({"generated": int(i), "training": int(t_idx[best_t[i]][f.indices[i, 0]]),
                        "distance": float(dist[i, best_t[i]]), "held_out_distance": float(dist[i, groups]),
                        "transform": TRANSFORM_NAMES[int(f.transforms[i, 0])],
                        "shift": [int(x) for x in f.shifts[i, 0]]})
    method = (f"invariant distance of standardized maps to {groups} disjoint training sets (every "
              f"training map in one) and one held-out set of {n_par} parents; per generated map, u = ln d - c "
              f"and o = u - median u of the other sets, with each set's centre c and the scale sigma "
              f"(1.4826 MAD) from {len(h_cal)} held-out maps' distances to the training sets and "
              f"{len(t_cal)} training maps' distances to the held-out set; maps with an outlying set "
              f"(o < -{tail_sigma:g} sigma): one-sided binomial test that the outlying set is a training "
              f"set more often than {groups}/{groups + 1}, alpha = {alpha}")
    return CopyingVerdict(
        space="invariant", n_generated=n, n_groups=groups, parents_per_set=n_par,
        maps_per_set=int(len(h_idx)), parent_structure=structure,
        training_set_sizes=[int(len(i)) for i in t_idx],
        median_distance_training=float(np.median(dist[:, :groups])),
        median_distance_held_out=float(np.median(dist[:, groups])),
        log_distance_offsets=[float(x) for x in offsets], outlier_sigma=sigma, tail_sigma=float(tail_sigma),
        training_tail=low, held_out_tail=high, expected_training_share=share, p_value=p, alpha=alpha,
        passed=bool(p >= alpha), certified=float(np.mean(cert)),
        certified_outlying=float(np.mean(cert_each[outlying, nearest[outlying]])) if outlying.any() else 1.0,
        calibration_maps=[len(h_cal), len(t_cal)],
        training_outliers=np.flatnonzero(outlying & (nearest < groups)).tolist(), closest=closest, method=method)
