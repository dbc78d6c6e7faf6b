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
  its power, and the binomial counts maps as independent draws, as a generator's maps are. Crops
  of one parent map stand out together, so on sets of crops a low cut makes the binomial
  anti-conservative (at 1 sigma, 11 of 100 trials of independent simulations failed at 0.01; at 2
  sigma it held its level); at the default 8 sigma none of 400 such trials failed (0 of 300 of
  64^2 crops: false-failure rate below 1.0% at 95%), and every copy stands out by tens of sigma, so a generator copying a fraction f of n
  maps fails with p ~ (K / (K + 1))^(f n) (K = 3 for the project's datasets: 17 copies reach p < 0.01;
  2% of 4,000 maps, 80 copies, give p ~ 1e-10).

  The copying test's distance. Per map and set, the exact nearest neighbour in a shift- and
  flip-invariant feature space: the Fourier amplitudes of the standardized map's lowest modes,
  sorted within each orbit of the square's 8 symmetries
  (:func:`paper_repro.stats.neighbours.invariant_features`). Two maps' feature distance is a
  certified lower bound of their invariant distance (min over the 8 symmetries and all periodic
  shifts of the pixel L2 distance); an exact copy, shifted or flipped, is at distance 0 (rounding),
  and additive noise moves it by at most the noise's norm in those modes, a small part of it for
  white noise. Measured on the cpu dataset (64^2, 512 modes): the null's nearest distances have a
  robust spread of 0.05 in ln d, and copies with noise of 10%, 30% and 50% of the map's rms stand
  out by about 49, 27 and 16 such sigma (the tail cut is 8). The search is one float32 matrix
  product per block with a rigorous rounding bound (:func:`paper_repro.stats.distances.knn`), so
  4,000 maps against 33,600 take seconds instead of the minutes of a pixel-space invariant search;
  every map that stands out at a training set is then checked in pixel space (the invariant
  distance to the training map found, its symmetry and shift, and whether that map is provably
  the nearest in its set).

:func:`memorisation_test` searches with :func:`paper_repro.stats.neighbours.nearest_neighbors` (by
default the shift- and flip-invariant distance between standardized maps, so shifted, flipped or
rescaled copies count).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.stats

from ..errors import PaperReproError
from .distances import DEFAULTS, check_level, check_map_set, check_same_size, knn
from .neighbours import TRANSFORM_NAMES, dihedral_orbits, invariant_features, invariant_pairs, nearest_neighbors
from .power import DEFAULT_ANGLE_DEG
from .reports import JsonReport

#: real maps on each side of the copying test's reference (held-out maps searched against each
#: training set, training maps against the held-out set): they set the centres and the scale
CALIBRATION_MAPS = 256
#: most maps standing out at a training set that the copying test checks in pixel space
CHECKED_MAPS = 256
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
    K / (K + 1) that exchangeable sets give: one-sided binomial p < ``alpha``. Distances are in
    the shift/flip-invariant feature space of ``modes`` Fourier modes (exact nearest neighbours);
    ``training_outliers``: indices of the generated maps whose outlying set is a training set, the
    most outlying of them checked in pixel space (``verified`` maps in all, with the closest few);
    ``certified_outlying``: the share of the checked ones whose training map found is provably their
    nearest in that set by the invariant distance (1.0 if none).
    """

    space: str
    modes: int
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
    verified: int
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


def _log_nn(queries: np.ndarray, reference: np.ndarray, k: int, budget: int | None):
    """Exact k nearest feature rows (k capped by the reference's size) and the log nearest distance."""
    nn = knn(queries, reference, min(k, len(reference)), block_bytes=budget)
    return nn, np.log(np.maximum(nn.distances[:, 0], _TINY))


def copying_test(generated, training, held_out, *, training_parents=None, held_out_parents=None,
                 alpha: float = DEFAULTS.alpha, tail_sigma: float = DEFAULTS.copying_tail_sigma, seed: int = 0,
                 modes: int | None = DEFAULTS.copying_modes, calibration_maps: int = CALIBRATION_MAPS,
                 n_closest: int = 5, max_checked: int = CHECKED_MAPS, block_bytes: int | None = None,
                 workers: int | None = None) -> CopyingVerdict:
    """Does the generator copy training maps? Control: held-out maps with the training set's structure.

    Each generated map g is compared with K disjoint training sets T_1..T_K and one held-out set H
    of the same structure (as many parent maps, K = training parents // held-out parents; the
    training parents are dealt into the K sets, so every training map is in one, and a set may hold
    a few parents more than H, a difference the centring absorbs), by the distance between
    shift/flip-invariant features of the standardized maps (:func:`invariant_features` of the
    ``modes`` lowest Fourier modes; module docstring). When the generator does not copy, the K + 1
    sets are exchangeable: a generator that is merely smoother or more typical than the data moves
    every distance alike (the confound of :func:`memorisation_test`), while a copy of a training map
    (shifted, flipped, noisy) has d(g, T_k) ~ 0 for the set holding its source. Per map, u_j = ln
    d(g, S_j) - c_j and o_j = u_j - median of the other sets' u; among maps whose nearest set stands
    out (o < -``tail_sigma`` x sigma) the outlying set should be a training set with probability
    K / (K + 1); more often is copying (one-sided binomial). The centres c_j and the scale sigma come
    from real maps, never from the maps under test. ``calibration_maps``: maps of each side of that
    reference. ``*_parents``: parent-map id of each map (crops of one parent are alike); None treats
    every map as its own parent. The maps standing out at a training set (the ``max_checked`` most
    outlying of them) and the ``n_closest`` nearest to one are then checked in pixel space: the
    invariant distance (all 8 symmetries, all periodic shifts) to the training map found, with its
    transform and shift. The verdict does not depend on that check.
    """
    g = check_map_set(generated, "generated", min_maps=3)
    t = check_map_set(training, "training", min_maps=1)
    h = check_map_set(held_out, "held_out", min_maps=1)
    check_same_size(g, t, "generated", "training")
    check_same_size(h, t, "held_out", "training")
    alpha = check_level(alpha, "alpha")
    if not (isinstance(tail_sigma, (int, float)) and math.isfinite(tail_sigma) and tail_sigma > 0):
        raise PaperReproError(f"tail_sigma: expected a positive number, found {tail_sigma!r}")
    if not isinstance(max_checked, (int, np.integer)) or max_checked < 0:
        raise PaperReproError(f"max_checked: expected an integer >= 0, found {max_checked!r}")
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
    feat = dict(n_modes=modes, block_bytes=block_bytes, workers=workers)
    fg = invariant_features(g, **feat)
    ft = invariant_features(t, **feat)
    fh = invariant_features(h, **feat)[h_idx]
    sets = [ft[idx] for idx in t_idx] + [fh]    # T_1..T_K, then H
    # the reference: held-out maps to each training set, training maps to the held-out set (searched
    # with the generated maps, one search per set)
    m = int(calibration_maps)
    h_cal = fh[np.sort(rng.choice(len(h_idx), min(m, len(h_idx)), replace=False))]
    pool = np.concatenate(t_idx)
    t_cal = ft[np.sort(rng.choice(pool, min(m, len(pool)), replace=False))]
    n = g.shape[0]
    found, ref = [], []
    for j, s in enumerate(sets):
        nn, lg = _log_nn(np.concatenate([fg, h_cal if j < groups else t_cal]), s, 1, block_bytes)
        found.append((nn.indices[:n], nn.distances[:n], lg[:n]))
        ref.append(lg[n:])
    dist = np.stack([f[1][:, 0] for f in found], axis=1)
    offsets = np.array([np.median(r) for r in ref])
    pooled = np.concatenate([r - c for r, c in zip(ref, offsets)])
    sigma = float(1.4826 * np.median(np.abs(pooled - np.median(pooled))))
    u = np.stack([f[2] for f in found], axis=1) - offsets
    # how much nearer each set is than the median of the others; exchangeable across sets when
    # nothing is copied, so an outlying set is a training set with probability K / (K + 1)
    o = np.empty_like(u)
    for j in range(groups + 1):
        o[:, j] = u[:, j] - np.median(np.delete(u, j, axis=1), axis=1)
    cut = tail_sigma * max(sigma, _TINY)
    nearest = np.argmin(o, axis=1)
    outlying = o[np.arange(n), nearest] < -cut
    flagged = np.flatnonzero(outlying & (nearest < groups))
    low, high = len(flagged), int(np.sum(outlying & (nearest == groups)))
    share = groups / (groups + 1)
    p = (float(scipy.stats.binomtest(low, low + high, share, alternative="greater").pvalue)
         if low + high else 1.0)
    # pixel-space check of the maps standing out at a training set and of the closest few
    rows = np.arange(n)
    best_t = np.argmin(o[:, :groups], axis=1)
    ranked = np.argsort(o[rows, best_t], kind="stable")
    closest = ranked[:n_closest]
    check = np.union1d(closest, np.intersect1d(ranked[:int(max_checked)], flagged))
    nn_t = np.array([t_idx[best_t[i]][found[best_t[i]][0][i, 0]] for i in check], dtype=np.int64)
    d_inv, tr, sh = invariant_pairs(g, t, check, nn_t, standardize=True, block_bytes=block_bytes, workers=workers)
    second = np.full(len(check), np.inf)       # the second-nearest feature distance in the set found
    for j in np.unique(best_t[check]):
        at = np.flatnonzero(best_t[check] == j)
        if len(sets[j]) > 1:
            second[at] = knn(fg[check[at]], sets[j], 2, block_bytes=block_bytes).distances[:, 1]
    certified = d_inv <= second * (1 + 1e-9)    # every other map of the set is bounded below by its features
    in_flagged = np.isin(check, flagged)
    pos = {int(i): a for a, i in enumerate(check)}
    nn_h = h_idx[found[groups][0][closest, 0]]
    d_h = invariant_pairs(g, h, closest, nn_h, standardize=True, block_bytes=block_bytes, workers=workers)[0]
    table = []
    for b, i in enumerate(closest):
        a = pos[int(i)]
        table.append({"generated": int(i), "training": int(nn_t[a]), "distance": float(d_inv[a]),
                      "amplitude_distance": float(dist[i, best_t[i]]), "held_out_distance": float(d_h[b]),
                      "held_out_amplitude_distance": float(dist[i, groups]),
                      "transform": TRANSFORM_NAMES[int(tr[a])], "shift": [int(x) for x in sh[a]],
                      "certified": bool(certified[a])})
    method = (f"shift/flip-invariant features (orbit-sorted Fourier amplitudes of the {modes} lowest modes "
              f"of the standardized maps; their distance bounds the invariant distance from below), exact "
              f"nearest neighbours in {groups} disjoint training sets (every training map in one) and one "
              f"held-out set of {n_par} parents; per generated map, u = ln d - c and o = u - median u of "
              f"the other sets, with each set's centre c and the scale sigma (1.4826 MAD) from {len(h_cal)} "
              f"held-out maps' distances to the training sets and {len(t_cal)} training maps' distances to "
              f"the held-out set; maps with an outlying set (o < -{tail_sigma:g} sigma): one-sided binomial "
              f"test that the outlying set is a training set more often than {groups}/{groups + 1}, alpha = "
              f"{alpha}; maps standing out at a training set checked by the invariant distance in pixels")
    return CopyingVerdict(
        space="amplitude", modes=int(round(np.sum(8 * (t.shape[1] * dihedral_orbits(t.shape[1], modes)[1]) ** 2))), n_generated=n, n_groups=groups, parents_per_set=n_par,
        maps_per_set=int(len(h_idx)), parent_structure=structure,
        training_set_sizes=[int(len(i)) for i in t_idx],
        median_distance_training=float(np.median(dist[:, :groups])),
        median_distance_held_out=float(np.median(dist[:, groups])),
        log_distance_offsets=[float(x) for x in offsets], outlier_sigma=sigma, tail_sigma=float(tail_sigma),
        training_tail=low, held_out_tail=high, expected_training_share=share, p_value=p, alpha=alpha,
        passed=bool(p >= alpha), verified=int(len(check)),
        certified_outlying=float(np.mean(certified[in_flagged])) if in_flagged.any() else 1.0,
        calibration_maps=[len(h_cal), len(t_cal)], training_outliers=flagged.tolist(), closest=table,
        method=method)
