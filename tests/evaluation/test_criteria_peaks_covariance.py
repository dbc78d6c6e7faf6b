"""The peak-count and covariance criteria pass independent simulations and catch what the older miss.

Sets of 600 crops of 64^2 (6 parent maps each) from the simulator, as in test_certification.py.
Planted defects:

* flattened high peaks: each map's 1-arcmin smoothed part clipped at 2.5 sigma (the small scales
  kept), so peaks above 2.5 sigma vanish while the pixel histogram, P(ell) and the (unsmoothed)
  Minkowski functionals change too little for their criteria to see;
* shuffled covariance: each component of the Minkowski functionals and of the peak counts permuted
  independently across maps, which keeps every value of every component (so every per-component
  test, mean and variance) and destroys their correlations.
"""
import json

import numpy as np
import pytest

from paper_repro.config import CertificationConfig
from paper_repro.errors import PaperReproError
from paper_repro.evaluation import certification
from paper_repro.evaluation.criteria import calibrate
from paper_repro.stats import peaks
from tests.helpers import ANGLE, crops

OLDER = ("pixel_intensity", "power_spectrum", "minkowski_functionals")


def _flatten_high_peaks(maps, sigma, level=2.5):
    """Maps whose smoothed part is clipped at ``level`` x ``sigma``: too few high peaks."""
    low = peaks.smooth(maps, ANGLE)
    return (maps - low + np.minimum(low, level * sigma)).astype(np.float32)


@pytest.fixture(scope="module")
def sets():
    maps = {"validation": crops(1), "auxiliary": crops(2), "independent": crops(3), "independent_2": crops(7)}
    sigma = peaks.reference_sigma(maps["validation"], ANGLE)
    maps["flat_peaks"] = _flatten_high_peaks(maps["independent"], sigma)
    edges = certification.pixel_edges(maps["validation"])
    stats = {k: certification.statistics_of(m, ANGLE, edges) for k, m in maps.items()}
    for k, m in maps.items():
        stats[k]["peak_counts"] = peaks.extremum_counts(m, ANGLE, sigma)
    return maps, stats


def _verdict(stats, gen, stat):
    return calibrate(stats[gen][stat][1], stats["validation"][stat][1], stats["auxiliary"][stat][1],
                     statistic=stat, labels=stats["validation"][stat][0], correlation=(stat == "power_spectrum"))


def _covariance(maps, stats, gen_stats):
    inputs = certification.Inputs(maps["independent"], maps["validation"], maps["auxiliary"], ANGLE, "auxiliary set")
    both = {"generated": gen_stats, "validation": stats["validation"], "auxiliary": stats["auxiliary"]}
    return certification.covariance_entry(both, inputs, CertificationConfig())


@pytest.mark.parametrize("gen", ["independent", "independent_2"])
def test_independent_simulations_pass_both(sets, gen):
    maps, stats = sets
    v = _verdict(stats, gen, "peak_counts")
    assert v.passed, v.summary()
    entry = _covariance(maps, stats, stats[gen])
    assert entry["passed"], entry["headline"]
    assert len(entry["criteria"]) == 9
    json.dumps(entry, allow_nan=False)


def test_too_few_high_peaks_fail_peak_counts_and_no_older_criterion(sets):
    maps, stats = sets
    v = _verdict(stats, "flat_peaks", "peak_counts")
    assert not v.passed and "mean_within_k_se" in v.failed, v.summary()
    z = dict(zip(v.labels, v.mean_z))
    assert z["peak@[4,10)"] < -4 and z["peak@[3.5,4)"] < -3      # the missing peaks are the high ones
    for stat in OLDER:
        old = _verdict(stats, "flat_peaks", stat)
        assert old.passed, old.summary()


def _shuffled(stat, seed, fraction=1.0):
    """``stat`` with each component permuted independently over a random ``fraction`` of the maps."""
    rng = np.random.default_rng(seed)
    labels, x = stat
    x = x.copy()
    rows = np.flatnonzero(rng.random(len(x)) < fraction)
    for j in range(x.shape[1]):
        x[rows, j] = x[rng.permutation(rows), j]
    return labels, x


def test_shuffled_covariance_fails_covariance_and_no_older_criterion(sets):
    maps, stats = sets
    gen = dict(stats["independent"])
    gen["minkowski_functionals"] = _shuffled(gen["minkowski_functionals"], 11)
    gen["peak_counts"] = _shuffled(gen["peak_counts"], 12)
    for stat in ("minkowski_functionals", "peak_counts"):
        np.testing.assert_array_equal(np.sort(gen[stat][1], axis=0), np.sort(stats["independent"][stat][1], axis=0))
    shuffled = {"generated": gen, "validation": stats["validation"], "auxiliary": stats["auxiliary"]}
    for stat in OLDER + ("peak_counts",):
        old = calibrate(*(shuffled[k][stat][1] for k in ("generated", "validation", "auxiliary")),
                        statistic=stat, correlation=(stat == "power_spectrum"))
        assert old.passed, old.summary()
    entry = _covariance(maps, stats, gen)
    failed = {c["name"] for c in entry["criteria"] if not c["passed"]}
    assert not entry["passed"]
    assert {"minkowski_functionals:correlation_max", "minkowski_functionals:correlation_rms"} <= failed
    assert not any(name.startswith("power_spectrum") for name in failed)   # P(ell) was left alone
    rel = entry["detail"]["minkowski_functionals"]["generated_vs_validation"]
    assert rel["offdiag_relative_error_mean_signed"] < -0.8          # the covariances are gone


def test_correlations_a_quarter_too_low_fail_covariance(sets):
    """Armijo et al.'s failure mode: right means and variances, off-diagonal covariance ~25% too low."""
    maps, stats = sets
    gen = dict(stats["independent"])
    gen["minkowski_functionals"] = _shuffled(gen["minkowski_functionals"], 13, fraction=0.25)
    entry = _covariance(maps, stats, gen)
    assert not entry["passed"], entry["headline"]
    d = entry["detail"]
    assert d["minkowski_functionals"]["generated_vs_validation"]["offdiag_relative_error_mean_signed"] < -0.15
    worst = d["worst_offdiag_relative_error"]
    assert set(worst["generated_vs_validation"]) == {"power_spectrum", "minkowski_functionals", "peak_counts"}
    assert "Armijo" in worst["note"]


def test_bad_settings_are_one_line_errors():
    for bad in ({"cov_bands": 0}, {"cov_corr_factor": 0.0}, {"peak_smoothing_arcmin": -1.0}):
        with pytest.raises(PaperReproError, match=next(iter(bad))):
            CertificationConfig(**bad)
