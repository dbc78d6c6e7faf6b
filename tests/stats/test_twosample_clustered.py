"""paper_repro.stats.twosample with parent maps: cluster-robust standard errors match the spread of
means over independent draws (where the naive sqrt(var / N) falls short), their t law with few
parents, and a bootstrap that resamples parents."""
from __future__ import annotations

import numpy as np
import pytest

from paper_repro.config import SimulationConfig
from paper_repro.errors import PaperReproError
from paper_repro.maps.datasets import random_crops
from paper_repro.maps.simulation import get_simulator
from paper_repro.stats import twosample as C
from paper_repro.stats.paper import paper_statistics

PIX_DEG = 3.464 / 1024


def spread_check(values: np.ndarray, groups: np.ndarray) -> dict:
    """Over R independent draws (values (R, N, K)): the variance of the set means and the mean squared
    clustered and naive standard errors, with the Monte-Carlo error of their difference, per component."""
    r = values.shape[0]
    means = values.mean(axis=1)
    emp = means.var(axis=0, ddof=1)
    cl = np.stack([C.clustered_se(v, groups) ** 2 for v in values])
    naive = np.stack([C.clustered_se(v) ** 2 for v in values])
    # sampling error of a variance from R draws: sqrt((m4 - (R - 3) / (R - 1) emp^2) / R)
    m4 = ((means - means.mean(axis=0)) ** 4).mean(axis=0)
    err = np.sqrt(np.maximum(m4 - (r - 3) / (r - 1) * emp ** 2, 0) / r + cl.var(axis=0, ddof=1) / r)
    return {"emp": emp, "clustered": cl.mean(axis=0), "naive": naive.mean(axis=0), "err": err}


def test_clustered_se_is_the_naive_se_without_parents_and_checks_ids():
    x = np.random.default_rng(0).normal(size=(50, 3))
    np.testing.assert_allclose(C.clustered_se(x), x.std(axis=0, ddof=1) / np.sqrt(50), rtol=1e-12)
    np.testing.assert_allclose(C.clustered_se(x, np.arange(50) * 7), C.clustered_se(x), rtol=1e-12)
    assert C.cluster_count(None, 50) == 50 and C.cluster_count(np.repeat([3, 9], 25), 50) == 2
    with pytest.raises(PaperReproError, match="one parent map"):
        C.clustered_se(x, np.zeros(50, int))
    with pytest.raises(PaperReproError, match="50 integer parent-map ids"):
        C.clustered_se(x, np.arange(49))
    with pytest.raises(PaperReproError, match="integer"):
        C.clustered_se(x, np.linspace(0, 1, 50))


def test_clustered_se_matches_the_truth_of_a_random_effects_model():
    """x = u_parent + e_map: Var(mean) = s_u^2 / G + s_e^2 / (G m) exactly; the clustered SE is
    unbiased for it (equal clusters), the naive one falls short by about 1 + (m - 1) rho."""
    rng = np.random.default_rng(1)
    g, m, k, su, se = 5, 40, 3000, 0.4, 1.0            # k independent draws side by side (columns)
    groups = np.repeat(np.arange(g), m)
    x = su * rng.standard_normal((g, k))[groups] + se * rng.standard_normal((g * m, k))
    truth = su ** 2 / g + se ** 2 / (g * m)
    emp = x.mean(axis=0).var(ddof=1)
    cl = C.clustered_se(x, groups) ** 2
    naive = C.clustered_se(x) ** 2
    assert abs(emp / truth - 1) < 4 * np.sqrt(2 / (k - 1))                  # the draws are right
    assert abs(cl.mean() / truth - 1) < 4 * cl.std() / np.sqrt(k) / truth    # within its sampling error
    rho = su ** 2 / (su ** 2 + se ** 2)
    assert naive.mean() < 0.5 * truth and naive.mean() * (1 + (m - 1) * rho) == pytest.approx(truth, rel=0.1)
    # with 5 parents the z of a null difference follows t with about 2 (G - 1) = 8 df, not a normal law
    y = su * rng.standard_normal((g, k))[groups] + se * rng.standard_normal((g * m, k))
    z, df = C.mean_z_df(x, y, groups, groups)
    assert np.all((df > 4) & (df <= 8 + 1e-9))
    tail = np.mean(np.abs(z) > 3.0)
    assert tail > 3 * 2 * 0.00135                       # a normal law would give 0.27%
    assert np.mean(C.normal_equivalent(z, df) > 3.0) == pytest.approx(0.0027, abs=0.004)


def test_normal_equivalent():
    np.testing.assert_allclose(C.normal_equivalent([1.0, 4.0], 1e12), [1.0, 4.0], rtol=1e-6)
    assert C.normal_equivalent(4.0, 19) < 3.4 < C.normal_equivalent(4.0, 100) < 4.0
    out = C.normal_equivalent([np.inf, np.nan, -60.0], 3.0)
    assert np.isinf(out[0]) and np.isnan(out[1]) and out[2] > 4


def test_clustered_se_matches_the_spread_of_means_of_simulated_crops():
    """Crops of few parent maps from the package's simulator (3 parents of 128^2 x 30 crops of 32^2,
    200 independent draws): the clustered SE matches the spread of the set means within its own
    sampling error in every component; the naive SE falls well short."""
    r, g, m = 200, 3, 30
    sim = get_simulator(SimulationConfig(map_size=128, angle_deg=128 * PIX_DEG))
    rng = np.random.default_rng(2)
    maps = np.concatenate([random_crops(p, 32, m, rng)[0] for p in sim.maps(r * g, seed=35)]).astype(np.float32)
    st = paper_statistics(maps, 32 * PIX_DEG)
    flat = maps.reshape(len(maps), -1).astype(np.float64)
    x = np.concatenate([st["power_spectrum"][1], st["minkowski_functionals"][1],
                        flat.mean(axis=1, keepdims=True), flat.var(axis=1, keepdims=True)], axis=1)
    x = x[:, x.std(axis=0) > 0].reshape(r, g * m, -1)
    out = spread_check(x, np.repeat(np.arange(g), m))
    z = (out["clustered"] - out["emp"]) / out["err"]
    assert np.all(np.abs(z) < 4.5), np.sort(z)[[0, -1]]
    assert np.median(out["naive"] / out["emp"]) < 0.6
    assert np.median((out["naive"] - out["emp"]) / out["err"]) < -3


def test_bootstrap_resamples_parents():
    """With parent ids each replicate holds maps of a random half of the parents; without them the
    draws are as before (same seed, same result)."""
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(10), 20)
    a = rng.normal(size=(200, 2)) + groups[:, None]          # the parent is in the value
    b = rng.normal(size=(200, 2))
    plain = C.bootstrap_tests(a, b, n_sub=60, replicates=5, seed=4)
    again = C.bootstrap_tests(a, b, n_sub=60, replicates=5, seed=4, groups_a=None, groups_b=None)
    np.testing.assert_array_equal(plain.ks_p, again.ks_p)
    seen = []
    for seed in range(20):
        r = np.random.default_rng(seed)
        idx = C._subsample(r, C.cluster_codes(groups, 200), 200, 60)
        assert idx.size == 60 and np.unique(idx).size == 60
        seen.append(np.unique(groups[idx]).size)
    assert set(seen) == {5}
    clustered = C.bootstrap_tests(a, b, n_sub=60, replicates=5, seed=4, groups_a=groups)
    assert clustered.n_sub == 60 and not np.array_equal(clustered.ks_p, plain.ks_p)
    with pytest.raises(PaperReproError, match="groups_b"):
        C.bootstrap_tests(a, b, n_sub=60, groups_b=np.arange(5))
