"""Does the generator copy training maps? Two tests of the paper's Sect. 3.2 question.

* :func:`memorisation_test` -- a data-copying test with a baseline (Meehan, Chaudhuri & Dasgupta
  2020): distances of generated maps to their nearest training map against distances of
  independent (validation) maps to theirs; one-sided Mann-Whitney U (a systematic shift to smaller
  distances) and one-sided KS (a subset of copies at small distance), Bonferroni-combined.

* :func:`copying_test` -- the same question with a held-out control that removes the confound of
  the above (a generator smoother than the data sits closer to *every* set of maps): distances to
  several training sets and one held-out set of the same parent structure; a generated map whose
  nearest set stands out should find a training set there no more often than chance (binomial test).

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
    K / (K + 1) that exchangeable sets give: one-sided binomial p < ``alpha``.
    """

    space: str
    n_generated: int
    n_groups: int
    parents_per_set: int
    maps_per_set: int
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


def _matched_sets(parent_ids: np.ndarray, parents: np.ndarray, per_parent: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Sorted map indices: ``per_parent`` random maps of each of ``parents``."""
    out = [rng.choice(np.flatnonzero(parent_ids == p), per_parent, replace=False) for p in parents]
    return np.sort(np.concatenate(out))


def copying_test(generated, training, held_out, *, training_parents=None, held_out_parents=None,
                 alpha: float = DEFAULTS.alpha, tail_sigma: float = DEFAULTS.copying_tail_sigma, seed: int = 0,
                 candidates: int | None = DEFAULTS.prefilter_candidates,
                 lb_modes: int | None = DEFAULTS.prefilter_modes, n_closest: int = 5,
                 block_bytes: int | None = None, workers: int | None = None) -> CopyingVerdict:
    """Does the generator copy training maps? Control: held-out maps with the training set's structure.

    Each generated map g is compared, by the shift/flip-invariant distance between standardized
    maps, with K disjoint training sets T_1..T_K and one held-out set H of the same structure (as
    many parent maps, as many crops of each; K = training parents // held-out parents). When the
    generator does not copy, the K + 1 sets are exchangeable: a generator that is merely smoother or
    more typical than the data moves every distance alike (the confound of
    :func:`memorisation_test`), while a copy of a training map (shifted, flipped, noisy) has
    d(g, T_k) ~ 0 for the set holding its source. Per map, o_j = ln d_j - median of the other sets'
    ln d (each set centred by its median over maps), sigma = 1.4826 MAD of the o of each map's
    non-nearest sets (with K = 1 and most maps copied this scale inflates); among maps whose
    nearest set stands out (o < -``tail_sigma`` sigma) the outlying set should be a training set
    with probability K / (K + 1); more often is copying (one-sided binomial). ``*_parents``:
    parent-map id of each map
    (crops of one parent are alike); None treats every map as its own parent.
    """
    g = check_map_set(generated, "generated", min_maps=3)
    t = check_map_set(training, "training", min_maps=1)
    h = check_map_set(held_out, "held_out", min_maps=1)
    check_same_size(g, t, "generated", "training")
    check_same_size(h, t, "held_out", "training")
    alpha = check_level(alpha, "alpha")
    if not (isinstance(tail_sigma, (int, float)) and math.isfinite(tail_sigma) and tail_sigma > 0):
        raise PaperReproError(f"tail_sigma: expected a positive number, found {tail_sigma!r}")
    tp = _parent_ids(training_parents, t.shape[0], "training")
    hp = _parent_ids(held_out_parents, h.shape[0], "held_out")
    structure = ("given parent ids" if training_parents is not None and held_out_parents is not None
                 else "unknown: maps treated as independent parents")
    rng = np.random.default_rng(seed)
    t_par, t_cnt = np.unique(tp, return_counts=True)
    h_par, h_cnt = np.unique(hp, return_counts=True)
    per_parent = int(min(t_cnt.min(), h_cnt.min()))
    n_par = min(len(h_par), len(t_par))
    groups = len(t_par) // n_par
    h_use = np.sort(rng.choice(h_par, n_par, replace=False))
    t_perm = rng.permutation(t_par)
    h_idx = _matched_sets(hp, h_use, per_parent, rng)
    t_idx = [_matched_sets(tp, np.sort(t_perm[k * n_par:(k + 1) * n_par]), per_parent, rng)
             for k in range(groups)]
    kw = dict(space="invariant", standardize=True, candidates=None if candidates is None else
              min(int(candidates), len(h_idx)), lb_modes=lb_modes, block_bytes=block_bytes, workers=workers)
    tiny = np.finfo(float).tiny
    n = g.shape[0]
    dist = np.empty((n, groups + 1))            # columns: training sets T_1..T_K, then H
    which = np.empty((n, groups), dtype=np.int64)
    transforms, shifts = np.zeros((n, groups), dtype=np.int64), np.zeros((n, groups, 2), dtype=np.int64)
    nh = nearest_neighbors(g, np.asarray(h[h_idx]), 1, **kw)
    dist[:, groups] = nh.distances[:, 0]
    cert = nh.certified.copy()
    for k in range(groups):
        nt = nearest_neighbors(g, np.asarray(t[t_idx[k]]), 1, **kw)
        dist[:, k] = nt.distances[:, 0]
        which[:, k] = t_idx[k][nt.indices[:, 0]]
        transforms[:, k], shifts[:, k] = nt.transforms[:, 0], nt.shifts[:, 0]
        cert &= nt.certified
    u = np.log(np.maximum(dist, tiny))
    offsets = np.median(u, axis=0)
    u = u - offsets
    # how much nearer each set is than the median of the others; exchangeable across sets when
    # nothing is copied, so an outlying set is a training set with probability K / (K + 1). The
    # scale comes from each map's non-nearest sets, which copies do not move (K >= 2).
    o = np.empty_like(u)
    for j in range(groups + 1):
        o[:, j] = u[:, j] - np.median(np.delete(u, j, axis=1), axis=1)
    rest = np.sort(o, axis=1)[:, 1:]
    sigma = float(1.4826 * np.median(np.abs(rest - np.median(rest))))
    cut = tail_sigma * max(sigma, tiny)
    nearest = np.argmin(o, axis=1)
    outlying = o[np.arange(n), nearest] < -cut
    low = int(np.sum(outlying & (nearest < groups)))
    high = int(np.sum(outlying & (nearest == groups)))
    share = groups / (groups + 1)
    p = (float(scipy.stats.binomtest(low, low + high, share, alternative="greater").pvalue)
         if low + high else 1.0)
    best_t = np.argmin(o[:, :groups], axis=1)
    rows = np.arange(n)
    closest = [{"generated": int(i), "training": int(which[i, best_t[i]]), "distance": float(dist[i, best_t[i]]),
                "held_out_distance": float(dist[i, groups]),
                "transform": TRANSFORM_NAMES[int(transforms[i, best_t[i]])],
                "shift": [int(x) for x in shifts[i, best_t[i]]]}
               for i in np.argsort(o[rows, best_t], kind="stable")[:n_closest]]
    method = (f"invariant distance of standardized maps to {groups} disjoint training sets and one "
              f"held-out set of {n_par} parents x {per_parent} maps each; per generated map, o = ln d - "
              f"median ln d of the other sets (sets centred by their median); maps with an outlying set "
              f"(o < -{tail_sigma:g} sigma): one-sided binomial test that the outlying set is a training "
              f"set more often than {groups}/{groups + 1}, alpha = {alpha}")
    return CopyingVerdict(
        space="invariant", n_generated=n, n_groups=groups, parents_per_set=n_par,
        maps_per_set=int(len(h_idx)), parent_structure=structure,
        median_distance_training=float(np.median(dist[:, :groups])),
        median_distance_held_out=float(np.median(dist[:, groups])),
        log_distance_offsets=[float(x) for x in offsets], outlier_sigma=sigma, tail_sigma=float(tail_sigma),
        training_tail=low, held_out_tail=high, expected_training_share=share, p_value=p, alpha=alpha,
        passed=bool(p >= alpha),
        certified=float(np.mean(cert)), closest=closest, method=method)
