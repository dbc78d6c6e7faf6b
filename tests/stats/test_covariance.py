"""Covariance comparison of statistics across maps: known covariances, shuffles, LensTools bands."""
import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.stats import covariance
from paper_repro.stats.power import power_spectrum


def _normal(n, cov, seed):
    return np.random.default_rng(seed).multivariate_normal(np.zeros(len(cov)), cov, size=n)


def _cov(var, rho):
    s = np.sqrt(np.asarray(var, dtype=float))
    r = np.array([[1.0, rho[0], rho[1]], [rho[0], 1.0, rho[2]], [rho[1], rho[2], 1.0]])
    return r * np.outer(s, s)


def test_known_differences_are_measured():
    n = 40_000                                  # standard errors of ~0.01 on these numbers
    ref = _normal(n, _cov([1, 1, 1], [0.8, 0.5, 0.4]), 1)
    same = covariance.compare(_normal(n, _cov([1, 1, 1], [0.8, 0.5, 0.4]), 2), ref)
    off = covariance.compare(_normal(n, _cov([4, 1, 1], [0.5, 0.5, 0.4]), 3), ref)
    np.testing.assert_allclose(covariance._cov(ref[:100]), np.cov(ref[:100], rowvar=False), rtol=1e-12)
    assert same["components"] == 3 and same["pairs"] == 3
    assert same["variance_log_ratio_max"] < 0.05 and same["correlation_diff_max"] < 0.03
    assert same["offdiag_relative_error_max"] < 0.06
    assert off["variance_log_ratio_max"] == pytest.approx(np.log(4), abs=0.05)
    assert off["variance_ratio_max"] == pytest.approx(4, rel=0.05)
    assert off["correlation_diff_max"] == pytest.approx(0.3, abs=0.03)
    # C_01 = 0.5 x 2 x 1 = 1.0 against 0.8: +25%; C_02 = 0.5 x 2 against 0.5: +100%; C_12 equal
    assert off["offdiag_relative_error_max"] == pytest.approx(1.0, abs=0.08)
    assert off["offdiag_pairs_used"] == 3
    assert off["correlation_diff_rms"] == pytest.approx(0.3 / np.sqrt(3), abs=0.02)


def test_shuffling_each_component_keeps_marginals_and_destroys_correlations():
    ref = _normal(5000, _cov([1, 2, 3], [0.8, 0.6, 0.7]), 4)
    rng = np.random.default_rng(5)
    shuffled = np.stack([rng.permutation(col) for col in ref.T], axis=1)
    np.testing.assert_array_equal(np.sort(shuffled, axis=0), np.sort(ref, axis=0))
    r = covariance.compare(shuffled, ref)
    assert r["variance_log_ratio_max"] < 1e-12              # the same values, so the same variances
    assert r["correlation_diff_max"] > 0.6 and r["offdiag_relative_error_mean_signed"] < -0.9


def test_constant_components_are_left_out_and_pairs_need_correlation():
    a = _normal(500, _cov([1, 1, 1], [0.0, 0.0, 0.0]), 6)
    b = _normal(500, _cov([1, 1, 1], [0.0, 0.0, 0.0]), 7)
    a[:, 1] = b[:, 1] = 0.0
    r = covariance.compare(a, b)
    assert r["components"] == 2 and r["pairs"] == 1
    assert r["offdiag_pairs_used"] == 0 and np.isnan(r["offdiag_relative_error_max"])
    assert np.isfinite(r["correlation_diff_rms"])


def test_power_bands_are_lenstools_power_at_the_band_edges():
    maps = np.random.default_rng(8).standard_normal((4, 64, 64)) * 0.02
    angle = 64 * 3.464 / 1024
    _, p = power_spectrum(maps, angle)
    centres, bands = covariance.power_bands(p, 64, angle, n_bands=12)
    edges = covariance.band_edges(12)
    _, direct = power_spectrum(maps, angle, edges)
    np.testing.assert_allclose(bands, direct, rtol=1e-12)
    assert len(centres) == bands.shape[1] == len(edges) - 1
    assert np.all(np.diff(edges) > 0) and 8 <= len(edges) - 1 <= 12


def test_bad_input_is_one_line_error():
    good = np.ones((10, 3)) + np.arange(30).reshape(10, 3) ** 1.5
    with pytest.raises(PaperReproError, match="same number of components"):
        covariance.compare(good, good[:, :2])
    with pytest.raises(PaperReproError, match="NaN"):
        covariance.compare(good, np.full((10, 3), np.nan))
    with pytest.raises(PaperReproError, match="ell bins"):
        covariance.power_bands(good, 64, 0.2)
