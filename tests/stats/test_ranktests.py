"""paper_repro.stats.ranktests: the fast paths of the pooled sort (integer ranks, the tie-free AD
formula) give the value path's statistics bit for bit, and SciPy's."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats

from paper_repro.stats import ranktests as R
from paper_repro.stats import twosample as C


def samples(rng, n, m, k, ties=0):
    """Two sets (n, k) and (m, k), slightly different; the first ``ties`` components discrete."""
    a = rng.normal(size=(n, k))
    b = rng.normal(0.15, 1.1, size=(m, k))
    a[:, :ties] = np.round(2 * a[:, :ties])
    b[:, :ties] = np.round(2 * b[:, :ties])
    return a, b


@pytest.mark.parametrize("ties", [0, 3])
def test_rank_sort_and_tie_free_formula_are_the_value_path_bit_for_bit(ties):
    """The bootstrap sorts integer ranks (radix sort) and takes the short AD formula on rows without
    ties: KS and AD must equal those of the values themselves, bit for bit."""
    rng = np.random.default_rng(11)
    a, b = samples(rng, 300, 260, 8, ties=ties)
    a[:, 7] = b[:, 7] = 2.0                                   # a constant component
    ranks = R.dense_ranks(np.concatenate([a, b]))
    assert ranks.shape == (8, 560) and ranks.dtype == np.int16
    ia, ib = rng.permutation(300)[:150], rng.permutation(260)[:150]
    by_value = R.Pooled(a[ia], b[ib])
    by_rank = R.Pooled(None, None, (ranks[:, :300][:, ia], ranks[:, 300:][:, ib]))
    for x, y in zip(by_value.ks(a[ia], b[ib]) + by_value.ad(), by_rank.ks(a, b, ia, ib) + by_rank.ad()):
        np.testing.assert_array_equal(x, y)
    distinct = by_value.end.all(axis=1)
    assert distinct.sum() == 7 - ties
    np.testing.assert_array_equal(by_value._a2_distinct(distinct), by_value._a2_ties(distinct))
    t, _ = C.ad_test(a[ia], b[ib])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                      # SciPy's p floored at 0.001
        for j in np.flatnonzero(distinct):                   # and SciPy's statistic
            ref = scipy.stats.anderson_ksamp([a[ia, j], b[ib, j]], variant="midrank").statistic
            assert t[j] == pytest.approx(ref, rel=1e-12)
