"""paper_repro.stats.twosample: two-sample tests against SciPy, full-range AD p-values, null uniformity, bootstrap."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from paper_repro.errors import PaperReproError
from paper_repro.stats import twosample as C


def samples(rng, n, m, k, ties=0):
    a = rng.normal(size=(n, k))
    b = rng.normal(0.15, 1.1, size=(m, k))
    if ties:                                                  # discrete components (ties within and across)
        a[:, :ties] = np.round(2 * a[:, :ties])
        b[:, :ties] = np.round(2 * b[:, :ties])
    return a, b


# --- the tests themselves --------------------------------------------------------------------------------

@pytest.mark.parametrize("n,m", [(40, 40), (57, 31), (200, 120)])
def test_ks_matches_scipy(n, m):
    a, b = samples(np.random.default_rng(n + m), n, m, 30, ties=8)
    d, p = C.ks_test(a, b)
    for j in range(a.shape[1]):
        r = scipy.stats.ks_2samp(a[:, j], b[:, j])
        assert d[j] == pytest.approx(r.statistic, abs=1e-12)
        assert p[j] == pytest.approx(r.pvalue, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("n,m", [(40, 40), (57, 31), (200, 120)])
def test_ad_statistic_matches_scipy(n, m):
    a, b = samples(np.random.default_rng(7 * n + m), n, m, 30, ties=8)
    t, p = C.ad_test(a, b)
    for j in range(a.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                   # SciPy: p capped / floored
            r = scipy.stats.anderson_ksamp([a[:, j], b[:, j]], variant="midrank")
        assert t[j] == pytest.approx(r.statistic, rel=1e-10, abs=1e-10)
        if 0.002 < r.pvalue < 0.24:                           # inside SciPy's interpolation table
            assert p[j] == pytest.approx(r.pvalue, rel=0.05)


def test_ad_pvalues_are_full_range():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(300, 3))
    b = rng.normal(size=(300, 3)) + np.array([0.0, 0.4, 1.0])
    b[:, 0] = a[::-1, 0]                                      # identical samples: p near 1
    _, p = C.ad_test(a, b)
    assert p[0] > 0.99 and 1e-6 < p[1] < 1e-3 and p[2] < 1e-20
    sf = C.adinf_sf(np.linspace(0.01, 40, 4000))
    assert np.all(np.diff(sf) <= 0) and np.all(np.diff(sf[20:]) < 0) and sf[0] == 1.0   # monotone


def imhof_sf(x, terms=4000):
    """P(A2_inf > x) by numerical inversion of the characteristic function (Imhof 1961)."""
    j = np.arange(1, terms + 1)
    lam = 1.0 / (j * (j + 1.0))
    x = x - (1.0 - lam.sum())                                 # the neglected terms' mean

    def f(u):
        theta = 0.5 * np.arctan(lam * u).sum() - 0.5 * x * u
        rho = np.exp(0.25 * np.log1p((lam * u) ** 2).sum())
        return math.sin(theta) / (u * rho)

    return 0.5 + scipy.integrate.quad(f, 0, np.inf, limit=500)[0] / math.pi


@pytest.mark.parametrize("z", [0.3, 1.0, 2.49, 3.9, 4.5, 6.0, 9.0, 13.0])
def test_adinf_tail_against_imhof(z):
    assert C.adinf_sf(np.array([z]))[0] == pytest.approx(imhof_sf(z), rel=3e-3)


def test_pvalues_uniform_under_the_null():
    """Many null components at once: AD p uniform (KS test of uniformity); exact KS p valid."""
    rng = np.random.default_rng(2024)
    k = 3000
    a = rng.standard_normal((80, k))
    b = rng.standard_normal((80, k))
    _, pk = C.ks_test(a, b)
    _, pa = C.ad_test(a, b)
    assert scipy.stats.kstest(pa, "uniform").pvalue > 1e-3
    for alpha in (0.01, 0.05, 0.1, 0.5):
        se = math.sqrt(alpha * (1 - alpha) / k)
        assert abs((pa <= alpha).mean() - alpha) < 4 * se
        # KS p is discrete (exact test): P(p <= alpha) <= alpha, and not far below
        assert (pk <= alpha).mean() <= alpha + 4 * se
        assert (pk <= alpha).mean() >= 0.5 * alpha - 4 * se


def test_bootstrap_valid_p_is_valid_under_the_null():
    rng = np.random.default_rng(5)
    k = 600
    res = C.bootstrap_tests(rng.standard_normal((120, k)), rng.standard_normal((120, k)),
                            n_sub=60, replicates=15, seed=1)
    for p in (res.ks_valid_p, res.ad_valid_p):
        for alpha in (0.05, 0.1, 0.2):
            assert (p <= alpha).mean() <= alpha + 4 * math.sqrt(alpha / k)
    # the rejection fraction of valid per-replicate tests is ~alpha under the null
    assert res.ad_reject_fraction == pytest.approx(0.05, abs=0.03)


def test_holm_known_example():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    adj = C.holm(p)
    np.testing.assert_allclose(adj[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adj[4])
    np.testing.assert_array_equal(C.holm([0.5, 0.9]), [1.0, 1.0])
    assert np.isnan(C.holm([np.nan])).all()


# --- bootstrap --------------------------------------------------------------------------------------------

def test_bootstrap_reproducible_and_constant_components():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(90, 6)), rng.normal(size=(70, 6))
    a[:, 2] = b[:, 2] = 0.0                                   # an empty ell bin
    r1 = C.bootstrap_tests(a, b, n_sub=50, replicates=12, seed=42)
    r2 = C.bootstrap_tests(a, b, n_sub=50, replicates=12, seed=42)
    r3 = C.bootstrap_tests(a, b, n_sub=50, replicates=12, seed=43)
    np.testing.assert_array_equal(r1.ks_p, r2.ks_p)
    np.testing.assert_array_equal(r1.ad_p, r2.ad_p)
    assert not np.array_equal(r1.ad_p, r3.ad_p, equal_nan=True)
    assert r1.constant.tolist() == [False, False, True, False, False, False]
    assert np.isnan(r1.ks_median_p[2]) and np.isnan(r1.ad_holm[2]) and r1.tested == 5
    d = r1.to_dict(labels=[300, 500, 700, 900, 1100, 1300])
    json.dumps(d, allow_nan=False)
    assert d["components"]["ks_median_p"][2] is None and d["constant_components"] == 1


def test_bootstrap_bad_sizes():
    a = np.zeros((10, 3)) + np.arange(10)[:, None]
    with pytest.raises(PaperReproError, match="n_sub"):
        C.bootstrap_tests(a, a, n_sub=11)
    with pytest.raises(PaperReproError, match="same number of components"):
        C.bootstrap_tests(a, a[:, :2])
    with pytest.raises(PaperReproError, match="NaN"):
        C.bootstrap_tests(a, np.full((10, 3), np.nan))


# --- summaries ----------------------------------------------------------------------------------------------

def test_paper_tallies_are_labelled():
    t = C.paper_tallies(np.array([0.995, 0.999, 0.96, 0.5, np.nan]), label="modes")
    assert t["counts"] == {"p>0.99": 2, "p>0.95": 3, "p>0.9": 3, "p>0.8": 3}
    assert "not a pass criterion" in t["label"] and "p > 0.99 in 2 of 4 modes" in t["text"]


def test_histogram_chi2():
    rng = np.random.default_rng(1)
    ref = rng.lognormal(size=(500, 4))
    d, total = C.histogram_chi2(ref, ref, bins=10)
    assert total == 0 and np.all(d == 0)
    d, _ = C.histogram_chi2(ref * 1000.0, ref, bins=10)       # all generated values in the top bin
    assert np.all(d > 0.8)
    near, _ = C.histogram_chi2(rng.lognormal(size=(500, 4)), ref, bins=10, log=True)
    far, _ = C.histogram_chi2(rng.lognormal(0.5, size=(500, 4)), ref, bins=10, log=True)
    assert np.all(near < far)


def test_split_reference():
    a, b = C.split_reference(11, seed=3)
    assert len(a) == len(b) == 5 and not set(a) & set(b)
    np.testing.assert_array_equal(a, C.split_reference(11, seed=3)[0])


def test_mean_z():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(400, 3)) + [0, 0, 1]
    v = rng.normal(size=(400, 3))
    z = C.mean_z(g, v)
    assert abs(z[0]) < 4 and abs(z[1]) < 4 and z[2] > 10


def test_compare_fourier_modes_finds_an_oriented_excess_rings_hide():
    compare_fourier_modes = C.compare_fourier_modes
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((400, 32, 32))
    gen = rng.standard_normal((400, 32, 32))
    null = compare_fourier_modes(gen, ref, top=5, grid_period=4)
    assert len(null["worst"]) == 5 and max(abs(m["z"]) for m in null["worst"]) < 6
    # each mode once (k and -k are one): of the 15 nonzero grid modes (multiples of 8), 3 are their
    # own conjugates ((0, 16), (16, 0), (16, 16)) and 12 form 6 pairs
    assert null["grid"]["modes"] == 9
    # a random-phase wave at (5, 3) in every map: more power there, no fixed pattern
    x = np.arange(32)
    phase = rng.uniform(0, 2 * np.pi, 400)[:, None, None]
    wave = 0.1 * np.cos(2 * np.pi * (5 * x[:, None] + 3 * x[None, :]) / 32 + phase)
    out = compare_fourier_modes(gen + wave, ref, top=3, grid_period=4)
    assert out["worst"][0]["k"] in ([5, 3], [-5, -3]) and out["worst"][0]["z"] > 10
    assert not out["worst"][0]["grid"]
    ring = [r for r in out["rings"] if r["k_min"] <= np.hypot(5, 3) < r["k_max"]][0]
    assert ring["ratio"] < 1.1 and out["worst"][0]["ratio"] > 3      # diluted in its ring
    assert out["fixed_pattern_rms"]["generated"] < 1.5 * out["fixed_pattern_rms"]["noise_generated"]
    with pytest.raises(PaperReproError, match="grid_period must divide"):
        compare_fourier_modes(gen, ref, grid_period=5)
    with pytest.raises(PaperReproError, match="only be compared at one size"):
        compare_fourier_modes(gen, ref[:, :16, :16])


def test_as_stat_and_smallest():
    assert C.as_stat([1.0, 2.0, 3.0], "x").shape == (3, 1)
    with pytest.raises(PaperReproError, match="x: contains NaN"):
        C.as_stat([[1.0], [np.nan]], "x")
    with pytest.raises(PaperReproError, match="N >= 2"):
        C.as_stat([[1.0, 2.0]], "x")
    assert C.smallest(np.array([np.nan, 0.3, 0.1])) == 0.1 and C.smallest(np.array([np.nan])) is None

