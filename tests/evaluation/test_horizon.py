"""paper_repro.evaluation.horizon: the indistinguishability horizon n* of each criterion. Independent
simulation sets come out unbounded (n* >= the maps at hand); a real difference gets a finite n* that
predicts where the criterion starts failing, and that shrinks as the difference grows."""
from __future__ import annotations

import html
import math
import re

import numpy as np
import pytest

from paper_repro.config import CertificationConfig
from paper_repro.evaluation import certification, html_report
from paper_repro.evaluation.horizon import crossing, mean_horizon, noise_floor, scaling_horizon
from paper_repro.stats.twosample import mean_z
from tests.evaluation.test_certification_calibration import small_maps
from tests.helpers import ANGLE

K = 40


def gaussian_sets(seed: int, n: int, shift: float = 0.0, parents: int | None = None):
    """Generated, validation and auxiliary statistics (n, K): correlated Gaussian components; the
    generated set's means off by ``shift`` x (0..1) standard deviations; with ``parents``, maps of one
    parent share half their variance (crops of few parent maps)."""
    rng = np.random.default_rng(seed)
    mix = np.eye(K) + 0.2 * np.random.default_rng(0).normal(size=(K, K))

    def draw(s):
        x = rng.normal(size=(n, K))
        if parents:
            x = (x + rng.normal(size=(parents, K))[np.arange(n) * parents // n]) / math.sqrt(2)
        return x @ mix.T + s * np.linspace(0.0, 1.0, K) * np.sqrt((mix ** 2).sum(axis=1))

    return draw(shift), draw(0.0), draw(0.0)


def test_scaling_formula():
    """n* = n (k^2 - b^2) / (z^2 - b^2): exactly n at the limit, below n past it, interval from z +- 1;
    a worst |z| within 1 of the noise floor resolves nothing (unbounded, at least the lower end)."""
    at_limit = scaling_horizon(1000, 4.0, 4.0, 2.5)
    assert at_limit.estimate == pytest.approx(1000.0) and at_limit.lower < 1000 < at_limit.upper
    past = scaling_horizon(1000, 6.0, 4.0, 3.0)
    assert past.estimate == pytest.approx(1000 * 7 / 27)
    assert past.lower == pytest.approx(1000 * 7 / 40) and past.upper == pytest.approx(1000 * 7 / 16)
    noise = scaling_horizon(1000, 3.5, 4.0, 3.0)
    assert math.isinf(noise.estimate) and noise.bounded_by_data and noise.lower == pytest.approx(1000 * 7 / 11.25)
    assert noise.text().startswith("n* >= 622, unbounded")
    assert "interval" in past.text() and past.to_dict()["bounded_by_data"] is False


def test_noise_floor_is_the_worst_z_of_independent_sets():
    """The multiplier bootstrap's median worst |z| matches the worst |z| of fresh independent sets."""
    g, v, _ = gaussian_sets(1, 400)
    floor = np.median(noise_floor(g, v, draws=400, seed=0))
    fresh = [np.abs(mean_z(*gaussian_sets(100 + s, 400)[:2])).max() for s in range(60)]
    assert abs(floor - np.median(fresh)) < 0.25, (floor, np.median(fresh))


@pytest.mark.parametrize("parents", [None, 20])
def test_independent_sets_are_unbounded(parents):
    """Independent sets (maps, or crops of 20 parents with their ids): n* is unbounded by the data in at
    least 9 of 10 seeds (nothing beyond noise resolved) and its lower end is about n or more."""
    n = 2000
    rows = []
    for seed in range(10):
        g, v, x = gaussian_sets(seed, n, parents=parents)
        ids = None if parents is None else np.arange(n) * parents // n
        h = mean_horizon(g, v, x, {"generated": ids, "validation": ids}, draws=300, seed=seed)
        rows.append((h.bounded_by_data, h.lower))
    assert sum(b for b, _ in rows) >= 9, rows
    assert np.median([lo for _, lo in rows]) >= 0.7 * n, rows


def test_finite_horizon_shrinks_as_the_shift_grows():
    """A shift resolved at n = 1,000 maps gets a finite n*, about 4 times smaller at twice the shift."""
    est = [mean_horizon(*gaussian_sets(seed, 1000, 0.1), draws=300, seed=seed) for seed in range(6)]
    larger = [mean_horizon(*gaussian_sets(seed, 1000, 0.2), draws=300, seed=seed) for seed in range(6)]
    assert sum(not h.bounded_by_data for h in est) >= 5 and all(not h.bounded_by_data for h in larger)
    ratio = np.median([h.estimate for h in est]) / np.median([h.estimate for h in larger])
    assert 2.5 < ratio < 6.5, ([h.text() for h in est], [h.text() for h in larger])


@pytest.mark.slow
def test_finite_horizon_predicts_where_the_criterion_fails_and_shrinks():
    """A small shift, resolved at n = 1,000 maps where the criterion still passes: the median n* over
    seeds is within a factor 2 of the size at which fresh sets fail the 4-sigma mean criterion half the
    time (interpolated in log size), the z +- 1 interval covers that size in most seeds, and n* shrinks
    as the shift grows (about as 1 / shift^2)."""
    n, shift = 1000, 0.08
    sizes = (1000, 2000, 3000, 4000, 6000)
    rates = [np.mean([np.abs(mean_z(*gaussian_sets(500 + s, m, shift)[:2])).max() <= 4 for s in range(30)])
             for m in sizes]
    i = next(i for i, r in enumerate(rates) if r < 0.5)
    assert i > 0, rates
    t = (rates[i - 1] - 0.5) / (rates[i - 1] - rates[i])
    true = math.exp(math.log(sizes[i - 1]) + t * math.log(sizes[i] / sizes[i - 1]))
    est, covered = [], 0
    for seed in range(12):
        h = mean_horizon(*gaussian_sets(seed, n, shift), draws=300, seed=seed)
        est.append(h.estimate)
        covered += h.lower <= true <= h.upper
    assert true / 2 <= np.median(est) <= 2 * true, (true, est)
    assert covered >= 8, (true, covered)
    larger = [mean_horizon(*gaussian_sets(seed, n, 2 * shift), draws=300, seed=seed).estimate for seed in range(6)]
    assert np.median(larger) < np.median(est) / 2.5, (larger, est)


def test_crossing_of_subsampled_pass_rates():
    """Subsampling: n* where the pass rate falls below 1/2, between the sizes around it; >= n when the
    test passes at every size; below the smallest size when it fails there already."""
    h = crossing(800, {0.25: (200.0, 1.0), 0.5: (400.0, 0.0)}, passed=False)
    assert h.lower == 200 and h.upper == 400 and h.estimate == pytest.approx(math.sqrt(200 * 400))
    assert crossing(800, {0.5: (400.0, 1.0)}, passed=True).bounded_by_data
    low = crossing(800, {0.25: (200.0, 0.0)}, passed=False)
    assert math.isnan(low.estimate) and low.upper == 200 and low.text() == "n* < 200 (subsampling)"


FAST = CertificationConfig(bootstrap_maps=100, bootstrap_replicates=20)


class Certified(dict):
    """Certifications of 200 whole 64^2 maps by the factor applied to the generated set, made on first use."""

    def __missing__(self, factor):
        val, aux, gen = small_maps(201), small_maps(202), small_maps(203)
        self[factor] = certification.certify(certification.prepare(gen * factor, val, aux, angle_deg=ANGLE),
                                             FAST, memorisation=False)
        return self[factor]


@pytest.fixture(scope="module")
def scaled_reports():
    """An independent simulation set (factor 1) and the same maps x 1.03 and x 1.08 as the generated
    set (a small real difference, and a larger one)."""
    return Certified()


def test_certification_reports_horizons(scaled_reports):
    """Every criterion has its n* in the JSON report and the summary; an independent simulation set
    gets n* >= the maps at hand for every criterion; the HTML verdict table shows it; the extra time
    is reported and small."""
    rep = scaled_reports[1.0]
    d = rep.to_dict()
    page = html_report.render_html(d)
    for name, c in d["criteria"].items():
        h = c["horizon"]
        assert h["n"] == 200 and h["bounded_by_data"] and h["estimate"] is None and h["lower"] > 100, (name, h)
        assert h["text"] in d["summary"]
        assert html.escape(h["text"]) in re.search(rf'<tr id="verdict-{name}">(.*?)</tr>', page, re.S).group(1)
    assert 0 < d["descriptive"]["horizon_seconds"] < 0.5 * rep.seconds


@pytest.mark.slow
def test_horizon_shrinks_as_the_difference_grows(scaled_reports):
    """Maps scaled by 1.03 and by 1.08: the power spectrum's and the pixel histograms' n* are finite
    and smaller for the larger difference."""
    for name in ("power_spectrum", "pixel_intensity"):
        small = scaled_reports[1.03].criteria[name]["horizon"]
        large = scaled_reports[1.08].criteria[name]["horizon"]
        assert not small["bounded_by_data"] and not large["bounded_by_data"], (name, small, large)
        first = small["estimate"] if small["estimate"] is not None else small["upper"]
        assert large["upper"] < first, (name, small["text"], large["text"])
