"""Exact L2 distances between rows streamed block by block: k nearest rows and closest pairs.

Rows are flat float vectors: maps (N, H, W) flattened, or features (N, D); a reference given as a
memory map (e.g. 200,000 training maps of 256^2) is read block by block and never loaded whole.
Each block pair computes |a|^2 + |b|^2 - 2 a.b with one float32 matrix product, bounds its
rounding error rigorously (2 gamma_{D+2} |a||b| for the product, Higham 2002 Sect. 3.1, plus the
float32 sums) and recomputes in float64, by direct differences, every pair the bound cannot
exclude: results equal a float64 brute-force search (ties go to the lower index).

Memory: ``block_bytes`` (default :attr:`NoveltyConfig.block_bytes`) bounds each block of rows held at
once (a float32 memory map is used in place), and the distance matrices of two blocks together take
at most about 3/4 of it; the peak working memory is below ~3 x ``block_bytes`` whatever N is.
Distances are float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import NoveltyConfig
from ..errors import PaperReproError

#: the default novelty settings (block size, prefilter, levels)
DEFAULTS = NoveltyConfig()
#: unit roundoff of float32
_U32 = 2.0 ** -24
#: float64 slack added to every rounding bound (relative to |a|^2 + |b|^2): float64 arithmetic and FFTs
_SLACK64 = 1e-9


def block_budget(block_bytes: int | None) -> int:
    """``block_bytes`` checked (an integer >= 64 KiB), or the default :attr:`NoveltyConfig.block_bytes`."""
    b = DEFAULTS.block_bytes if block_bytes is None else block_bytes
    if not isinstance(b, (int, np.integer)) or b < 2**16:
        raise PaperReproError(f"block_bytes: expected an integer >= 65536, found {block_bytes!r}")
    return int(b)


def check_map_set(maps, name: str, min_maps: int = 1) -> np.ndarray:
    """(N, H, W) view of ``maps`` (memory maps stay memory maps); shape/dtype checked, finiteness per block later."""
    arr = maps if isinstance(maps, np.ndarray) else np.asarray(maps)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise PaperReproError(f"{name}: expected maps of shape (N, H, W) or (N, H, W, 1), found shape {np.shape(maps)}")
    if arr.dtype.kind != "f":
        raise PaperReproError(f"{name}: expected float32 or float64 maps, found dtype {arr.dtype}")
    n, h, w = arr.shape
    if n < min_maps:
        raise PaperReproError(f"{name}: expected at least {min_maps} maps, found {n}")
    if h != w or h < 2:
        raise PaperReproError(f"{name}: expected square maps of at least 2x2 pixels, found {h}x{w}")
    return arr


def check_vectors(x, name: str, min_rows: int = 1) -> np.ndarray:
    """(N, D) float view of ``x`` (memory maps stay memory maps); PaperReproError naming ``name`` otherwise."""
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.ndim != 2:
        raise PaperReproError(f"{name}: expected vectors of shape (N, D), found shape {np.shape(x)}")
    if arr.dtype.kind != "f":
        raise PaperReproError(f"{name}: expected float vectors, found dtype {arr.dtype}")
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise PaperReproError(f"{name}: expected at least {min_rows} vectors of dimension >= 1, found shape {arr.shape}")
    return arr


def check_same_size(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """PaperReproError unless the rows of ``a`` and ``b`` have one shape (maps of one size, vectors of one length)."""
    if a.shape[1:] != b.shape[1:]:
        raise PaperReproError(f"{name_a}: expected shape (N, {', '.join(map(str, b.shape[1:]))}) like "
                              f"{name_b}, found {tuple(a.shape)}")


def check_k(k, n_ref: int, name: str = "k") -> int:
    """``k`` as an int in [1, n_ref] (a number of neighbours the reference can give)."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise PaperReproError(f"{name}: expected a positive integer, found {k!r}")
    if k > n_ref:
        raise PaperReproError(f"{name}: asked for {k} neighbours but the reference holds only {n_ref}")
    return int(k)


def check_level(x, name: str) -> float:
    """``x`` as a float in (0, 1) (a test level or a quantile); PaperReproError naming ``name`` otherwise."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        v = float("nan")
    if not 0.0 < v < 1.0:
        raise PaperReproError(f"{name}: expected a number in (0, 1), found {x!r}")
    return v


class Rows:
    """Rows of an (N, ...) array as flat float vectors, read block by block and checked finite.

    With ``standardize`` each row has its mean removed and is scaled to unit RMS (float64), so that
    distances compare patterns, not amplitudes: d^2 = 2 D (1 - Pearson correlation).
    """

    def __init__(self, arr: np.ndarray, name: str, standardize: bool = False):
        self.arr, self.name, self.standardize = arr, name, bool(standardize)
        self.n = int(arr.shape[0])
        self.dim = int(np.prod(arr.shape[1:]))
        self.dtype = np.dtype(np.float32) if (arr.dtype == np.float32 and not standardize) else np.dtype(np.float64)
        # exact rows + their float32 copy for the matrix products
        self.row_bytes = self.dim * (self.dtype.itemsize + (0 if self.dtype == np.float32 else 4))

    def _prep(self, block: np.ndarray, index: np.ndarray) -> np.ndarray:
        x = np.asarray(block).reshape(len(block), -1)
        ok = np.isfinite(x).all(axis=1)
        if not ok.all():
            raise PaperReproError(f"{self.name}: map {int(index[np.flatnonzero(~ok)[0]])} contains NaN or inf")
        if self.standardize:
            x = x.astype(np.float64)
            x -= x.mean(axis=1, keepdims=True)
            rms = np.sqrt(np.einsum("ij,ij->i", x, x) / x.shape[1])[:, None]
            x /= np.where(rms > 0, rms, 1.0)
            return x
        return np.ascontiguousarray(x, dtype=self.dtype)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self._prep(self.arr[start:stop], np.arange(start, stop))

    def take(self, index: np.ndarray) -> np.ndarray:
        """Rows at sorted, unique indices (a memory map reads only those rows)."""
        index = np.asarray(index, dtype=np.int64)
        return self._prep(self.arr[index], index)


def as_float32(x: np.ndarray) -> np.ndarray:
    """``x`` as float32 (no copy when it is already), for the matrix products of the distance searches."""
    return x if x.dtype == np.float32 else x.astype(np.float32)


def squared_norms(x: np.ndarray) -> np.ndarray:
    """Squared L2 norm of each row of ``x`` (N, D), accumulated in float64."""
    return np.einsum("ij,ij->i", x, x, dtype=np.float64)


def dot_error_factor(dim: int) -> float:
    """gamma_{dim+2} for float32: bound on the relative error of a float32 dot product of inputs rounded to float32."""
    nu = (dim + 2) * _U32
    return nu / (1.0 - nu) if nu < 0.5 else math.inf


def approx_sq_distances(a32: np.ndarray, an: np.ndarray, b32: np.ndarray, bn: np.ndarray,
               gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Approximate squared distances (float32 matrix, one product) and a rigorous per-row error bound.

    |d2[i, j] - |a_i - b_j|^2| <= bound[i] for every j: 2 gamma |a_i| max|b| for the float32 product
    (Higham 2002, Sect. 3.1) plus 8 u (|a_i|^2 + max|b|^2) for the float32 sums, u = 2^-24.
    """
    if math.isfinite(gamma):
        d2 = a32 @ b32.T
    else:                                   # too long for a float32 bound: float64 product, rounded once
        d2 = (a32.astype(np.float64) @ b32.astype(np.float64).T).astype(np.float32)
        gamma = 2 * _U32
    d2 *= -2.0
    d2 += an.astype(np.float32)[:, None]
    d2 += bn.astype(np.float32)[None, :]
    bmax = float(bn.max()) if bn.size else 0.0
    bound = (2.0 * gamma) * np.sqrt(an) * math.sqrt(bmax) + (8 * _U32 + _SLACK64) * (an + bmax)
    return d2, bound


def exact_sq_distances(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray, budget: int) -> np.ndarray:
    """Squared L2 distances of row pairs (a[ia], b[ib]) by direct differences in float64."""
    out = np.empty(len(ia))
    step = max(1, budget // (96 * a.shape[1]))
    for s in range(0, len(ia), step):
        d = a[ia[s:s + step]].astype(np.float64) - b[ib[s:s + step]]
        out[s:s + step] = np.einsum("ij,ij->i", d, d)
    return out


def merge_top_k(best: dict[str, np.ndarray], rows: np.ndarray, new: dict[str, np.ndarray]) -> None:
    """Merge candidates (row, d, i, payload...) into per-row top-k arrays ``best`` (sorted by d, then i)."""
    q, k = best["d"].shape
    all_r = np.concatenate([np.repeat(np.arange(q), k), rows])
    cols = {key: np.concatenate([best[key].reshape(q * k, *best[key].shape[2:]), new[key]]) for key in best}
    order = np.lexsort((cols["i"], cols["d"], all_r))
    r_sorted = all_r[order]
    starts = np.searchsorted(r_sorted, np.arange(q))
    rank = np.arange(len(order)) - starts[r_sorted]
    keep = rank < k
    rr, kk, src = r_sorted[keep], rank[keep], order[keep]
    for key in best:
        best[key][rr, kk] = cols[key][src]


def _merge_pairs(best: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n = len(best["d"])
    cols = {key: np.concatenate([best[key], new[key]]) for key in best}
    order = np.lexsort((cols["j"], cols["i"], cols["d"]))[:n]
    return {key: cols[key][order] for key in best}


@dataclass
class Neighbors:
    """The k nearest reference maps of each query, nearest first (ties: lower reference index first).

    ``distances`` are L2 distances in the search's space; ``transforms`` (dihedral index, see
    :data:`paper_repro.stats.neighbours.TRANSFORM_NAMES`) and ``shifts`` (dy, dx) say how the query
    was moved onto the reference, ``roll(dihedral_transform(query, t), (dy, dx), axis=(-2, -1))``,
    invariant space only;
    ``certified[i]`` is True where the search provably found the exact answer (always for pixel/power).
    """

    indices: np.ndarray
    distances: np.ndarray
    space: str
    transforms: np.ndarray | None = None
    shifts: np.ndarray | None = None
    certified: np.ndarray | None = None


# ============================================================================== exact k-NN
def knn_rows(Q: Rows, R: Rows, k: int, budget: int, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of R for each row of Q: (indices (nq, k), squared distances (nq, k))."""
    nq, nr = Q.n, R.n
    gamma = dot_error_factor(Q.dim)
    row_bytes = max(Q.row_bytes, R.row_bytes)
    qstep = max(1, min(nq, budget // row_bytes, 8192))
    rstep = max(1, min(nr, budget // row_bytes, budget // 64 // qstep))
    out_d = np.full((nq, k), np.inf)
    out_i = np.full((nq, k), -1, dtype=np.int64)
    for qs in range(0, nq, qstep):
        qe = min(nq, qs + qstep)
        qx = Q.read(qs, qe)
        q32, qn = as_float32(qx), squared_norms(qx)
        best = {"d": out_d[qs:qe], "i": out_i[qs:qe]}
        for rs in range(0, nr, rstep):
            re_ = min(nr, rs + rstep)
            rx = R.read(rs, re_)
            d2, bound = approx_sq_distances(q32, qn, as_float32(rx), squared_norms(rx), gamma)
            if exclude_self:
                g = np.arange(max(qs, rs), min(qe, re_))
                d2[g - qs, g - rs] = np.inf
            need = np.flatnonzero(~np.isfinite(best["d"][:, -1]))
            if need.size:                       # seed: the k most promising pairs of queries with < k found
                kk = min(k, d2.shape[1])
                sub = d2[need]
                part = (np.argpartition(sub, kk - 1, axis=1)[:, :kk] if kk < sub.shape[1]
                        else np.broadcast_to(np.arange(sub.shape[1]), sub.shape))
                pi, pj = np.repeat(need, kk), part.ravel()
                pi, pj = pi[np.isfinite(d2[pi, pj])], pj[np.isfinite(d2[pi, pj])]
                d2[pi, pj] = np.inf             # done: not again below
                if pi.size:
                    merge_top_k(best, pi, {"d": exact_sq_distances(qx, rx, pi, pj, budget), "i": pj + rs})
            lim = best["d"][:, -1] + bound      # a pair can enter the top k only if d2 <= lim
            mask = d2 <= lim[:, None]
            open_rows = ~np.isfinite(lim)
            if open_rows.any():
                mask[open_rows] &= np.isfinite(d2[open_rows])
            pi, pj = np.nonzero(mask)
            if pi.size:
                merge_top_k(best, pi, {"d": exact_sq_distances(qx, rx, pi, pj, budget), "i": pj + rs})
    return out_i, out_d


def knn(queries, reference, k: int = 1, *, exclude_self: bool = False,
        block_bytes: int | None = None) -> Neighbors:
    """Exact k nearest reference vectors (L2) of each query vector; both (N, D) arrays or memory maps.

    ``exclude_self``: queries and reference are the same set; a row is not its own neighbour.
    """
    q = check_vectors(queries, "queries")
    r = check_vectors(reference, "reference")
    check_same_size(q, r, "queries", "reference")
    k = check_k(k, r.shape[0] - (1 if exclude_self else 0))
    if exclude_self and q.shape[0] != r.shape[0]:
        raise PaperReproError(f"exclude_self: queries and reference must be one set, found {q.shape[0]} and {r.shape[0]} rows")
    idx, d2 = knn_rows(Rows(q, "queries"), Rows(r, "reference"), k, block_budget(block_bytes), exclude_self)
    return Neighbors(idx, np.sqrt(np.maximum(d2, 0.0)), "vector", certified=np.ones(len(idx), dtype=bool))


# ============================================================================== closest pairs
@dataclass
class PairSearch:
    """Closest pairs i < j of one set (distances ascending) and the count of pairs below a threshold."""

    i: np.ndarray
    j: np.ndarray
    distances: np.ndarray
    n_below: int | None
    n_rows: int


def pairs_rows(X: Rows, n_pairs: int, tau2: float | None, budget: int) -> PairSearch:
    """The ``n_pairs`` closest row pairs i < j of ``X`` and, with ``tau2``, the number of pairs with d^2 < tau2 (exact)."""
    n = X.n
    gamma = dot_error_factor(X.dim)
    step = max(1, min(n, budget // X.row_bytes, math.isqrt(budget // 64)))
    best = {"d": np.full(n_pairs, np.inf), "i": np.full(n_pairs, -1, dtype=np.int64),
            "j": np.full(n_pairs, -1, dtype=np.int64)}
    count = 0
    for a0 in range(0, n, step):
        a1 = min(n, a0 + step)
        xa = X.read(a0, a1)
        a32, an = as_float32(xa), squared_norms(xa)
        for b0 in range(a0, n, step):
            b1 = min(n, b0 + step)
            xb = xa if b0 == a0 else X.read(b0, b1)
            d2, bound = approx_sq_distances(a32, an, as_float32(xb), squared_norms(xb), gamma)
            if b0 == a0:
                for r in range(len(xa)):        # only i < j
                    d2[r, :r + 1] = np.inf
            if tau2 is not None:                # pairs surely below, and those to recheck
                count += int(np.count_nonzero(d2 < (tau2 - bound)[:, None]))
                pi, pj = np.nonzero((d2 >= (tau2 - bound)[:, None]) & (d2 < (tau2 + bound)[:, None]))
                if pi.size:
                    count += int((exact_sq_distances(xa, xb, pi, pj, budget) < tau2).sum())
            if not np.isfinite(best["d"][-1]):  # seed with this block's most promising pairs
                m = min(n_pairs, int(np.isfinite(d2).sum()))
                if m:
                    flat = np.argpartition(d2.ravel(), m - 1)[:m] if m < d2.size else np.arange(d2.size)
                    pi, pj = np.unravel_index(flat, d2.shape)
                    best = _merge_pairs(best, {"d": exact_sq_distances(xa, xb, pi, pj, budget), "i": pi + a0, "j": pj + b0})
                    d2[pi, pj] = np.inf
            lim = best["d"][-1] + bound
            mask = d2 <= lim[:, None]
            if not np.isfinite(best["d"][-1]):
                mask &= np.isfinite(d2)
            pi, pj = np.nonzero(mask)
            if pi.size:
                best = _merge_pairs(best, {"d": exact_sq_distances(xa, xb, pi, pj, budget), "i": pi + a0, "j": pj + b0})
    found = best["i"] >= 0
    return PairSearch(best["i"][found], best["j"][found], np.sqrt(np.maximum(best["d"][found], 0.0)),
                      count if tau2 is not None else None, n)


def closest_pairs(vectors, n_pairs: int = DEFAULTS.birthday_pairs, *, threshold: float | None = None,
                  standardize: bool = False, block_bytes: int | None = None) -> PairSearch:
    """The ``n_pairs`` closest pairs (L2, exact) among the rows of ``vectors`` (N, D) or maps (N, H, W).

    Distances are computed block against block (never an N x N matrix of maps; the distance
    matrix of two blocks is bounded by ``block_bytes``), keeping only the best pairs. With
    ``threshold``, also counts the pairs i < j at distance strictly below it.
    """
    arr = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
    if arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] == 1):
        arr = check_map_set(arr, "maps", min_maps=2)
    else:
        arr = check_vectors(arr, "vectors", min_rows=2)
    if not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise PaperReproError(f"n_pairs: expected a positive integer, found {n_pairs!r}")
    tau2 = None
    if threshold is not None:
        if not (isinstance(threshold, (int, float, np.floating)) and math.isfinite(threshold) and threshold >= 0):
            raise PaperReproError(f"threshold: expected a finite distance >= 0, found {threshold!r}")
        tau2 = float(threshold) ** 2
    return pairs_rows(Rows(arr, "maps", standardize), int(n_pairs), tau2, block_budget(block_bytes))
