"""Two-sample KS and Anderson-Darling tests of many components at once: the pooled sort they share.

:class:`Pooled` sorts both samples together once per component (a row per component); its
:meth:`~Pooled.ks` and :meth:`~Pooled.ad` read the statistics off the sorted labels and the ties.
A bootstrap ranks the full sets once (:func:`dense_ranks`) and sorts each replicate's small integer
ranks instead of its values (radix sort; the same order and ties, so the same statistics, bit for
bit); rows without ties take the short form of the AD statistic, again bit for bit.
:func:`paper_repro.stats.twosample.ks_test`, ``ad_test`` and ``bootstrap_tests`` are built on it.

AD p-values. SciPy's ``anderson_ksamp`` interpolates Scholz & Stephens' (1987) table and clips p
to [0.001, 0.25]. For two samples the standardised statistic T = (A2 - 1) / sigma_N has, as
N grows, the distribution of (A2_inf - 1) / sqrt(var A2_inf), with A2_inf the one-sample
Anderson-Darling limit (Pettitt 1976; Scholz & Stephens 1987, whose k = 2 table it reproduces).
We return P(A2_inf > 1 + T sqrt(2 (pi^2 - 9) / 3)): Marsaglia & Marsaglia's (2004) ADinf for
the bulk, and beyond A2_inf = 4 the exact tail asymptotics sqrt(3) erfc(sqrt(z)) (1 + 11 / (36 z))
(the largest weight 1/2 of A2_inf = sum Y_j / (j (j + 1)), times prod_{j>=2} (1 - 2/(j(j+1)))^(-1/2)
= sqrt(3), with the first-order correction), blended over [4, 5]. Both agree with a numerical
inversion of the characteristic function (Imhof) to < 0.3 % relative (tests/stats/test_twosample.py).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special
import scipy.stats

_KS_P: dict[tuple[int, int, int], float] = {}


class Pooled:
    """Both samples pooled and sorted per component, one row per component (K, n + m), shared by KS and AD.

    ``ranks``: (K, n) and (K, m), the samples' integer ranks in a larger pool (:func:`dense_ranks`),
    in the same order and with the same ties as their values, which they replace in the sort (the
    values are then only needed by :meth:`ks`, for SciPy's p of a new D): a
    radix sort of small integers instead of a comparison sort of floats, with identical results
    (KS and AD see only the order and the ties).
    """

    def __init__(self, a: np.ndarray | None, b: np.ndarray | None,
                 ranks: tuple[np.ndarray, np.ndarray] | None = None):
        if ranks is None:                                       # a (n, K), b (m, K): the values
            self.n, self.m = a.shape[0], b.shape[0]
            z = np.concatenate([a.T, b.T], axis=1)              # (K, N), contiguous rows
        else:
            self.n, self.m = ranks[0].shape[1], ranks[1].shape[1]
            z = np.concatenate(ranks, axis=1)
        order = np.argsort(z, axis=1, kind="stable")           # order within ties is irrelevant below
        self.zs = np.take_along_axis(z, order, axis=1)
        self.is_a = order < self.n
        self.ca = np.cumsum(self.is_a, axis=1)                 # a values at or before each position
        self.end = np.ones(self.zs.shape, dtype=bool)
        self.end[:, :-1] = self.zs[:, 1:] != self.zs[:, :-1]   # last element of a group of ties
        self.const = self.zs[:, 0] == self.zs[:, -1]

    def ks(self, a: np.ndarray, b: np.ndarray, rows_a=None, rows_b=None) -> tuple[np.ndarray, np.ndarray]:
        """(D, p) per row. ``a``, ``b``: the samples' values (or the sets they are ``rows_a``, ``rows_b`` of):
        SciPy's p-value of a (n, m, D) not seen before comes from one of the components that have it."""
        n, m = self.n, self.m
        pos = np.arange(1, n + m + 1)[None, :]
        num = np.abs(self.ca * m - (pos - self.ca) * n)         # n m |F_a - F_b|, exact integers
        num = np.where(self.end, num, 0).max(axis=1)
        keys, first, inverse = np.unique(num, return_index=True, return_inverse=True)
        known = np.empty(keys.size)
        for u, (key, j) in enumerate(zip(keys.tolist(), first.tolist())):
            p = _KS_P.get((n, m, key))                          # one lookup: threads share the cache
            if p is None:
                if len(_KS_P) > 200_000:
                    _KS_P.clear()
                col_a = a[:, j] if rows_a is None else a[rows_a, j]
                col_b = b[:, j] if rows_b is None else b[rows_b, j]
                p = _KS_P[(n, m, key)] = float(scipy.stats.ks_2samp(col_a, col_b).pvalue)
            known[u] = p
        return num / (n * m), known[inverse.ravel()]

    def ad(self) -> tuple[np.ndarray, np.ndarray]:
        n, m = self.n, self.m
        distinct = self.end.all(axis=1)                         # rows without ties: the short formula
        a2 = np.empty(self.zs.shape[0])
        for rows, fn in ((distinct, self._a2_distinct), (~distinct, self._a2_ties)):
            if rows.any():
                a2[rows] = fn(rows) if not rows.all() else fn(slice(None))
        t = (a2 - 1.0) / ad_sigma(n, m)
        t[self.const] = np.nan
        p = ad_pvalue(t)
        p[self.const] = np.nan
        return t, p

    def _a2_ties(self, rows) -> np.ndarray:
        """Scholz & Stephens' A2akN (mid-ranks for ties) of the given rows."""
        n, m = self.n, self.m
        N = n + m
        end, ca = self.end[rows], self.ca[rows]
        idx = np.arange(N)[None, :]
        start_flag = np.ones(end.shape, dtype=bool)
        start_flag[:, 1:] = end[:, :-1]                       # a group starts after a group end
        start = np.maximum.accumulate(np.where(start_flag, idx, 0), axis=1)  # first index of own group
        lj = (idx + 1 - start).astype(np.float64)                            # group size (at its end)
        bj = start + lj / 2.0                                                # mid-rank position
        ca_before = np.where(start > 0, np.take_along_axis(ca, np.maximum(start - 1, 0), axis=1), 0)
        fa = ca - ca_before
        ma = ca - fa / 2.0
        mb = (idx + 1 - ca) - (lj - fa) / 2.0
        with np.errstate(divide="ignore", invalid="ignore"):
            den = bj * (N - bj) - N * lj / 4.0
            term = lj / N * ((N * ma - bj * n) ** 2 / n + (N * mb - bj * m) ** 2 / m) / den
        return np.where(end, term, 0.0).sum(axis=1) * (N - 1.0) / N

    def _a2_distinct(self, rows) -> np.ndarray:
        """:meth:`_a2_ties` for rows without ties, bit for bit: every group has one element (lj = 1,
        mid-rank j + 1/2), and N m_b - b_j m = -(N m_a - b_j n) exactly (integers and halves)."""
        n, m = self.n, self.m
        N = n + m
        idx = np.arange(N, dtype=np.float64)
        bj = idx + 0.5
        den = bj * (N - bj) - N * 1.0 / 4.0
        ma = self.ca[rows] - self.is_a[rows] * 0.5               # ca - fa / 2 with fa = 1 at a's values
        u = np.multiply(ma, float(N), out=ma)
        u -= bj * n
        u *= u
        term = u / n
        u /= m
        term += u
        term *= 1.0 / N
        term /= den
        return term.sum(axis=1) * (N - 1.0) / N


def dense_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0, 1, ... of each column's values of x (N, K), equal values sharing a rank, as rows (K, N)
    of the smallest integer type that holds them (:class:`Pooled` sorts them instead of the values)."""
    xt = np.ascontiguousarray(x.T)
    order = np.argsort(xt, axis=1)
    xs = np.take_along_axis(xt, order, axis=1)
    step = np.zeros(xt.shape, dtype=np.int64)
    step[:, 1:] = xs[:, 1:] != xs[:, :-1]
    ranks = np.empty(xt.shape, dtype=np.int16 if x.shape[0] <= np.iinfo(np.int16).max else np.int64)
    np.put_along_axis(ranks, order, np.cumsum(step, axis=1), axis=1)
    return ranks


_AD_VAR_INF = 2.0 * (math.pi ** 2 - 9.0) / 3.0                 # variance of the A2_inf limit law


def ad_sigma(n: int, m: int) -> float:
    """Standard deviation of A2 under the null for two samples (Scholz & Stephens 1987, as SciPy)."""
    k = 2
    N = n + m
    H = 1.0 / n + 1.0 / m
    hs_cs = (1.0 / np.arange(N - 1, 1, -1)).cumsum()
    h = hs_cs[-1] + 1
    g = (hs_cs / np.arange(2, N)).sum()
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * H
    b = (2 * g - 4) * k ** 2 + 8 * h * k + (2 * g - 14 * h - 4) * H - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k ** 2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * H + 4 * h
    d = (2 * h + 6) * k ** 2 - 4 * h * k
    return math.sqrt((a * N ** 3 + b * N ** 2 + c * N + d) / ((N - 1.0) * (N - 2.0) * (N - 3.0)))


def adinf_sf(z: np.ndarray) -> np.ndarray:
    """P(A2_inf > z), full range (Marsaglia & Marsaglia 2004 bulk; sqrt(3) erfc tail beyond 4)."""
    z = np.asarray(z, dtype=np.float64)
    out = np.ones(z.shape)
    pos = z > 0
    zz = np.where(pos, z, 1.0)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        low = 1.0 - np.exp(-1.2337141 / zz) / np.sqrt(zz) * (
            2.00012 + (.247105 - (.0649821 - (.0347962 - (.0116720 - .00168691 * zz) * zz) * zz) * zz) * zz)
        mid = -np.expm1(-np.exp(1.0776 - (2.30695 - (.43424 - (.082433 - (.008056 - .0003146 * zz) * zz)
                                                      * zz) * zz) * zz))
        bulk = np.where(zz < 2.0, low, mid)
        tail = math.sqrt(3.0) * scipy.special.erfc(np.sqrt(zz)) * (1.0 + 11.0 / (36.0 * zz))
        w = np.clip(zz - 4.0, 0.0, 1.0)                        # blend over [4, 5]
        blend = np.exp((1 - w) * np.log(np.maximum(bulk, 1e-300)) + w * np.log(np.maximum(tail, 1e-300)))
        res = np.where(zz < 4.0, bulk, np.where(zz < 5.0, blend, tail))
    out[pos] = np.clip(res[pos], 0.0, 1.0)
    return out


def ad_pvalue(statistic) -> np.ndarray:
    """Full-range p-value of SciPy's standardised two-sample AD statistic (the sizes are in it already)."""
    t = np.asarray(statistic, dtype=np.float64)
    return adinf_sf(1.0 + t * math.sqrt(_AD_VAR_INF))
