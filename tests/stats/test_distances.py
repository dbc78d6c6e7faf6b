"""paper_repro.stats.distances: exact k nearest rows and closest pairs, block by block, equal to brute
force even where float32 products alone would order them wrongly."""
import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.stats.distances import block_budget, check_level, check_vectors, closest_pairs, knn
from tests.helpers import smooth_maps
from tests.stats.references import brute_knn


def test_float32_products_are_rechecked_exactly():
    """Near-ties far below float32 resolution (|a|^2 ~ 1e4 x their gaps) still come out in exact order."""
    rng = np.random.default_rng(3)
    base = (10.0 + rng.standard_normal(256)).astype(np.float64)
    eps = rng.permutation(np.arange(1, 41)) * 1e-7
    ref = base[None, :] + eps[:, None] * rng.standard_normal((40, 256))
    ref = np.concatenate([ref, base[None, :] + 5.0 + rng.standard_normal((60, 256))])
    q = base[None, :] + 1e-9 * rng.standard_normal((1, 256))
    res = knn(q, ref, k=10, block_bytes=2**16)
    idx, d = brute_knn(q, ref, 10)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.distances, d, rtol=1e-9)
    # a plain float32 search gets this order wrong, so the test can fail
    q32, r32 = q.astype(np.float32), ref.astype(np.float32)
    naive = (q32 ** 2).sum(1)[:, None] + (r32 ** 2).sum(1)[None] - 2 * q32 @ r32.T
    assert not np.array_equal(np.argsort(naive, axis=1, kind="stable")[:, :10], idx)


def test_knn_exclude_self():
    x = smooth_maps(40, 8, seed=6).reshape(40, -1)
    res = knn(x, x, k=2, exclude_self=True)
    d = np.sqrt(((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    np.testing.assert_array_equal(res.indices, np.argsort(d, axis=1, kind="stable")[:, :2])
    assert (res.indices != np.arange(40)[:, None]).all()


def test_closest_pairs_equal_brute_force():
    x = smooth_maps(70, 8, seed=30)
    x[50] = x[3] + 1e-4
    d = np.sqrt(((x.reshape(70, 1, -1).astype(np.float64) - x.reshape(1, 70, -1)) ** 2).sum(-1))
    iu = np.triu_indices(70, 1)
    order = np.lexsort((iu[1], iu[0], d[iu]))[:7]
    tau = float(np.quantile(d[iu], 0.02))
    res = closest_pairs(x, 7, threshold=tau, block_bytes=2**16)
    np.testing.assert_array_equal(res.i, iu[0][order])
    np.testing.assert_array_equal(res.j, iu[1][order])
    np.testing.assert_allclose(res.distances, d[iu][order], rtol=1e-10)
    assert (res.i[0], res.j[0]) == (3, 50)
    assert res.n_below == int((d[iu] < tau).sum())


def test_bad_input_raises():
    bad = smooth_maps(10, 16, seed=50)
    bad[7, 3, 3] = np.nan
    with pytest.raises(PaperReproError, match="contains NaN"):
        closest_pairs(bad)
    with pytest.raises(PaperReproError, match="n_pairs"):
        closest_pairs(smooth_maps(4, 8, seed=1), 0)
    with pytest.raises(PaperReproError, match="exclude_self: queries and reference must be one set"):
        knn(np.ones((3, 4)), np.ones((5, 4)), exclude_self=True)
    with pytest.raises(PaperReproError, match="block_bytes"):
        block_budget(1000)
    with pytest.raises(PaperReproError, match="alpha: expected a number in"):
        check_level(1.5, "alpha")
    with pytest.raises(PaperReproError, match=r"x: expected vectors of shape \(N, D\)"):
        check_vectors(np.ones(3), "x")
