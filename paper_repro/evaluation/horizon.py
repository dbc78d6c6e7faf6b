"""The indistinguishability horizon n*: per criterion, the largest number of generated maps at which the
generated set would still pass against simulations, with its uncertainty (reported beside the verdict).

Sizes scale together: n* generated maps means every set (generated, validation, auxiliary) grown or shrunk
by one factor s = n* / n, n the generated maps at hand, with as many crops per parent map as at hand (so the
parent maps, the independent units, scale by s too). Two estimates:

* **scaling** (the mean criterion ``mean_within_k_se``): the z of a real difference grows as sqrt(s). With
  zmax the criterion's worst |z| and b the noise floor, the worst |z| that noise alone gives over the same
  components (the larger of a multiplier bootstrap's median over parent maps, which keeps the components'
  correlations and the clusters, and the baseline's own worst |z|), the worst |z| at scale s is about
  sqrt(s (zmax^2 - b^2) + b^2): the difference grows, the noise floor of a maximum does not. The limit k
  is then reached at s* = (k^2 - b^2) / (zmax^2 - b^2), so
  n* = n s*, exactly n when zmax = k (n* < n if and only if the test fails). For one component b = 1 and this
  is the deconvolved n k^2 / (z^2 - 1). The interval puts zmax +- 1 (one standard error of a z) in the
  formula; its upper end is unbounded when zmax - 1 <= b: no difference beyond noise is resolved.
* **subsampling** (every other test, of a criterion that fails at the data at hand): the test on random
  fractions of each set's parent maps (of its maps when it has no parent ids), ``repeats`` times per
  fraction; n* is where the pass rate falls below 1/2 (interpolated in log n) and its interval the two sizes
  around it. A test that passes at the data at hand gives n* >= n: bounded by the data at hand.

A criterion's n* is the smallest of its tests'. Independent simulation sets come out unbounded; a generator
with a small real difference gets a finite n* that shrinks as the difference grows
(``tests/evaluation/test_horizon.py``).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..config import CertificationConfig, HorizonConfig
from ..stats.reports import jsonable
from ..stats.twosample import cluster_codes, constant_components, mean_z_df, normal_equivalent
from .criteria import calibrate, correlation_criterion

SETS = ("generated", "validation", "auxiliary")
MEAN_TEST = "mean_within_k_se"


@dataclass
class Horizon:
    """n* of one test or criterion, in generated maps: ``estimate`` within [``lower``, ``upper``]
    (inf: unbounded by these data; ``estimate`` NaN: below the smallest size tried, only ``upper`` known)."""

    n: int
    method: str
    estimate: float
    lower: float
    upper: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def bounded_by_data(self) -> bool:
        """True when no difference is resolved: n* is at least ``lower``, with no upper end."""
        return math.isinf(self.upper)

    def text(self) -> str:
        if math.isnan(self.estimate):
            return f"n* < {_n(self.upper)} ({self.method})"
        if math.isinf(self.estimate):
            return f"n* >= {_n(self.lower)}, unbounded: no difference resolved at {_n(self.n)} maps ({self.method})"
        up = "unbounded" if math.isinf(self.upper) else _n(self.upper)
        return f"n* ~ {_n(self.estimate)} (interval {_n(self.lower)} to {up}; {self.method})"

    def to_dict(self) -> dict[str, Any]:
        d = {k: jsonable(v) for k, v in dataclasses.asdict(self).items()}
        d["bounded_by_data"] = self.bounded_by_data
        d["text"] = self.text()
        return d


def _n(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 else f"{v:.3g}"


def combine(parts: dict[str, Horizon]) -> Horizon:
    """A criterion's horizon from its tests': the smallest n* (it passes only while every test does)."""
    def key(h: Horizon) -> float:
        return h.upper if math.isnan(h.estimate) else h.estimate
    worst = min(parts.values(), key=key)
    return Horizon(worst.n, worst.method, worst.estimate, min(h.lower for h in parts.values()),
                   min(h.upper for h in parts.values()),
                   {"limiting_test": next(k for k, h in parts.items() if h is worst),
                    "tests": {k: h.to_dict() for k, h in parts.items()}})


def verdict_horizon(n: int, passed: bool, method: str = "verdict at the data at hand") -> Horizon:
    """n* >= n for a test that passes at n maps (bounded by the data at hand), n* < n for one that fails."""
    return Horizon(n, method, math.inf, float(n), math.inf) if passed else Horizon(n, method, math.nan, 0.0, float(n))


# --- scaling: the mean criterion ----------------------------------------------------------------------

def noise_floor(gen, val, gen_groups=None, val_groups=None, *, draws: int = 500, seed=0) -> np.ndarray:
    """Draws (``draws``,) of the worst |z| over components that noise alone gives for these sets: a Gaussian
    multiplier per parent map (per map without parent ids) on its summed residuals, each component divided
    by its cluster-robust standard error (as :func:`~paper_repro.stats.twosample.clustered_se`), so every z
    is N(0, 1) and the components keep the data's correlations."""
    parts = []
    for a, groups in ((np.asarray(gen, np.float64), gen_groups), (np.asarray(val, np.float64), val_groups)):
        resid = a - a.mean(axis=0)
        codes = cluster_codes(groups, a.shape[0])
        if codes is None:
            sums, g = resid, a.shape[0]
        else:
            g = int(codes.max()) + 1
            sums = np.zeros((g, a.shape[1]))
            np.add.at(sums, codes, resid)
        parts.append(sums * math.sqrt(g / (g - 1.0)) / a.shape[0])
    t = np.concatenate(parts)
    se = np.sqrt((t ** 2).sum(axis=0))
    t = t[:, se > 0] / se[se > 0]
    if t.shape[1] == 0:
        return np.zeros(draws)
    rng = np.random.default_rng(seed)
    step = max(1, int(2e7 // (t.shape[0] + t.shape[1])))
    return np.concatenate([np.abs(rng.standard_normal((min(step, draws - i), t.shape[0])) @ t).max(axis=1)
                           for i in range(0, draws, step)])


def scaling_horizon(n: int, zmax: float, limit: float, floor: float) -> Horizon:
    """n* of a max-|z| test by scaling (module docstring): worst |z| ``zmax`` at n maps, limit ``limit``,
    noise floor ``floor`` (median worst |z| of noise alone)."""
    detail = {"worst_z": zmax, "limit": limit, "noise_floor": floor}
    room = limit ** 2 - floor ** 2
    if room <= 0:   # the limit is inside the noise floor: scaling says nothing
        return dataclasses.replace(verdict_horizon(n, zmax <= limit), detail=detail | {
            "note": "limit within the noise floor of the worst |z|: the verdict at the data at hand only"})

    def at(z: float) -> float:
        excess = z ** 2 - floor ** 2
        return math.inf if excess <= 0 else n * room / excess

    if not math.isfinite(zmax):
        return Horizon(n, "scaling", 0.0, 0.0, 0.0, detail)
    upper = at(max(zmax - 1.0, 0.0))
    # unresolved (the upper end unbounded): n* is reported as at least the lower end, the point as detail
    return Horizon(n, "scaling", at(zmax) if math.isfinite(upper) else math.inf, at(zmax + 1.0), upper,
                   detail | {"point": at(zmax)})


def mean_horizon(gen, val, aux, groups: dict | None = None, *, limit: float = 4.0, draws: int = 500,
                 seed=0) -> Horizon:
    """n* of the mean criterion (:func:`scaling_horizon`): its worst normal-equivalent |z| as
    :func:`~paper_repro.evaluation.criteria.calibrate` computes it, against a noise floor: the larger of the
    median of :func:`noise_floor` and the baseline's own worst |z| (auxiliary vs validation: one draw of
    noise alone with the data's real law, heavier tails included)."""
    groups = groups or {}
    g, v, x = (np.asarray(a, np.float64) for a in (gen, val, aux))
    keep = ~constant_components(g, v, x)

    def worst(a, name):
        z, df = mean_z_df(a, v, groups.get(name), groups.get("validation"))
        zt = normal_equivalent(z, df)[keep]
        zt = zt[~np.isnan(zt)]
        return float(zt.max()) if zt.size else 0.0

    zmax, baseline = worst(g, "generated"), worst(x, "auxiliary")
    floor = float(np.median(noise_floor(g[:, keep], v[:, keep], groups.get("generated"), groups.get("validation"),
                                        draws=draws, seed=seed)))
    h = scaling_horizon(len(g), zmax, limit, max(floor, baseline if math.isfinite(baseline) else floor))
    h.detail |= {"noise_floor_multiplier": floor, "baseline_worst_z": baseline}
    return h


# --- subsampling --------------------------------------------------------------------------------------

def _part(rng: np.random.Generator, groups, n: int, fraction: float) -> np.ndarray | None:
    """Indices of a random ``fraction`` of a set: of its parent maps (all their maps) where ids are known,
    else of its maps; None when that leaves fewer than 2 parents."""
    if groups is None:
        return np.sort(rng.permutation(n)[: int(round(fraction * n))])
    parents = np.unique(groups)
    k = int(round(fraction * parents.size))
    if k < 2:
        return None
    return np.flatnonzero(np.isin(groups, rng.permutation(parents)[:k]))


def pass_rates(passes: Callable[[dict[str, np.ndarray]], bool], sizes: dict[str, int], groups: dict,
               fractions, repeats: int, min_maps: int, seed=0) -> dict[float, tuple[float, float]]:
    """{fraction: (mean generated maps, pass rate)} of ``passes(indices per set)`` over ``repeats``
    random subsamples per fraction; fractions that leave a set under ``min_maps`` maps or 2 parents are
    skipped."""
    rng = np.random.default_rng(seed)
    out = {}
    for f in fractions:
        results, sizes_g = [], []
        for _ in range(repeats):
            idx = {k: _part(rng, groups.get(k), sizes[k], f) for k in sizes}
            if any(i is None or i.size < min_maps for i in idx.values()):
                break
            results.append(bool(passes(idx)))
            sizes_g.append(idx["generated"].size)
        if results:
            out[f] = (float(np.mean(sizes_g)), float(np.mean(results)))
    return out


def crossing(n: int, rates: dict[float, tuple[float, float]], passed: bool) -> Horizon:
    """n* from pass rates at subsample sizes plus the verdict at n maps: where the rate falls below 1/2
    (log-linear between the two sizes around it, which bound the interval)."""
    points = sorted(rates.values()) + [(float(n), 1.0 if passed else 0.0)]
    detail = {"pass_rates": [{"n": s, "pass_rate": r} for s, r in points]}
    first = next((i for i, (_, r) in enumerate(points) if r < 0.5), None)
    if first is None:
        return Horizon(n, "subsampling", math.inf, float(n), math.inf, detail)
    hi, r_hi = points[first]
    if first == 0:
        return Horizon(n, "subsampling", math.nan, 0.0, hi, detail)
    lo, r_lo = points[first - 1]
    t = (r_lo - 0.5) / (r_lo - r_hi)
    return Horizon(n, "subsampling", float(math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo)))), lo, hi,
                   detail)


# --- the report's criteria ----------------------------------------------------------------------------

def add_horizons(criteria: dict[str, dict[str, Any]], statistics: dict, groups: dict,
                 config: CertificationConfig | None = None, horizon: HorizonConfig | None = None, *,
                 covariance: Callable[[dict, dict], bool] | None = None, say=None) -> float:
    """Add a ``horizon`` entry (:meth:`Horizon.to_dict`, plus its seconds) to every criterion of a
    certification report, in place; returns the seconds spent.

    ``statistics``: {set: {statistic: (labels, (N, K))}} as :func:`.certification.certify` keeps them;
    ``groups``: parent-map ids per set (None: independent maps); ``covariance(statistics subset, its groups)``:
    whether the covariance criterion passes on subsets (the criterion needs the maps' geometry)."""
    cfg, hcfg = config or CertificationConfig(), horizon or HorizonConfig()
    say = say or (lambda m: None)
    t_all = time.perf_counter()
    sizes = {k: len(next(iter(statistics[k].values()))[1]) for k in SETS}
    n = sizes["generated"]
    sub_cfg = dataclasses.replace(cfg, bootstrap_replicates=min(cfg.bootstrap_replicates, hcfg.replicates))

    def sets(stat, idx=None):
        return [statistics[k][stat][1] if idx is None else statistics[k][stat][1][idx[k]] for k in SETS]

    def sub_groups(idx):
        return {k: None if groups.get(k) is None else groups[k][idx[k]] for k in SETS}

    def subsampled(passes, passed, seed):
        if passed:
            return verdict_horizon(n, True)
        rates = pass_rates(passes, sizes, groups, hcfg.fractions, hcfg.repeats, cfg.min_maps, seed)
        return crossing(n, rates, passed)

    for i, (name, entry) in enumerate(criteria.items()):
        t0 = time.perf_counter()
        tests = {c["name"]: bool(c["passed"]) for c in entry["criteria"]}
        parts: dict[str, Horizon] = {}
        if name in statistics["generated"]:
            if MEAN_TEST in tests:
                parts[MEAN_TEST] = mean_horizon(*sets(name), groups, limit=cfg.mean_k_sigma,
                                                draws=hcfg.null_draws, seed=cfg.seed + i)
            others = [t for t in tests if t != MEAN_TEST]

            def passes(idx, name=name, others=others):
                v = calibrate(*sets(name, idx), statistic=name, config=sub_cfg, groups=sub_groups(idx),
                              seed=cfg.seed)
                return all(c.passed for c in v.criteria if c.name in others)
            if others:
                say(f"horizon: {name} ...")
                parts[", ".join(others)] = subsampled(passes, all(tests[t] for t in others), cfg.seed + i)
        elif name == "correlation_matrices":
            parts["correlation"] = subsampled(
                lambda idx: correlation_criterion(*sets("power_spectrum", idx), cfg, sub_groups(idx)).passed,
                entry["passed"], cfg.seed + i)
        elif name == "covariance" and covariance is not None:
            def passes_cov(idx):
                sub = {k: {s: (lab, a[idx[k]]) for s, (lab, a) in statistics[k].items()} for k in SETS}
                return covariance(sub, sub_groups(idx))
            say("horizon: covariance ...")
            parts["covariance"] = subsampled(passes_cov, entry["passed"], cfg.seed + i)
        else:   # memorisation and any other: what the verdict at the data at hand says
            parts[name] = verdict_horizon(n, entry["passed"])
        h = combine(parts).to_dict()
        h["seconds"] = time.perf_counter() - t0
        entry["horizon"] = h
    return time.perf_counter() - t_all


def horizon_line(entry: dict[str, Any]) -> str:
    """The n* line of a criterion's report entry (empty when it has none)."""
    h = entry.get("horizon")
    return "" if not h else h["text"]
