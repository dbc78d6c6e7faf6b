"""Pass/fail criteria of the certification: is a generated set no more distinguishable from the
validation set than an independent simulation set (the auxiliary set) is?

:func:`calibrate` turns the bootstrapped two-sample tests of one statistic
(:func:`paper_repro.stats.twosample.bootstrap_tests`) of generated-vs-validation and of the baseline
auxiliary-vs-validation into a :class:`Verdict` of named :class:`Criterion` objects, within the
tolerances of :class:`~paper_repro.config.CertificationConfig`; :func:`correlation_criterion` is the
correlation-matrix criterion (the paper's Fig. 4) alone; :func:`covariance_criterion` compares the
covariance of several statistics across maps.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..config import CertificationConfig
from ..errors import PaperReproError
from ..stats.covariance import MIN_CORRELATION, compare, varying
from ..stats.reports import jsonable
from ..stats.twosample import (
    BootstrapResult,
    as_stat,
    bootstrap_tests,
    cluster_codes,
    cluster_count,
    clustered_se,
    correlation_distance,
    mean_z_df,
    normal_equivalent,
    paper_tallies,
    smallest,
)


@dataclass
class Criterion:
    """One pass/fail criterion: ``value`` compared with ``limit`` (derived from the baseline and config)."""

    name: str
    passed: bool
    value: float | None
    limit: float | None
    baseline: float | None
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in dataclasses.asdict(self).items()}


@dataclass
class Verdict:
    """Certification of one statistic: generated-vs-validation against validation-vs-auxiliary.

    JSON-serialisable with :meth:`to_dict` / :meth:`to_json` (NaN becomes null).
    """

    statistic: str
    passed: bool
    criteria: list[Criterion]
    baseline_source: str
    n_generated: int
    n_validation: int
    n_auxiliary: int
    labels: list
    generated: BootstrapResult = field(repr=False)
    baseline: BootstrapResult = field(repr=False)
    tallies: dict[str, Any] = field(default_factory=dict)
    mean_z: list = field(default_factory=list, repr=False)
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    #: per set, its number of parent maps (clusters), or "independent" (each map its own cluster)
    clusters: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.criteria if not c.passed]

    def summary(self) -> str:
        head = f"{self.statistic}: {'PASS' if self.passed else 'FAIL'}"
        parts = [f"{c.name} {'ok' if c.passed else 'FAILED'} ({_fmt(c.value)} vs limit {_fmt(c.limit)})"
                 for c in self.criteria]
        return head + " - " + "; ".join(parts)

    def to_dict(self, replicates: bool = False) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "passed": bool(self.passed),
            "failed_criteria": self.failed,
            "criteria": [c.to_dict() for c in self.criteria],
            "baseline_source": self.baseline_source,
            "n_generated": self.n_generated, "n_validation": self.n_validation,
            "n_auxiliary": self.n_auxiliary,
            "generated_vs_validation": self.generated.to_dict(self.labels, replicates),
            "auxiliary_vs_validation": self.baseline.to_dict(self.labels, replicates),
            "mean_z": jsonable(self.mean_z),
            "clusters": self.clusters,
            "paper_style_tallies": self.tallies,
            "config": jsonable(self.config),
            "summary": self.summary(),
        }

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(**kw), indent=2, allow_nan=False)


def effective_size(values, groups=None, *, pairs: int = 256, seed: int = 0) -> float:
    """Effective number of independent maps of one set for the correlations across maps of its
    statistic: n / design effect, the design effect the median over random component pairs (i, j) of
    (clustered / naive standard error)^2 of the mean of the standardised products x_i x_j (what a
    correlation averages), clustered by parent map; n without parent ids.

    Crops of one parent are correlated, but much less in these products than in the statistic itself:
    at 30 crops of 32^2 from each 128^2 parent the effective size is about 0.8 n, not the number of
    parents; at 4 times the crops about 0.4 n. Clipped to [parents, n].
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[0]
    codes = cluster_codes(groups, n)
    if codes is None:
        return float(n)
    x = x[:, x.std(axis=0) > 0]
    if x.shape[1] < 2:
        return float(n)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    i, j = np.random.default_rng(seed).integers(0, x.shape[1], (2, pairs))
    u = x[:, i[i != j]] * x[:, j[i != j]]
    naive = clustered_se(u)
    ok = naive > 0
    if not ok.any():
        return float(n)
    deff = float(np.median((clustered_se(u[:, ok], codes) / naive[ok]) ** 2))
    return n / min(max(deff, 1.0), n / (int(codes.max()) + 1))


def size_scale(sets, groups: dict | None = None) -> tuple[float, dict[str, float]]:
    """sqrt((1/n_gen + 1/n_val) / (1/n_aux + 1/n_val)) with each set's :func:`effective_size`: the
    sampling noise of a generated-vs-validation correlation difference relative to the baseline's.
    ``sets``: (generated, validation, auxiliary) statistics; ``groups``: parent ids per set name."""
    groups = groups or {}
    n = {k: effective_size(a, groups.get(k)) for k, a in zip(("generated", "validation", "auxiliary"), sets)}
    scale = math.sqrt((1 / n["generated"] + 1 / n["validation"]) / (1 / n["auxiliary"] + 1 / n["validation"]))
    return scale, n


def correlation_criterion(generated, validation, auxiliary,
                          config: CertificationConfig | None = None, groups: dict | None = None) -> Criterion:
    """The correlation-matrix criterion alone (paper Fig. 4): generated vs validation against the baseline.

    The ``corr_quantile`` of |C_gen - C_val| over component pairs must be at most ``corr_factor``
    times that of |C_aux - C_val|, the latter scaled by sqrt((1/n_gen + 1/n_val) / (1/n_aux +
    1/n_val)): the sampling noise of a correlation difference for the sets' sizes, each n a set's
    effective size (:func:`effective_size`: its map count without parent ids, ``groups``).
    """
    cfg = config or CertificationConfig()
    g = as_stat(generated, "generated")
    v = as_stat(validation, "validation")
    x = as_stat(auxiliary, "auxiliary")
    cg = correlation_distance(g, v, cfg.corr_quantile)
    cb = correlation_distance(x, v, cfg.corr_quantile)
    scale, sizes = size_scale((g, v, x), groups)
    limit = cfg.corr_factor * cb["value"] * scale
    return Criterion(
        "correlation", bool(cg["value"] <= limit), cg["value"], limit, cb["value"],
        f"{cfg.corr_quantile:g} quantile of |C_generated - C_validation| over component pairs <= "
        f"{cfg.corr_factor:g} x the baseline's (x {scale:.3f} for set sizes: effective maps "
        f"{_sizes(sizes)}); largest: {cg['max']:.3f} (baseline {cb['max']:.3f})")


def _sizes(sizes: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:,.0f}" for k, v in sizes.items())


def covariance_criterion(blocks: dict[str, tuple], config: CertificationConfig | None = None,
                         groups: dict | None = None) -> tuple[list[Criterion], dict[str, Any]]:
    """Covariance fidelity: per statistic, the covariance across maps of generated vs validation
    against the baseline auxiliary vs validation (:func:`paper_repro.stats.covariance.compare`).

    ``blocks``: {statistic: (generated, validation, auxiliary)}, each (N, K). Per statistic three
    criteria, each ``value <= factor x baseline x scale`` with scale = sqrt((1/n_gen + 1/n_val) /
    (1/n_aux + 1/n_val)) (sampling noise for the sets' effective sizes, :func:`size_scale`; ``groups``:
    parent ids per set): ``<stat>:correlation_max`` (largest
    |R_gen - R_val| off the diagonal) and ``<stat>:correlation_rms`` (its rms over pairs: the whole
    matrix), factor ``cov_corr_factor``; ``<stat>:variance_ratio`` (largest |ln var_gen / var_val|),
    factor ``cov_variance_factor``. Components constant in any set are left out. Returns (criteria,
    detail: every number of both comparisons per statistic, with the worst off-diagonal relative
    error next to Armijo, Thiele & Liu's 2026 figures for a flow emulator).
    """
    cfg = config or CertificationConfig()
    criteria: list[Criterion] = []
    detail: dict[str, Any] = {}
    rules = (("correlation_max", "correlation_diff_max", cfg.cov_corr_factor,
              "largest |R_generated - R_validation| off the diagonal"),
             ("correlation_rms", "correlation_diff_rms", cfg.cov_corr_factor,
              "rms over component pairs of R_generated - R_validation (the whole correlation matrix)"),
             ("variance_ratio", "variance_log_ratio_max", cfg.cov_variance_factor,
              "largest |ln(var_generated / var_validation)| over components"))
    for stat, (gen, val, aux) in blocks.items():
        g, v, x = (as_stat(a, f"{stat} {n}") for a, n in zip((gen, val, aux), ("generated", "validation", "auxiliary")))
        keep = varying(g, v, x)
        cg, cb = compare(g, v, keep=keep), compare(x, v, keep=keep)
        scale, sizes = size_scale((g[:, keep], v[:, keep], x[:, keep]), groups)
        for name, key, factor, text in rules:
            limit = factor * cb[key] * scale
            criteria.append(Criterion(
                f"{stat}:{name}", bool(cg[key] <= limit) if math.isfinite(limit) else True, cg[key], limit,
                cb[key], f"{text} <= {factor:g} x the baseline's (x {scale:.3f} for set sizes: effective "
                f"maps {_sizes(sizes)})"))
        detail[stat] = {"generated_vs_validation": cg, "auxiliary_vs_validation": cb, "size_scale": scale,
                        "effective_sizes": sizes}
    worst = {k: d["generated_vs_validation"]["offdiag_relative_error_max"] for k, d in detail.items()}
    detail["worst_offdiag_relative_error"] = {
        "generated_vs_validation": worst,
        "auxiliary_vs_validation": {k: d["auxiliary_vs_validation"]["offdiag_relative_error_max"]
                                    for k, d in detail.items() if k in blocks},
        "note": f"max |C_gen,ij / C_val,ij - 1| over off-diagonal pairs with |R_val,ij| >= {MIN_CORRELATION:g}; for "
                "comparison, Armijo, Thiele & Liu (2026) report off-diagonal covariance errors up to 25% "
                "(about 10% typical) for a normalising-flow emulator of SLICS maps; the baseline is what "
                "an independent simulation set of these sizes gives"}
    return criteria, detail


def calibrate(generated, validation, auxiliary, *, statistic: str, labels: Sequence | None = None,
              config: CertificationConfig | None = None, correlation: bool = False,
              baseline_source: str = "auxiliary set",
              seed: int | np.random.Generator | None = None, groups: dict | None = None) -> Verdict:
    """Certify one statistic: is ``generated`` no more distinguishable from ``validation`` than ``auxiliary``?

    Each argument is that set's statistic, (N, K). The criteria (tolerances from ``config``):

    * ``ks_reject_fraction``, ``ad_reject_fraction``: fraction of tested components with
      bootstrap p < alpha, generated <= baseline + margin, the margin the larger of ``reject_margin``
      and ``reject_margin_sigmas`` x the spread of the baseline's fraction over its bootstrap replicates
      x sqrt(2 / parents) (:func:`replicate_spread`; crops of few parent maps move the fraction far
      more than a fixed margin allows);
    * ``ks_holm_min_p``, ``ad_holm_min_p``: Holm-adjusted valid bootstrap p, min >= holm_level;
    * ``mean_within_k_se``: max |mean difference| / standard error <= mean_k_sigma (the standard
      error cluster-robust over parent maps, see ``groups``; its t law with few parents turned into
      the normal z of the same tail probability, :func:`~paper_repro.stats.twosample.normal_equivalent`);
    * ``correlation`` (if ``correlation``): quantile of |C_gen - C_val| <= corr_factor x the
      baseline's quantile of |C_aux - C_val| (size-corrected).

    Both comparisons use the same subsample size n = min(bootstrap_maps, smallest set // 2) and
    independent streams of the same seed. Sets with fewer than ``min_maps`` maps raise PaperReproError.
    ``groups``: {"generated"|"validation"|"auxiliary": parent-map id of each map}; a set with ids
    gets cluster-robust standard errors and a bootstrap that resamples its parents
    (:func:`~paper_repro.stats.twosample.clustered_se`); a set without them is treated as
    independent draws (each map its own cluster, as a generator's maps are).
    """
    cfg = config or CertificationConfig()
    g = as_stat(generated, "generated")
    v = as_stat(validation, "validation")
    x = as_stat(auxiliary, "auxiliary")
    if not (g.shape[1] == v.shape[1] == x.shape[1]):
        raise PaperReproError(
            f"{statistic}: expected the same number of components in every set, found "
            f"{g.shape[1]} (generated), {v.shape[1]} (validation), {x.shape[1]} (auxiliary)")
    for name, s in (("generated", g), ("validation", v), ("auxiliary", x)):
        if s.shape[0] < cfg.min_maps:
            raise PaperReproError(
                f"{statistic}: {name} set has {s.shape[0]} maps, expected at least {cfg.min_maps} for the bootstrap")
    k = g.shape[1]
    labels = list(np.arange(k) if labels is None else np.asarray(labels).tolist())
    if len(labels) != k:
        raise PaperReproError(f"{statistic}: expected {k} labels, found {len(labels)}")
    # at most half of the smallest set, so that replicates differ and their mean settles
    n_sub = max(2, min(cfg.bootstrap_maps, min(g.shape[0], v.shape[0], x.shape[0]) // 2))
    ids = {name: (groups or {}).get(name) for name in ("generated", "validation", "auxiliary")}
    clusters = {name: "independent" if ids[name] is None else cluster_count(ids[name], s.shape[0])
                for name, s in (("generated", g), ("validation", v), ("auxiliary", x))}
    seed = cfg.seed if seed is None else seed
    ss = np.random.SeedSequence(seed) if not isinstance(seed, np.random.Generator) else None
    seeds = ss.spawn(2) if ss is not None else [seed, seed]
    gen_res = bootstrap_tests(g, v, n_sub=n_sub, replicates=cfg.bootstrap_replicates, alpha=cfg.alpha,
                              seed=np.random.default_rng(seeds[0]),
                              groups_a=ids["generated"], groups_b=ids["validation"])
    base_res = bootstrap_tests(x, v, n_sub=n_sub, replicates=cfg.bootstrap_replicates, alpha=cfg.alpha,
                               seed=np.random.default_rng(seeds[1]),
                               groups_a=ids["auxiliary"], groups_b=ids["validation"])
    # a component constant in one comparison but not the other is tested in both or neither
    const = gen_res.constant & base_res.constant

    criteria: list[Criterion] = []
    # independent units of the baseline: its sets' parent maps (their maps without parent ids)
    units = min(cluster_count(ids["auxiliary"], x.shape[0]), cluster_count(ids["validation"], v.shape[0]))
    for test in ("ks", "ad"):
        gv = getattr(gen_res, f"{test}_reject_fraction")
        bv = getattr(base_res, f"{test}_reject_fraction")
        spread = replicate_spread(base_res, test) * math.sqrt(2.0 / units)
        margin = max(cfg.reject_margin, cfg.reject_margin_sigmas * spread)
        limit = bv + margin
        criteria.append(Criterion(
            f"{test}_reject_fraction", bool(gv <= limit), gv, limit, bv,
            f"fraction of tested components with bootstrap {test.upper()} p < {cfg.alpha:g} (mean over "
            f"{cfg.bootstrap_replicates} replicates of {n_sub} maps) <= baseline + {margin:.3g}: the larger of "
            f"{cfg.reject_margin:g} and {cfg.reject_margin_sigmas:g} x the spread of the baseline's fraction over "
            f"its replicates x sqrt(2 / {units} parents) ({spread:.3g})"))
    for test in ("ks", "ad"):
        gv = smallest(getattr(gen_res, f"{test}_holm"))
        bv = smallest(getattr(base_res, f"{test}_holm"))
        criteria.append(Criterion(
            f"{test}_holm_min_p", bool(gv is None or gv >= cfg.holm_level), gv, cfg.holm_level, bv,
            f"smallest Holm-adjusted valid bootstrap {test.upper()} p, min(1, 2 x median), "
            f">= {cfg.holm_level:g}"))
    z, df = mean_z_df(g, v, ids["generated"], ids["validation"])
    zb, dfb = mean_z_df(x, v, ids["auxiliary"], ids["validation"])
    zt = normal_equivalent(z, df)[~const]
    zmax = float(zt.max()) if zt.size else 0.0
    zbt = normal_equivalent(zb, dfb)[~const]
    criteria.append(Criterion(
        "mean_within_k_se", bool(zmax <= cfg.mean_k_sigma), zmax, cfg.mean_k_sigma,
        float(zbt.max()) if zbt.size else 0.0,
        f"every component: |mean(generated) - mean(validation)| <= {cfg.mean_k_sigma:g} standard errors "
        f"(cluster-robust over parent maps where known; with few parents as the normal |z| of the same "
        f"Student-t tail probability, Welch-Satterthwaite degrees of freedom from the parent counts)"))
    if correlation:
        criteria.append(correlation_criterion(g, v, x, cfg, groups=ids))
    tallies = {
        "generated_vs_validation": {
            "ks": paper_tallies(gen_res.ks_median_p, cfg.tally_levels, statistic),
            "ad": paper_tallies(gen_res.ad_median_p, cfg.tally_levels, statistic)},
        "auxiliary_vs_validation": {
            "ks": paper_tallies(base_res.ks_median_p, cfg.tally_levels, statistic),
            "ad": paper_tallies(base_res.ad_median_p, cfg.tally_levels, statistic)},
    }
    return Verdict(
        statistic=statistic, passed=all(c.passed for c in criteria), criteria=criteria,
        baseline_source=baseline_source, n_generated=g.shape[0], n_validation=v.shape[0],
        n_auxiliary=x.shape[0], labels=labels, generated=gen_res, baseline=base_res,
        tallies=tallies, mean_z=list(z), config=cfg.to_dict(), clusters=clusters)


def replicate_spread(result: BootstrapResult, test: str) -> float:
    """Standard deviation over bootstrap replicates of the fraction of tested components with
    ``test`` ("ks" or "ad") p < alpha: how much the rejection fraction moves with the maps (parent maps,
    where known) a replicate draws; 0 with fewer than 2 replicates or no tested component.

    The rejection-fraction criteria's margin is ``reject_margin_sigmas`` x the baseline's spread x
    sqrt(2 / G), G the baseline's parent maps (its maps without parent ids): the baseline's, not the
    generated set's, which grows with the very difference under test. Why sqrt(2 / G): a replicate
    holds half of the parents, and its fraction moves mostly with which parents meet which, which does
    not shrink with more parents, while a whole set's fraction, the mean over many replicates, varies
    about as 1 / sqrt(G). Measured on independent simulation sets (difference generated - baseline over
    spread x sqrt(2 / G)): at 4 parents x 30 crops (12 triples, 96 rejection-fraction tests) standard
    deviation 1.0, largest 3.0 (in a difference under the 0.05 floor); at 20 parents x 200 crops of
    64^2 within +-1.6. Without parent ids G is the number of maps and the margin the fixed floor."""
    p = getattr(result, f"{test}_p")[:, ~result.constant]
    if p.shape[0] < 2 or p.shape[1] == 0:
        return 0.0
    # as bootstrap_tests: a component undefined in a replicate (NaN) counts as not rejected
    fractions = (np.where(np.isnan(p), 1.0, p) < result.alpha).mean(axis=1)
    return float(np.std(fractions, ddof=1))


def _fmt(v) -> str:
    """A number for a one-line summary (4 significant digits; n/a for None or NaN)."""
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4g}"
