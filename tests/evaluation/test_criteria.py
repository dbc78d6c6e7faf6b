"""paper_repro.evaluation.criteria: a generated set passes when it is no more distinguishable from the
validation set than an independent set, and fails shifted or decorrelated sets; verdicts serialise."""
from __future__ import annotations

import json

import numpy as np
import pytest

from paper_repro.config import CertificationConfig
from paper_repro.errors import PaperReproError
from paper_repro.evaluation.criteria import calibrate, correlation_criterion, effective_size


def toy_sets(seed, shift=0.0, n=200, k=12):
    rng = np.random.default_rng(seed)
    mix = np.eye(k) + 0.3 * rng.normal(size=(k, k))
    def draw(s):
        return np.exp(0.4 * rng.normal(size=(n, k)) @ mix.T) * (1 + s)
    return draw(shift), draw(0.0), draw(0.0)


FAST = CertificationConfig(bootstrap_maps=100, bootstrap_replicates=20)


def test_calibrate_passes_same_distribution_and_serialises():
    g, v, a = toy_sets(1)
    verdict = calibrate(g, v, a, statistic="power_spectrum", labels=np.arange(12) * 200.0 + 300,
                          config=FAST, correlation=True)
    assert verdict.passed, verdict.summary()
    names = [c.name for c in verdict.criteria]
    assert names == ["ks_reject_fraction", "ad_reject_fraction", "ks_holm_min_p", "ad_holm_min_p",
                     "mean_within_k_se", "correlation"]
    d = json.loads(verdict.to_json())
    assert d["passed"] is True and d["baseline_source"] == "auxiliary set"
    assert d["generated_vs_validation"]["n_sub"] == 100
    assert "not a pass criterion" in d["paper_style_tallies"]["generated_vs_validation"]["ks"]["label"]
    assert d["config"]["holm_level"] == FAST.holm_level
    again = calibrate(g, v, a, statistic="power_spectrum", config=FAST, correlation=True)
    assert again.to_dict()["criteria"] == calibrate(g, v, a, statistic="power_spectrum", config=FAST,
                                                      correlation=True).to_dict()["criteria"]


@pytest.mark.parametrize("shift,fails", [
    (0.15, {"ks_reject_fraction", "ad_reject_fraction"}),
    (0.30, {"ks_reject_fraction", "ad_reject_fraction", "ks_holm_min_p", "ad_holm_min_p", "mean_within_k_se"}),
])
def test_calibrate_fails_a_shifted_set(shift, fails):
    g, v, a = toy_sets(2, shift=shift)
    verdict = calibrate(g, v, a, statistic="toy", config=FAST)
    assert not verdict.passed
    assert fails <= set(verdict.failed)
    assert "FAIL" in verdict.summary()


def test_calibrate_fails_wrong_correlations():
    g, v, a = toy_sets(3)
    g = np.random.default_rng(9).permuted(g, axis=0)          # same marginals, no correlations
    verdict = calibrate(g, v, a, statistic="toy", config=FAST, correlation=True)
    assert verdict.failed == ["correlation"]


def test_calibrate_bad_input():
    g, v, a = toy_sets(4, n=60)
    with pytest.raises(PaperReproError, match="at least 100"):
        calibrate(g, v, a, statistic="toy", config=CertificationConfig(min_maps=100))
    with pytest.raises(PaperReproError, match="same number of components"):
        calibrate(g[:, :5], v, a, statistic="toy", config=FAST)


def test_correlation_criterion_alone_matches_the_verdicts():
    g, v, a = toy_sets(3)
    same = correlation_criterion(g, v, a, FAST)
    assert same.passed and same.name == "correlation" and same.value <= same.limit
    assert same.limit == pytest.approx(FAST.corr_factor * same.baseline)       # equal set sizes
    decorrelated = np.random.default_rng(9).permuted(g, axis=0)
    bad = correlation_criterion(decorrelated, v, a, FAST)
    assert not bad.passed and bad.value > bad.limit
    assert bad.to_dict()["passed"] is False and json.dumps(bad.to_dict(), allow_nan=False)


def parent_sets(rng, parents: int, per_parent: int, k: int = 12, spread: float = 0.8):
    """A statistic of crops of few parent maps whose correlations differ from parent to parent (each
    parent its own mixing of k components): (values, parent ids)."""
    base = np.eye(k) + 0.3 * np.random.default_rng(0).normal(size=(k, k))
    out = [rng.normal(size=(per_parent, k)) @ (base + spread * rng.normal(size=(k, k))).T for _ in range(parents)]
    return np.concatenate(out), np.repeat(np.arange(parents), per_parent)


def test_correlation_criterion_uses_effective_sizes_of_crops():
    """A generated set with 4 times the crops of as many parents is no less noisy in its correlations:
    scaled by raw map counts the limit shrinks (x 0.79) and independent sets fail (in 1 of 8 seeds);
    with the sets' effective sizes (design effect of the correlations' products) they do not."""
    raw = effective = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        (g, ig), (v, iv), (x, ix) = parent_sets(rng, 6, 160), parent_sets(rng, 6, 40), parent_sets(rng, 6, 40)
        raw += not correlation_criterion(g, v, x).passed
        crit = correlation_criterion(g, v, x, groups={"generated": ig, "validation": iv, "auxiliary": ix})
        effective += not crit.passed
        assert "effective maps" in crit.rule
        assert 6 <= effective_size(g, ig) < 0.5 * len(g) and effective_size(g) == len(g)
    assert raw >= 4 and effective <= 1, (raw, effective)     # measured: 5 of 40 and 0 of 40


def test_effective_size_of_independent_maps_is_about_their_number():
    g, _, _ = toy_sets(4, n=600)
    ids = np.repeat(np.arange(60), 10)                      # ids, but no parent effect
    assert 0.7 * len(g) < effective_size(g, ids) <= len(g)
