"""Is the generator creating novel maps? (Sect. 3.2.) Nearest neighbours, memorisation, birthday paradox, slerp.

Four tools, all exact, batched and memory-bounded (block sizes follow ``block_bytes``; a reference set
given as a memory map, e.g. 200,000 training maps of 256^2, is streamed block by block and never
loaded whole):

* :func:`nearest_neighbors` -- the k nearest reference maps of each query map in one of three spaces:

  - ``"pixel"``: L2 distance between maps (convergence units, sqrt of the sum over pixels);
  - ``"power"``: L2 distance between **natural-log** power spectra (LensTools binning, the non-empty
    ell bins only). ln P makes a bin's distance its relative difference, so low and high ell count
    alike instead of the largest-power bins dominating (as they would on P itself);
  - ``"invariant"``: min over the 8 flips/rotations g of the query and all periodic shifts s of
    ||roll(g(query), s) - reference||, found by FFT cross-correlation: d^2 = |a|^2 + |b|^2 -
    2 max_{g, s} corr(g a, b)(s). A memorised map that was shifted or flipped is found at distance 0.

  Pixel and power searches compute |a|^2 + |b|^2 - 2 a.b with one float32 matrix product per block,
  bound its rounding error rigorously (2 gamma_{D+2} |a||b| for the product, Higham 2002 Sect. 3.1,
  plus the float32 sums) and recompute in float64, by direct differences, every pair that the bound
  cannot exclude: the result equals a float64 brute-force search (ties go to the lower index).

  The invariant search costs 8 inverse FFTs per pair, so it prunes with a certified lower bound:
  by Parseval and |u - v| >= ||u| - |v||, ||roll(a, s) - b||^2 >= sum_k (|A_k| - |B_k|)^2 / N^2 for
  every shift, i.e. the L2 distance between Fourier *amplitudes* (invariant to shifts; the 4
  amplitude patterns of the 8 dihedral transforms are tried), and any subset of modes still bounds
  it. ``candidates=None`` is exact (pairs whose bound exceeds the current k-th distance are skipped;
  novel maps prune little, so cost ~ N_query x N_reference FFT pairs). ``candidates=m`` keeps per
  query the m references with the smallest bound over the ``lb_modes`` lowest-|k| modes and
  evaluates only those: a (shifted, flipped, noisy) copy has a bound near 0 and is never missed;
  ``certified`` says for which queries the (m+1)-th bound proves the answer exact.

* :func:`memorisation_test` -- a data-copying test with a baseline (Meehan, Chaudhuri & Dasgupta
  2020): distances of generated maps to their nearest training map against distances of
  independent (validation) maps to theirs; one-sided Mann-Whitney U (a systematic shift to smaller
  distances) and one-sided KS (a subset of copies at small distance), Bonferroni-combined.

* :func:`copying_test` -- the same question with a held-out control that removes the confound of
  the above (a generator smoother than the data sits closer to *every* set of maps): distances to
  several training sets and one held-out set of the same parent structure; a generated map whose
  nearest set stands out should find a training set there no more often than chance (binomial test).

* :func:`birthday_test` -- Arora & Zhang (2017): closest pairs within a batch (32,768 maps in the
  paper) in pixel, power-spectrum and discriminator-feature space, pairwise distances in blocks
  keeping only the closest pairs; near-duplicates are pairs closer than a threshold calibrated on
  independent reference maps; their count gives a support-size estimate and a test of the
  generated batch's near-duplicate rate against the reference's.

* :func:`slerp`, :func:`slerp_path` -- spherical interpolation in the prior (White 2016), maps along
  the path and the statistics tracked along it, with a smoothness measure.

Memory: ``block_bytes`` (default :attr:`NoveltyConfig.block_bytes`) bounds each block of maps held at
once (a float32 memory map is used in place, without a copy), and the distance matrices of two blocks
together take at most about 3/4 of it; the peak working memory is below ~3 x ``block_bytes`` whatever
the number of maps. Larger blocks make the float32 products faster (better BLAS shapes).

Distances are float64; maps (N, H, W) float32 in convergence units, angles in degrees.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import scipy.fft
import scipy.stats

from . import power as _stats
from ..config import NoveltyConfig
from ..errors import PaperReproError

DEFAULTS = NoveltyConfig()
#: spaces of :func:`nearest_neighbors`
SPACES = ("pixel", "power", "invariant")
#: spaces of :func:`birthday_test`
BIRTHDAY_SPACES = ("pixel", "power", "features")
#: unit roundoff of float32
_U32 = 2.0 ** -24
#: float64 slack added to every rounding bound (relative to |a|^2 + |b|^2): float64 arithmetic and FFTs
_SLACK64 = 1e-9
#: names of the 8 dihedral transforms, by index (see :func:`dihedral_transform`)
TRANSFORM_NAMES = ("identity", "rot90", "rot180", "rot270", "flip", "flip+rot90", "flip+rot180", "flip+rot270")
#: one transform per distinct Fourier-amplitude pattern (rot180 = identity up to a shift, etc.)
_AMPLITUDE_CLASSES = (0, 1, 4, 5)


# ============================================================================== input handling
def _budget(block_bytes: int | None) -> int:
    b = DEFAULTS.block_bytes if block_bytes is None else block_bytes
    if not isinstance(b, (int, np.integer)) or b < 2**16:
        raise PaperReproError(f"block_bytes: expected an integer >= 65536, found {block_bytes!r}")
    return int(b)


def _check_maps(maps, name: str, min_maps: int = 1) -> np.ndarray:
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


def _check_vectors(x, name: str, min_rows: int = 1) -> np.ndarray:
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.ndim != 2:
        raise PaperReproError(f"{name}: expected vectors of shape (N, D), found shape {np.shape(x)}")
    if arr.dtype.kind != "f":
        raise PaperReproError(f"{name}: expected float vectors, found dtype {arr.dtype}")
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise PaperReproError(f"{name}: expected at least {min_rows} vectors of dimension >= 1, found shape {arr.shape}")
    return arr


def _same_size(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[1:] != b.shape[1:]:
        raise PaperReproError(f"{name_a}: expected shape (N, {', '.join(map(str, b.shape[1:]))}) like "
                              f"{name_b}, found {tuple(a.shape)}")


def _check_k(k, n_ref: int, name: str = "k") -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise PaperReproError(f"{name}: expected a positive integer, found {k!r}")
    if k > n_ref:
        raise PaperReproError(f"{name}: asked for {k} neighbours but the reference holds only {n_ref}")
    return int(k)


def _check_level(x, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        v = float("nan")
    if not 0.0 < v < 1.0:
        raise PaperReproError(f"{name}: expected a number in (0, 1), found {x!r}")
    return v


class _Rows:
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


def _f32(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.float32 else x.astype(np.float32)


def _sqnorm(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x, dtype=np.float64)


def _gamma(dim: int) -> float:
    """gamma_{dim+2} for float32: bound on the relative error of a float32 dot product of inputs rounded to float32."""
    nu = (dim + 2) * _U32
    return nu / (1.0 - nu) if nu < 0.5 else math.inf


def _approx_d2(a32: np.ndarray, an: np.ndarray, b32: np.ndarray, bn: np.ndarray,
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


def _exact_d2(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray, budget: int) -> np.ndarray:
    """Squared L2 distances of row pairs (a[ia], b[ib]) by direct differences in float64."""
    out = np.empty(len(ia))
    step = max(1, budget // (96 * a.shape[1]))
    for s in range(0, len(ia), step):
        d = a[ia[s:s + step]].astype(np.float64) - b[ib[s:s + step]]
        out[s:s + step] = np.einsum("ij,ij->i", d, d)
    return out


def _merge_topk(best: dict[str, np.ndarray], rows: np.ndarray, new: dict[str, np.ndarray]) -> None:
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


# ============================================================================== results
from .twosample import jsonable  # noqa: E402  (one JSON conversion for every report)


class _Report:
    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False)


@dataclass
class Neighbors:
    """The k nearest reference maps of each query, nearest first (ties: lower reference index first).

    ``distances`` are L2 distances in the search's space; ``transforms`` (dihedral index, see
    :data:`TRANSFORM_NAMES`) and ``shifts`` (dy, dx) say how the query was moved onto the reference,
    ``roll(dihedral_transform(query, t), (dy, dx), axis=(-2, -1))``, invariant space only;
    ``certified[i]`` is True where the search provably found the exact answer (always for pixel/power).
    """

    indices: np.ndarray
    distances: np.ndarray
    space: str
    transforms: np.ndarray | None = None
    shifts: np.ndarray | None = None
    certified: np.ndarray | None = None


# ============================================================================== feature spaces
def _nonempty_bins(size: int, angle_deg: float, l_edges) -> tuple[np.ndarray, np.ndarray]:
    hits = _stats.count_modes(size, angle_deg, l_edges)
    edges = _stats.DEFAULT_L_EDGES if l_edges is None else np.asarray(l_edges, dtype=np.float64)
    keep = np.flatnonzero(hits > 0)
    if keep.size < 1:
        raise PaperReproError(f"l_edges: no ell bin holds a Fourier mode of a {size}^2 map of {angle_deg} deg")
    return keep, 0.5 * (edges[:-1] + edges[1:])[keep]


def power_features(maps, angle_deg: float = _stats.DEFAULT_ANGLE_DEG, l_edges=None, *,
                   chunk: int = 4096) -> np.ndarray:
    """ln of the LensTools power spectrum of each map over its non-empty ell bins, (N, K) float64.

    The space of the ``"power"`` searches: L2 distances between rows are root-sum-squares of the
    bins' relative differences. A bin with zero power (a constant map) is floored at the smallest
    positive float64, so it is far from every real map rather than undefined.
    """
    arr = _check_maps(maps, "maps")
    keep, _ = _nonempty_bins(arr.shape[1], angle_deg, l_edges)
    out = np.empty((arr.shape[0], keep.size))
    for s in range(0, arr.shape[0], chunk):
        try:
            _, p = _stats.power_spectrum(arr[s:s + chunk], angle_deg, l_edges)
        except PaperReproError as exc:
            raise PaperReproError(f"maps[{s}:{s + chunk}]: {exc}") from None
        out[s:s + len(p)] = np.log(np.maximum(np.atleast_2d(p)[:, keep], np.finfo(np.float64).tiny))
    return out


def discriminator_features(discriminator, maps, *, data_scale: float = 1.0, batch_size: int = 256,
                           out: str | os.PathLike | None = None) -> np.ndarray:
    """The discriminator's last convolutional activations of each map, flattened: (N, F) float32.

    Maps enter the discriminator as ``data_scale`` x kappa (as in training). Computed in batches;
    with ``out`` (a ``.npy`` path) the features are written there through a memory map, for sets
    too large to hold (32,768 maps of 256^2 give 17 GB of features in the paper's model).
    """
    from ..gan.models import feature_extractor

    arr = _check_maps(maps, "maps")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise PaperReproError(f"batch_size: expected a positive integer, found {batch_size!r}")
    expected = tuple(discriminator.inputs[0].shape[1:3])
    if expected != tuple(arr.shape[1:]):
        raise PaperReproError(f"maps: the discriminator takes {expected[0]}x{expected[1]} maps, "
                              f"found {arr.shape[1]}x{arr.shape[2]}")
    fe = feature_extractor(discriminator)
    n_feat = int(np.prod(fe.outputs[0].shape[1:]))
    n = arr.shape[0]
    res = (np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(n, n_feat))
           if out is not None else np.empty((n, n_feat), dtype=np.float32))
    scale = np.float32(data_scale)
    for s in range(0, n, batch_size):
        x = np.asarray(arr[s:s + batch_size], dtype=np.float32)
        if not np.isfinite(x).all():
            bad = s + int(np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(1))[0])
            raise PaperReproError(f"maps: map {bad} contains NaN or inf")
        f = fe([x[..., None] * scale], training=False)
        res[s:s + len(x)] = np.asarray(f, dtype=np.float32).reshape(len(x), -1)
    if out is not None:
        res.flush()
    return res


# ============================================================================== exact k-NN (vectors)
def _knn_rows(Q: _Rows, R: _Rows, k: int, budget: int, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of R for each row of Q: (indices (nq, k), squared distances (nq, k))."""
    nq, nr = Q.n, R.n
    gamma = _gamma(Q.dim)
    row_bytes = max(Q.row_bytes, R.row_bytes)
    qstep = max(1, min(nq, budget // row_bytes, 8192))
    rstep = max(1, min(nr, budget // row_bytes, budget // 64 // qstep))
    out_d = np.full((nq, k), np.inf)
    out_i = np.full((nq, k), -1, dtype=np.int64)
    for qs in range(0, nq, qstep):
        qe = min(nq, qs + qstep)
        qx = Q.read(qs, qe)
        q32, qn = _f32(qx), _sqnorm(qx)
        best = {"d": out_d[qs:qe], "i": out_i[qs:qe]}
        for rs in range(0, nr, rstep):
            re_ = min(nr, rs + rstep)
            rx = R.read(rs, re_)
            d2, bound = _approx_d2(q32, qn, _f32(rx), _sqnorm(rx), gamma)
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
                    _merge_topk(best, pi, {"d": _exact_d2(qx, rx, pi, pj, budget), "i": pj + rs})
            lim = best["d"][:, -1] + bound      # a pair can enter the top k only if d2 <= lim
            mask = d2 <= lim[:, None]
            open_rows = ~np.isfinite(lim)
            if open_rows.any():
                mask[open_rows] &= np.isfinite(d2[open_rows])
            pi, pj = np.nonzero(mask)
            if pi.size:
                _merge_topk(best, pi, {"d": _exact_d2(qx, rx, pi, pj, budget), "i": pj + rs})
    return out_i, out_d


def knn(queries, reference, k: int = 1, *, exclude_self: bool = False,
        block_bytes: int | None = None) -> Neighbors:
    """Exact k nearest reference vectors (L2) of each query vector; both (N, D) arrays or memory maps.

    ``exclude_self``: queries and reference are the same set; a row is not its own neighbour.
    """
    q = _check_vectors(queries, "queries")
    r = _check_vectors(reference, "reference")
    _same_size(q, r, "queries", "reference")
    k = _check_k(k, r.shape[0] - (1 if exclude_self else 0))
    if exclude_self and q.shape[0] != r.shape[0]:
        raise PaperReproError(f"exclude_self: queries and reference must be one set, found {q.shape[0]} and {r.shape[0]} rows")
    idx, d2 = _knn_rows(_Rows(q, "queries"), _Rows(r, "reference"), k, _budget(block_bytes), exclude_self)
    return Neighbors(idx, np.sqrt(np.maximum(d2, 0.0)), "vector", certified=np.ones(len(idx), dtype=bool))


# ============================================================================== invariant search
def dihedral_transform(maps, t: int) -> np.ndarray:
    """Dihedral transform ``t`` (0-7, :data:`TRANSFORM_NAMES`) of a map (H, W) or maps (..., H, W).

    0-3: rotation by t x 90 degrees (numpy ``rot90``); 4-7: left-right flip, then rotation by (t-4) x 90.
    """
    m = np.asarray(maps)
    if not isinstance(t, (int, np.integer)) or not 0 <= t < 8:
        raise PaperReproError(f"t: expected a dihedral transform index 0-7, found {t!r}")
    if t >= 4:
        m = np.flip(m, axis=-1)
    return np.rot90(m, int(t) % 4, axes=(-2, -1))


def _all_transforms(m: np.ndarray) -> np.ndarray:
    """(8, n, H, W) stack of the dihedral transforms of (n, H, W) maps."""
    return np.stack([dihedral_transform(m, t) for t in range(8)])


@dataclass
class _ModeSet:
    sel: np.ndarray      # flat indices into the rfft2 half plane, lowest |k| first
    scale: np.ndarray    # sqrt(Parseval weight) / N


def _modes(size: int, n_modes: int | None) -> _ModeSet:
    i = np.arange(size)
    kx = np.minimum(i, size - i)
    ky = np.arange(size // 2 + 1)
    k2 = (kx[:, None] ** 2 + ky[None, :] ** 2).ravel()
    w = np.full(size // 2 + 1, 2.0)
    w[0] = 1.0
    if size % 2 == 0:
        w[-1] = 1.0
    weights = np.broadcast_to(w, (size, size // 2 + 1)).ravel()
    order = np.argsort(k2, kind="stable")
    sel = order if n_modes is None else order[:int(n_modes)]
    return _ModeSet(sel, np.sqrt(weights[sel]) / size)


def _amplitudes(f: np.ndarray, modes: _ModeSet) -> np.ndarray:
    """Fourier-amplitude features (..., M) of rfft2 coefficients (..., H, Wr); |fa - fb|^2 bounds d_inv^2."""
    return np.abs(f.reshape(*f.shape[:-2], -1)[..., modes.sel]) * modes.scale


def _lower_bound(qa: np.ndarray, ra: np.ndarray) -> np.ndarray:
    """Certified lower bound (q, r) of the invariant d^2, from amplitude features qa (4, q, M), ra (r, M)."""
    gamma = _gamma(qa.shape[-1])
    r32, rn = _f32(ra), _sqnorm(ra)
    lb = np.full((qa.shape[1], ra.shape[0]), np.inf)
    for c in range(qa.shape[0]):
        d2, bound = _approx_d2(_f32(qa[c]), _sqnorm(qa[c]), r32, rn, gamma)
        np.minimum(lb, d2 - bound[:, None], out=lb)
    return np.maximum(lb, 0.0)


def _invariant_exact(qf: np.ndarray, qn: float, rf: np.ndarray, rn: np.ndarray, size: int,
                     workers: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For one query's 8 transforms qf (8, H, Wr) and references rf (c, H, Wr): min d^2, transform, flat shift."""
    corr = scipy.fft.irfft2(np.conj(qf)[:, None] * rf[None], s=(size, size), workers=workers)
    corr = corr.reshape(8, rf.shape[0], size * size)
    s_best = corr.argmax(axis=2)                                     # (8, c)
    c_best = np.take_along_axis(corr, s_best[..., None], axis=2)[..., 0]
    t_best = c_best.argmax(axis=0)                                   # (c,)
    cols = np.arange(rf.shape[0])
    return qn + rn - 2.0 * c_best[t_best, cols], t_best, s_best[t_best, cols]


def _invariant_search(Q: _Rows, R: _Rows, size: int, k: int, candidates: int | None,
                      lb_modes: int | None, budget: int, workers: int | None):
    nq, nr = Q.n, R.n
    hr = size * (size // 2 + 1)
    fft_bytes = 16 * hr                                   # one complex128 half-plane spectrum
    chunk = max(1, budget // 4 // (8 * (16 * hr + 8 * size * size)))   # refs per batch of 8 inverse FFTs
    fstep = max(1, min(nq, budget // 4 // (8 * fft_bytes + Q.row_bytes)))   # queries whose 8 spectra fit
    exact_mode = candidates is None
    modes = _modes(size, None if exact_mode else lb_modes)
    n_modes = modes.sel.size
    if exact_mode:                                        # the superblock's spectra stay in memory
        qstep = fstep
    else:                                                 # only amplitudes (4 x M) and the top list
        keep = min(int(candidates) + 1, nr)
        qstep = max(1, min(nq, budget // 4 // (4 * n_modes * 12 + keep * 16)))
    rstep = max(1, min(nr, budget // 4 // (fft_bytes + R.row_bytes + 8 * hr + 12 * n_modes),
                       budget // 64 // qstep))
    d_out = np.full((nq, k), np.inf)
    i_out = np.full((nq, k), -1, dtype=np.int64)
    t_out = np.zeros((nq, k), dtype=np.int64)
    s_out = np.zeros((nq, k), dtype=np.int64)
    certified = np.ones(nq, dtype=bool)
    classes = list(_AMPLITUDE_CLASSES)

    def spectra(x: np.ndarray) -> np.ndarray:
        return scipy.fft.rfft2(x.reshape(-1, size, size).astype(np.float64, copy=False), workers=workers)

    def query_spectra(x: np.ndarray, which=None) -> np.ndarray:       # (8 or 4, q, H, Wr)
        m = x.reshape(-1, size, size).astype(np.float64, copy=False)
        tr = _all_transforms(m) if which is None else np.stack([dihedral_transform(m, t) for t in which])
        return scipy.fft.rfft2(tr, workers=workers)

    for qs in range(0, nq, qstep):
        qe = min(nq, qs + qstep)
        best = {"d": d_out[qs:qe], "i": i_out[qs:qe], "t": t_out[qs:qe], "s": s_out[qs:qe]}

        def evaluate(i: int, qf: np.ndarray, qn: float, rf: np.ndarray, rn: np.ndarray, gidx: np.ndarray) -> None:
            d2, t, s = _invariant_exact(qf, qn, rf, rn, size, workers)
            _merge_topk(best, np.full(len(gidx), i), {"d": d2, "i": gidx, "t": t, "s": s})

        if exact_mode:
            qx = Q.read(qs, qe)
            qn = _sqnorm(qx)
            qf = query_spectra(qx)
            qa = _amplitudes(qf[classes], modes)                       # (4, q, M)
            for rs in range(0, nr, rstep):
                re_ = min(nr, rs + rstep)
                rx = R.read(rs, re_)
                rf, rn = spectra(rx), _sqnorm(rx)
                lb = _lower_bound(qa, _amplitudes(rf, modes))
                for i in range(qe - qs):
                    cand = np.flatnonzero(lb[i] <= best["d"][i, -1])
                    cand = cand[np.argsort(lb[i, cand], kind="stable")]
                    c = min(chunk, max(k, 4))                 # small first batches: a copy ends the search early
                    while cand.size:
                        now, cand = cand[:c], cand[c:]
                        evaluate(i, qf[:, i], qn[i], rf[now], rn[now], now + rs)
                        cand = cand[lb[i, cand] <= best["d"][i, -1]]
                        c = min(chunk, 2 * c)
        else:
            m = min(int(candidates), nr)
            qa = np.empty((len(classes), qe - qs, n_modes))
            for fs in range(qs, qe, fstep):                   # amplitudes, a few queries' spectra at a time
                fe = min(qe, fs + fstep)
                qa[:, fs - qs:fe - qs] = _amplitudes(query_spectra(Q.read(fs, fe), classes), modes)
            top = {"d": np.full((qe - qs, keep), np.inf), "i": np.full((qe - qs, keep), -1, dtype=np.int64)}
            for rs in range(0, nr, rstep):                    # pass 1: the m smallest bounds of each query
                re_ = min(nr, rs + rstep)
                lb = _lower_bound(qa, _amplitudes(spectra(R.read(rs, re_)), modes))
                kk = min(keep, lb.shape[1])
                part = (np.argpartition(lb, kk - 1, axis=1)[:, :kk] if kk < lb.shape[1]
                        else np.broadcast_to(np.arange(lb.shape[1]), lb.shape))
                rows = np.repeat(np.arange(qe - qs), kk)
                _merge_topk(top, rows, {"d": np.take_along_axis(lb, part, 1).ravel(), "i": part.ravel() + rs})
            del qa
            for i in range(qe - qs):                          # pass 2: those m candidates, exactly
                qx1 = Q.read(qs + i, qs + i + 1)
                qf1, qn1 = query_spectra(qx1)[:, 0], float(_sqnorm(qx1)[0])
                idx = np.sort(top["i"][i, :m])
                idx = idx[idx >= 0]
                for c0 in range(0, idx.size, chunk):
                    now = idx[c0:c0 + chunk]
                    rx = R.take(now)
                    evaluate(i, qf1, qn1, spectra(rx), _sqnorm(rx), now)
                next_lb = top["d"][i, m] if keep > m else np.inf
                certified[qs + i] = bool(next_lb >= best["d"][i, -1])

        # final recheck of the winners by direct differences in float64
        for fs in range(qs, qe, fstep):
            fe = min(qe, fs + fstep)
            qmaps = Q.read(fs, fe).reshape(-1, size, size).astype(np.float64, copy=False)
            flat = np.unique(i_out[fs:fe][i_out[fs:fe] >= 0])
            ref = R.take(flat).reshape(-1, size, size).astype(np.float64, copy=False)
            for i in range(fs, fe):
                for j in range(k):
                    if i_out[i, j] < 0:
                        continue
                    sy, sx = divmod(int(s_out[i, j]), size)
                    a = np.roll(dihedral_transform(qmaps[i - fs], int(t_out[i, j])), (sy, sx), axis=(0, 1))
                    d_out[i, j] = float(np.sum((a - ref[np.searchsorted(flat, i_out[i, j])]) ** 2))
                order = np.lexsort((i_out[i], d_out[i]))
                for arr in (d_out, i_out, t_out, s_out):
                    arr[i] = arr[i][order]
    shifts = np.stack([s_out // size, s_out % size], axis=-1)
    return i_out, d_out, t_out, shifts, certified


# ============================================================================== public NN search
def nearest_neighbors(queries, reference, k: int = 1, *, space: str = "pixel", standardize: bool = False,
                      angle_deg: float = _stats.DEFAULT_ANGLE_DEG, l_edges=None,
                      candidates: int | None = None, lb_modes: int | None = None,
                      block_bytes: int | None = None, workers: int | None = None) -> Neighbors:
    """The k nearest reference maps of each query map, exact (see the module docstring for the spaces).

    ``queries`` (Q, H, W) and ``reference`` (N, H, W): arrays or memory maps (e.g. from
    :func:`paper_repro.data.open_maps`). ``standardize`` (pixel, invariant): compare maps after
    removing each map's mean and scaling it to unit RMS. ``angle_deg``, ``l_edges``: the power
    spectrum's geometry and bins (power space). ``candidates``, ``lb_modes``: the invariant
    search's prefilter (None = exhaustive, exact). ``block_bytes`` bounds the working memory.
    """
    if space not in SPACES:
        raise PaperReproError(f"space: expected one of {', '.join(SPACES)}, found {space!r}")
    q = _check_maps(queries, "queries")
    r = _check_maps(reference, "reference")
    _same_size(q, r, "queries", "reference")
    k = _check_k(k, r.shape[0])
    budget = _budget(block_bytes)
    if space == "power":
        res = knn(power_features(q, angle_deg, l_edges), power_features(r, angle_deg, l_edges), k,
                  block_bytes=budget)
        res.space = "power"
        return res
    if space == "pixel":
        idx, d2 = _knn_rows(_Rows(q, "queries", standardize), _Rows(r, "reference", standardize), k, budget)
        return Neighbors(idx, np.sqrt(np.maximum(d2, 0.0)), "pixel", certified=np.ones(len(idx), dtype=bool))
    if candidates is not None and (not isinstance(candidates, (int, np.integer)) or candidates < k):
        raise PaperReproError(f"candidates: expected None or an integer >= k={k}, found {candidates!r}")
    if lb_modes is not None and (not isinstance(lb_modes, (int, np.integer)) or lb_modes < 1):
        raise PaperReproError(f"lb_modes: expected None or a positive integer, found {lb_modes!r}")
    idx, d2, t, s, cert = _invariant_search(_Rows(q, "queries", standardize), _Rows(r, "reference", standardize),
                                            q.shape[1], k, candidates, lb_modes, budget, workers)
    return Neighbors(idx, np.sqrt(np.maximum(d2, 0.0)), "invariant", transforms=t, shifts=s, certified=cert)


def invariant_distance(a, b) -> tuple[float, int, tuple[int, int]]:
    """min over the 8 dihedral transforms g and periodic shifts s of ||roll(g(a), s) - b||, one pair.

    Returns (distance, transform index, (dy, dx)).
    """
    if np.ndim(a) != 2 or np.shape(a) != np.shape(b):
        raise PaperReproError(f"a, b: expected two maps (H, W) of one shape, found {np.shape(a)} and {np.shape(b)}")
    res = nearest_neighbors(np.asarray(a)[None], np.asarray(b)[None], 1, space="invariant")
    return float(res.distances[0, 0]), int(res.transforms[0, 0]), tuple(int(v) for v in res.shifts[0, 0])


# ============================================================================== memorisation
@dataclass
class MemorisationVerdict(_Report):
    """Generated-to-training vs validation-to-training nearest distances (data-copying test).

    ``passed`` is False when generated maps are significantly closer to the training set than
    independent maps are: Bonferroni-combined p = min(1, 2 min(p_MW, p_KS)) < ``alpha``.
    """

    space: str
    standardize: bool
    n_generated: int
    n_validation: int
    n_training: int
    median_generated: float
    median_validation: float
    mannwhitney_u: float
    mannwhitney_p: float
    ks_statistic: float
    ks_p: float
    p_value: float
    alpha: float
    passed: bool
    close_quantile: float
    close_fraction_generated: float
    certified_generated: float
    certified_validation: float
    closest: list = field(default_factory=list)
    method: str = ""


def memorisation_test(generated, validation, training, *, space: str = "invariant",
                      standardize: bool = True, alpha: float = DEFAULTS.alpha,
                      candidates: int | None = DEFAULTS.prefilter_candidates,
                      lb_modes: int | None = DEFAULTS.prefilter_modes, close_quantile: float = 0.01,
                      n_closest: int = 5, angle_deg: float = _stats.DEFAULT_ANGLE_DEG, l_edges=None,
                      block_bytes: int | None = None, workers: int | None = None) -> MemorisationVerdict:
    """Does the generator copy training maps? Baseline: independent (validation) maps.

    For each generated and each validation map, its distance to the nearest training map (in
    ``space``, default the shift/flip-invariant one on standardized maps, so shifted, flipped or
    rescaled copies are caught). Generated maps systematically closer than validation maps is
    memorisation: one-sided Mann-Whitney U (Meehan et al. 2020) and one-sided two-sample KS
    (sensitive to a copied subset), Bonferroni-combined at level ``alpha``. Both sets go through
    the same search, so the prefilter (``candidates``) treats them alike. Also reported: the
    fraction of generated maps closer than the ``close_quantile`` quantile of the validation
    distances (about ``close_quantile`` for a novel generator) and the closest generated-training
    pairs. The validation maps must be independent of the training maps (other parent maps: crops
    overlapping training crops sit close to them and make the baseline lenient). Note: a generator
    whose maps are smoother than the data also sits closer to everything; read a failure together
    with the statistics verdicts and the close fraction.
    """
    g = _check_maps(generated, "generated", min_maps=3)
    v = _check_maps(validation, "validation", min_maps=3)
    t = _check_maps(training, "training", min_maps=1)
    _same_size(g, t, "generated", "training")
    _same_size(v, t, "validation", "training")
    alpha = _check_level(alpha, "alpha")
    close_quantile = _check_level(close_quantile, "close_quantile")
    if space != "invariant":
        candidates = lb_modes = None
    elif candidates is not None:
        candidates = min(int(candidates), t.shape[0])
    kw = dict(space=space, standardize=standardize, angle_deg=angle_deg, l_edges=l_edges,
              candidates=candidates, lb_modes=lb_modes, block_bytes=block_bytes, workers=workers)
    ng = nearest_neighbors(g, t, 1, **kw)
    nv = nearest_neighbors(v, t, 1, **kw)
    dg, dv = ng.distances[:, 0], nv.distances[:, 0]
    mw = scipy.stats.mannwhitneyu(dg, dv, alternative="less")
    ks = scipy.stats.ks_2samp(dg, dv, alternative="greater")   # CDF of generated above: closer
    p = min(1.0, 2.0 * min(float(mw.pvalue), float(ks.pvalue)))
    order = np.argsort(dg, kind="stable")[:n_closest]
    closest = []
    for i in order:
        row = {"generated": int(i), "training": int(ng.indices[i, 0]), "distance": float(dg[i])}
        if ng.transforms is not None:
            row["transform"] = TRANSFORM_NAMES[int(ng.transforms[i, 0])]
            row["shift"] = [int(x) for x in ng.shifts[i, 0]]
        closest.append(row)
    q_close = float(np.quantile(dv, close_quantile))
    method = (f"nearest training map in {space} space{' (standardized maps)' if standardize and space != 'power' else ''}"
              f"{f', prefilter {candidates} candidates' if candidates else ''}; one-sided Mann-Whitney U and "
              f"KS (generated closer), Bonferroni p = min(1, 2 min(p_MW, p_KS)) vs alpha = {alpha}")
    return MemorisationVerdict(
        space=space, standardize=bool(standardize), n_generated=len(dg), n_validation=len(dv),
        n_training=int(t.shape[0]), median_generated=float(np.median(dg)), median_validation=float(np.median(dv)),
        mannwhitney_u=float(mw.statistic), mannwhitney_p=float(mw.pvalue), ks_statistic=float(ks.statistic),
        ks_p=float(ks.pvalue), p_value=p, alpha=alpha, passed=bool(p >= alpha), close_quantile=close_quantile,
        close_fraction_generated=float(np.mean(dg < q_close)),
        certified_generated=float(np.mean(ng.certified)), certified_validation=float(np.mean(nv.certified)),
        closest=closest, method=method)


# ====================================================================== held-out-controlled copying test
@dataclass
class CopyingVerdict(_Report):
    """Nearest training map vs nearest held-out map, per generated map (:func:`copying_test`).

    ``passed`` is False when, among generated maps with one set much nearer than the others
    (by ``tail_sigma`` robust sigmas), that set is a training set more often than the
    K / (K + 1) that exchangeable sets give: one-sided binomial p < ``alpha``.
    """

    space: str
    n_generated: int
    n_groups: int
    parents_per_set: int
    maps_per_set: int
    parent_structure: str
    median_distance_training: float
    median_distance_held_out: float
    log_distance_offsets: list
    outlier_sigma: float
    tail_sigma: float
    training_tail: int
    held_out_tail: int
    expected_training_share: float
    p_value: float
    alpha: float
    passed: bool
    certified: float
    closest: list = field(default_factory=list)
    method: str = ""


def _parent_ids(parents, n: int, name: str) -> np.ndarray:
    if parents is None:
        return np.arange(n)
    ids = np.asarray(parents)
    if ids.ndim != 1 or len(ids) != n or not np.issubdtype(ids.dtype, np.integer):
        raise PaperReproError(f"{name}_parents: expected {n} integer parent-map ids, found "
                              f"{ids.dtype} array of shape {ids.shape}")
    return ids


def _matched_sets(parent_ids: np.ndarray, parents: np.ndarray, per_parent: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Sorted map indices: ``per_parent`` random maps of each of ``parents``."""
    out = [rng.choice(np.flatnonzero(parent_ids == p), per_parent, replace=False) for p in parents]
    return np.sort(np.concatenate(out))


def copying_test(generated, training, held_out, *, training_parents=None, held_out_parents=None,
                 alpha: float = DEFAULTS.alpha, tail_sigma: float = DEFAULTS.copying_tail_sigma, seed: int = 0,
                 candidates: int | None = DEFAULTS.prefilter_candidates,
                 lb_modes: int | None = DEFAULTS.prefilter_modes, n_closest: int = 5,
                 block_bytes: int | None = None, workers: int | None = None) -> CopyingVerdict:
    """Does the generator copy training maps? Control: held-out maps with the training set's structure.

    Each generated map g is compared, by the shift/flip-invariant distance between standardized
    maps, with K disjoint training sets T_1..T_K and one held-out set H of the same structure (as
    many parent maps, as many crops of each; K = training parents // held-out parents). When the
    generator does not copy, the K + 1 sets are exchangeable: a generator that is merely smoother or
    more typical than the data moves every distance alike (the confound of
    :func:`memorisation_test`), while a copy of a training map (shifted, flipped, noisy) has
    d(g, T_k) ~ 0 for the set holding its source. Per map, o_j = ln d_j - median of the other sets'
    ln d (each set centred by its median over maps), sigma = 1.4826 MAD of the o of each map's
    non-nearest sets (with K = 1 and most maps copied this scale inflates); among maps whose
    nearest set stands out (o < -``tail_sigma`` sigma) the outlying set should be a training set
    with probability K / (K + 1); more often is copying (one-sided binomial). ``*_parents``:
    parent-map id of each map
    (crops of one parent are alike); None treats every map as its own parent.
    """
    g = _check_maps(generated, "generated", min_maps=3)
    t = _check_maps(training, "training", min_maps=1)
    h = _check_maps(held_out, "held_out", min_maps=1)
    _same_size(g, t, "generated", "training")
    _same_size(h, t, "held_out", "training")
    alpha = _check_level(alpha, "alpha")
    if not (isinstance(tail_sigma, (int, float)) and math.isfinite(tail_sigma) and tail_sigma > 0):
        raise PaperReproError(f"tail_sigma: expected a positive number, found {tail_sigma!r}")
    tp = _parent_ids(training_parents, t.shape[0], "training")
    hp = _parent_ids(held_out_parents, h.shape[0], "held_out")
    structure = ("given parent ids" if training_parents is not None and held_out_parents is not None
                 else "unknown: maps treated as independent parents")
    rng = np.random.default_rng(seed)
    t_par, t_cnt = np.unique(tp, return_counts=True)
    h_par, h_cnt = np.unique(hp, return_counts=True)
    per_parent = int(min(t_cnt.min(), h_cnt.min()))
    n_par = min(len(h_par), len(t_par))
    groups = len(t_par) // n_par
    h_use = np.sort(rng.choice(h_par, n_par, replace=False))
    t_perm = rng.permutation(t_par)
    h_idx = _matched_sets(hp, h_use, per_parent, rng)
    t_idx = [_matched_sets(tp, np.sort(t_perm[k * n_par:(k + 1) * n_par]), per_parent, rng)
             for k in range(groups)]
    kw = dict(space="invariant", standardize=True, candidates=None if candidates is None else
              min(int(candidates), len(h_idx)), lb_modes=lb_modes, block_bytes=block_bytes, workers=workers)
    tiny = np.finfo(float).tiny
    n = g.shape[0]
    dist = np.empty((n, groups + 1))            # columns: training sets T_1..T_K, then H
    which = np.empty((n, groups), dtype=np.int64)
    transforms, shifts = np.zeros((n, groups), dtype=np.int64), np.zeros((n, groups, 2), dtype=np.int64)
    nh = nearest_neighbors(g, np.asarray(h[h_idx]), 1, **kw)
    dist[:, groups] = nh.distances[:, 0]
    cert = nh.certified.copy()
    for k in range(groups):
        nt = nearest_neighbors(g, np.asarray(t[t_idx[k]]), 1, **kw)
        dist[:, k] = nt.distances[:, 0]
        which[:, k] = t_idx[k][nt.indices[:, 0]]
        transforms[:, k], shifts[:, k] = nt.transforms[:, 0], nt.shifts[:, 0]
        cert &= nt.certified
    u = np.log(np.maximum(dist, tiny))
    offsets = np.median(u, axis=0)
    u = u - offsets
    # how much nearer each set is than the median of the others; exchangeable across sets when
    # nothing is copied, so an outlying set is a training set with probability K / (K + 1). The
    # scale comes from each map's non-nearest sets, which copies do not move (K >= 2).
    o = np.empty_like(u)
    for j in range(groups + 1):
        o[:, j] = u[:, j] - np.median(np.delete(u, j, axis=1), axis=1)
    rest = np.sort(o, axis=1)[:, 1:]
    sigma = float(1.4826 * np.median(np.abs(rest - np.median(rest))))
    cut = tail_sigma * max(sigma, tiny)
    nearest = np.argmin(o, axis=1)
    outlying = o[np.arange(n), nearest] < -cut
    low = int(np.sum(outlying & (nearest < groups)))
    high = int(np.sum(outlying & (nearest == groups)))
    share = groups / (groups + 1)
    p = (float(scipy.stats.binomtest(low, low + high, share, alternative="greater").pvalue)
         if low + high else 1.0)
    best_t = np.argmin(o[:, :groups], axis=1)
    rows = np.arange(n)
    closest = [{"generated": int(i), "training": int(which[i, best_t[i]]), "distance": float(dist[i, best_t[i]]),
                "held_out_distance": float(dist[i, groups]),
                "transform": TRANSFORM_NAMES[int(transforms[i, best_t[i]])],
                "shift": [int(x) for x in shifts[i, best_t[i]]]}
               for i in np.argsort(o[rows, best_t], kind="stable")[:n_closest]]
    method = (f"invariant distance of standardized maps to {groups} disjoint training sets and one "
              f"held-out set of {n_par} parents x {per_parent} maps each; per generated map, o = ln d - "
              f"median ln d of the other sets (sets centred by their median); maps with an outlying set "
              f"(o < -{tail_sigma:g} sigma): one-sided binomial test that the outlying set is a training "
              f"set more often than {groups}/{groups + 1}, alpha = {alpha}")
    return CopyingVerdict(
        space="invariant", n_generated=n, n_groups=groups, parents_per_set=n_par,
        maps_per_set=int(len(h_idx)), parent_structure=structure,
        median_distance_training=float(np.median(dist[:, :groups])),
        median_distance_held_out=float(np.median(dist[:, groups])),
        log_distance_offsets=[float(x) for x in offsets], outlier_sigma=sigma, tail_sigma=float(tail_sigma),
        training_tail=low, held_out_tail=high, expected_training_share=share, p_value=p, alpha=alpha,
        passed=bool(p >= alpha),
        certified=float(np.mean(cert)), closest=closest, method=method)


# ============================================================================== closest pairs (birthday)
@dataclass
class PairSearch:
    """Closest pairs i < j of one set (distances ascending) and the count of pairs below a threshold."""

    i: np.ndarray
    j: np.ndarray
    distances: np.ndarray
    n_below: int | None
    n_rows: int


def _pairs_rows(X: _Rows, n_pairs: int, tau2: float | None, budget: int) -> PairSearch:
    n = X.n
    gamma = _gamma(X.dim)
    step = max(1, min(n, budget // X.row_bytes, math.isqrt(budget // 64)))
    best = {"d": np.full(n_pairs, np.inf), "i": np.full(n_pairs, -1, dtype=np.int64),
            "j": np.full(n_pairs, -1, dtype=np.int64)}
    count = 0
    for a0 in range(0, n, step):
        a1 = min(n, a0 + step)
        xa = X.read(a0, a1)
        a32, an = _f32(xa), _sqnorm(xa)
        for b0 in range(a0, n, step):
            b1 = min(n, b0 + step)
            xb = xa if b0 == a0 else X.read(b0, b1)
            d2, bound = _approx_d2(a32, an, _f32(xb), _sqnorm(xb), gamma)
            if b0 == a0:
                for r in range(len(xa)):        # only i < j
                    d2[r, :r + 1] = np.inf
            if tau2 is not None:                # pairs surely below, and those to recheck
                count += int(np.count_nonzero(d2 < (tau2 - bound)[:, None]))
                pi, pj = np.nonzero((d2 >= (tau2 - bound)[:, None]) & (d2 < (tau2 + bound)[:, None]))
                if pi.size:
                    count += int((_exact_d2(xa, xb, pi, pj, budget) < tau2).sum())
            if not np.isfinite(best["d"][-1]):  # seed with this block's most promising pairs
                m = min(n_pairs, int(np.isfinite(d2).sum()))
                if m:
                    flat = np.argpartition(d2.ravel(), m - 1)[:m] if m < d2.size else np.arange(d2.size)
                    pi, pj = np.unravel_index(flat, d2.shape)
                    best = _merge_pairs(best, {"d": _exact_d2(xa, xb, pi, pj, budget), "i": pi + a0, "j": pj + b0})
                    d2[pi, pj] = np.inf
            lim = best["d"][-1] + bound
            mask = d2 <= lim[:, None]
            if not np.isfinite(best["d"][-1]):
                mask &= np.isfinite(d2)
            pi, pj = np.nonzero(mask)
            if pi.size:
                best = _merge_pairs(best, {"d": _exact_d2(xa, xb, pi, pj, budget), "i": pi + a0, "j": pj + b0})
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
        arr = _check_maps(arr, "maps", min_maps=2)
    else:
        arr = _check_vectors(arr, "vectors", min_rows=2)
    if not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise PaperReproError(f"n_pairs: expected a positive integer, found {n_pairs!r}")
    tau2 = None
    if threshold is not None:
        if not (isinstance(threshold, (int, float, np.floating)) and math.isfinite(threshold) and threshold >= 0):
            raise PaperReproError(f"threshold: expected a finite distance >= 0, found {threshold!r}")
        tau2 = float(threshold) ** 2
    return _pairs_rows(_Rows(arr, "maps", standardize), int(n_pairs), tau2, _budget(block_bytes))


@dataclass
class BirthdaySpace(_Report):
    """Birthday-paradox result in one space.

    Near-duplicates: pairs closer than ``threshold``, the ``quantile`` quantile of the reference
    maps' nearest-neighbour distances (within the reference set). Under the null hypothesis the
    generated batch has near-duplicate pairs at the reference's rate per pair; given the total,
    the generated count is binomial (a conditional test of two Poisson rates), one-sided p-value.
    ``support`` = C(s, 2) / duplicates: the number of equally likely distinct maps (at resolution
    ``threshold``) that would give this many duplicates, with a 95% Poisson (Garwood) interval
    (Arora & Zhang 2017: a batch of s has a duplicate with probability ~1/2 when support ~ s^2 / 1.4);
    ``support_ratio`` compares it with the reference's own (about 1 for a faithful generator).
    """

    space: str
    n_maps: int
    n_reference: int
    quantile: float
    threshold: float
    duplicates: int
    reference_duplicates: int
    expected_duplicates: float
    p_value: float
    support: float | None
    support_low: float | None
    support_high: float | None
    reference_support: float | None
    support_ratio: float | None
    reference_closest: float
    closest_pairs: list
    passed: bool


@dataclass
class BirthdayVerdict(_Report):
    """Birthday-paradox test over several spaces; each space at level alpha / (number of spaces)."""

    n_maps: int
    n_reference: int
    alpha: float
    passed: bool
    spaces: dict


def _support(pairs: float, count: int) -> tuple[float, float, float]:
    if count == 0:
        return math.inf, pairs / (scipy.stats.chi2.ppf(0.975, 2) / 2.0), math.inf
    lo = scipy.stats.chi2.ppf(0.025, 2 * count) / 2.0
    hi = scipy.stats.chi2.ppf(0.975, 2 * count + 2) / 2.0
    return pairs / count, pairs / hi, pairs / lo


def _birthday_space(space: str, gen: _Rows, ref: _Rows, n_pairs: int, quantile: float, level: float,
                    budget: int) -> BirthdaySpace:
    idx, d2 = _knn_rows(ref, ref, 1, budget, exclude_self=True)
    nn = np.sqrt(np.maximum(d2[:, 0], 0.0))
    tau = float(np.quantile(nn, quantile))
    c_ref = _pairs_rows(ref, 1, tau * tau, budget).n_below
    found = _pairs_rows(gen, n_pairs, tau * tau, budget)
    n_dup = int(found.n_below)
    p_gen, p_ref = gen.n * (gen.n - 1) / 2.0, ref.n * (ref.n - 1) / 2.0
    expected = p_gen * c_ref / p_ref
    total = n_dup + c_ref
    p = 1.0 if total == 0 else float(scipy.stats.binomtest(n_dup, total, p_gen / (p_gen + p_ref),
                                                               alternative="greater").pvalue)
    s, s_lo, s_hi = _support(p_gen, n_dup)
    s_ref = p_ref / c_ref if c_ref else math.inf
    ratio = s / s_ref if math.isfinite(s) and math.isfinite(s_ref) else None
    pairs = [{"i": int(a), "j": int(b), "distance": float(d)}
             for a, b, d in zip(found.i, found.j, found.distances)]
    return BirthdaySpace(space=space, n_maps=gen.n, n_reference=ref.n, quantile=quantile, threshold=tau,
                         duplicates=n_dup, reference_duplicates=int(c_ref), expected_duplicates=expected,
                         p_value=p, support=s, support_low=s_lo, support_high=s_hi, reference_support=s_ref,
                         support_ratio=ratio, reference_closest=float(nn.min()), closest_pairs=pairs,
                         passed=bool(p >= level))


def birthday_test(maps, reference, *, spaces: Sequence[str] = BIRTHDAY_SPACES, discriminator=None,
                  data_scale: float = 1.0, n_pairs: int = DEFAULTS.birthday_pairs,
                  quantile: float = DEFAULTS.duplicate_quantile, alpha: float = DEFAULTS.alpha,
                  standardize: bool = False, angle_deg: float = _stats.DEFAULT_ANGLE_DEG, l_edges=None,
                  batch_size: int = 256, block_bytes: int | None = None,
                  feature_memory_bytes: int = 2**31, workdir: str | os.PathLike | None = None) -> BirthdayVerdict:
    """Birthday-paradox test (Arora & Zhang 2017) of a batch of generated ``maps`` (paper: 32,768).

    ``reference``: independent maps of the same size (e.g. validation maps: one per parent map or
    well-separated crops, since overlapping crops of one parent are near-duplicates themselves);
    it calibrates the near-duplicate threshold of each space and the rate expected of a faithful
    generator. ``spaces``: any of ``pixel`` (L2 between maps), ``power`` (ln power spectra, see
    :func:`power_features`) and ``features`` (the ``discriminator``'s last convolutional
    activations, of ``data_scale`` x kappa; written to a temporary file under ``workdir`` when larger
    than ``feature_memory_bytes``). A mode-collapsed batch (few maps repeated with small noise)
    has far more near-duplicates than expected and fails.
    """
    g = _check_maps(maps, "maps", min_maps=2)
    r = _check_maps(reference, "reference", min_maps=3)
    _same_size(g, r, "maps", "reference")
    spaces = tuple(spaces)
    bad = [s for s in spaces if s not in BIRTHDAY_SPACES]
    if not spaces or bad:
        raise PaperReproError(f"spaces: expected some of {', '.join(BIRTHDAY_SPACES)}, found {list(spaces)!r}")
    if "features" in spaces and discriminator is None:
        raise PaperReproError("spaces: 'features' needs a discriminator (discriminator=None given)")
    if not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise PaperReproError(f"n_pairs: expected a positive integer, found {n_pairs!r}")
    quantile = _check_level(quantile, "quantile")
    alpha = _check_level(alpha, "alpha")
    budget = _budget(block_bytes)
    level = alpha / len(spaces)
    results = {}
    for space in spaces:
        if space == "pixel":
            results[space] = _birthday_space(space, _Rows(g, "maps", standardize),
                                             _Rows(r, "reference", standardize), n_pairs, quantile, level, budget)
        elif space == "power":
            results[space] = _birthday_space(space, _Rows(power_features(g, angle_deg, l_edges), "maps"),
                                             _Rows(power_features(r, angle_deg, l_edges), "reference"),
                                             n_pairs, quantile, level, budget)
        else:
            with tempfile.TemporaryDirectory(prefix="birthday-", dir=workdir) as tmp:
                fe_ref = discriminator_features(discriminator, r, data_scale=data_scale, batch_size=batch_size)
                big = g.shape[0] * fe_ref.shape[1] * 4 > feature_memory_bytes
                fe_gen = discriminator_features(discriminator, g, data_scale=data_scale, batch_size=batch_size,
                                                out=os.path.join(tmp, "features.npy") if big else None)
                results[space] = _birthday_space(space, _Rows(fe_gen, "maps (features)"),
                                                 _Rows(fe_ref, "reference (features)"), n_pairs, quantile, level,
                                                 budget)
                del fe_gen
    return BirthdayVerdict(n_maps=int(g.shape[0]), n_reference=int(r.shape[0]), alpha=alpha,
                           passed=all(res.passed for res in results.values()),
                           spaces={k: v.to_dict() for k, v in results.items()})


# ============================================================================== slerp
def slerp(z0, z1, t) -> np.ndarray:
    """Spherical linear interpolation (White 2016) between latent vectors, float32 (len(t), latent_dim).

    p(t) = sin((1-t) W)/sin W z0 + sin(t W)/sin W z1, W the angle between z0 and z1 (lengths are
    interpolated too); t = 0 and t = 1 give z0 and z1 exactly. Nearly parallel vectors fall back to
    linear interpolation; antipodal ones (no unique great circle) raise PaperReproError.
    """
    a = np.asarray(z0, dtype=np.float64)
    b = np.asarray(z1, dtype=np.float64)
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise PaperReproError(f"z0, z1: expected two latent vectors of one length, found shapes {np.shape(z0)} and {np.shape(z1)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all() and np.isfinite(tt).all()):
        raise PaperReproError("z0, z1, t: expected finite values, found NaN or inf")
    if tt.ndim != 1 or tt.size == 0:
        raise PaperReproError(f"t: expected a 1-D array of interpolation parameters, found shape {np.shape(t)}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise PaperReproError("z0, z1: a zero latent vector has no direction to interpolate")
    cos = float(np.clip(a @ b / (na * nb), -1.0, 1.0))
    omega = math.acos(cos)
    if math.sin(omega) < 1e-6:
        if cos < 0:
            raise PaperReproError("z0, z1: antipodal latent vectors, the slerp path is not unique")
        path = (1.0 - tt)[:, None] * a + tt[:, None] * b
    else:
        so = math.sin(omega)
        path = (np.sin((1.0 - tt) * omega) / so)[:, None] * a + (np.sin(tt * omega) / so)[:, None] * b
    path = path.astype(np.float32)
    path[tt == 0.0] = np.asarray(z0, dtype=np.float32)
    path[tt == 1.0] = np.asarray(z1, dtype=np.float32)
    return path


def _run_generator(generator: Callable, z: np.ndarray, batch_size: int, data_scale: float) -> np.ndarray:
    """Maps (n, H, W) float32 in convergence units from a Keras generator (or any callable z -> maps)."""
    try:
        import keras
        is_keras = isinstance(generator, keras.Model)
    except ImportError:                                   # pragma: no cover
        is_keras = False
    out = []
    for s in range(0, len(z), batch_size):
        y = generator(z[s:s + batch_size], training=False) if is_keras else generator(z[s:s + batch_size])
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 4 and y.shape[-1] == 1:
            y = y[..., 0]
        out.append(y / np.float32(data_scale))
    maps = np.concatenate(out)
    if maps.ndim != 3 or not np.isfinite(maps).all():
        raise PaperReproError(f"generator: expected finite maps (n, H, W[, 1]), found shape {maps.shape}")
    return maps


@dataclass
class SlerpResult:
    """Maps along a slerp path and the statistics tracked along it.

    ``stats[name]`` (n_steps,): ``mean``, ``variance`` (convergence units) and ``power_ell=<ell>``
    (C_ell in sr); ``spread[name]``: the standard deviation over random generated maps of the mean,
    ln variance and ln power (logs: these are positive, heavy-tailed statistics);
    ``max_step[name]`` = max |s(t_{i+1}) - s(t_i)| / spread on the same scale (``pixel``: the L2 step
    between consecutive maps over the RMS distance between two random maps). A generator that maps
    nearby latents to unrelated maps has steps ~1.4 or more; ``smooth`` = every max_step <
    ``threshold`` (0.5 suits the default 16 steps, where a uniform path between two typical maps
    moves ~0.1 per step).
    """

    t: np.ndarray
    latents: np.ndarray
    maps: np.ndarray
    ell: np.ndarray
    stats: dict
    spread: dict
    max_step: dict
    threshold: float
    smooth: bool

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary (no maps)."""
        return jsonable({"t": self.t, "ell": self.ell, "stats": self.stats, "spread": self.spread,
                          "max_step": self.max_step, "threshold": self.threshold, "smooth": self.smooth})


#: Fourier modes (half plane) in each band whose power a slerp path tracks: single bins of small
#: maps hold a handful of modes, whose power can pass through ~0 and is no usable smooth statistic
SLERP_BAND_MODES = 64


def _bands(size: int, angle_deg: float, l_edges, track_ell) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(mode-weighted ell, bin indices, their mode counts) of the power bands around each tracked ell."""
    hits = _stats.count_modes(size, angle_deg, l_edges)
    keep, centres = _nonempty_bins(size, angle_deg, l_edges)
    if track_ell is None:                    # 10%, 50%, 90% of the non-empty ell range
        targets = centres[np.round(np.array([0.1, 0.5, 0.9]) * (keep.size - 1)).astype(int)]
    else:
        targets = np.atleast_1d(np.asarray(track_ell, dtype=np.float64))
        if targets.ndim != 1 or targets.size == 0 or not np.isfinite(targets).all():
            raise PaperReproError(f"track_ell: expected finite multipoles, found {track_ell!r}")
    bands, seen = [], set()
    for ell in targets:
        order = np.argsort(np.abs(centres - ell), kind="stable")
        n = int(np.searchsorted(np.cumsum(hits[keep[order]]), SLERP_BAND_MODES)) + 1
        sel = np.sort(order[:n])
        if tuple(sel) in seen:
            continue
        seen.add(tuple(sel))
        w = hits[keep[sel]].astype(np.float64)
        bands.append((float(np.sum(w * centres[sel]) / w.sum()), keep[sel], w))
    return bands


def _path_stats(maps: np.ndarray, angle_deg: float, l_edges, bands) -> dict[str, np.ndarray]:
    flat = maps.reshape(len(maps), -1).astype(np.float64)
    _, p = _stats.power_spectrum(maps, angle_deg, l_edges)
    p = np.atleast_2d(p)
    out = {"mean": flat.mean(axis=1), "variance": flat.var(axis=1)}
    for ell, bins, w in bands:
        out[f"power_ell={ell:.0f}"] = p[:, bins] @ w / w.sum()     # mean power per mode of the band
    return out


def slerp_path(generator, z0, z1, n_steps: int = DEFAULTS.slerp_steps, *, data_scale: float = 1.0,
               angle_deg: float = _stats.DEFAULT_ANGLE_DEG, l_edges=None, track_ell: Sequence[float] | None = None,
               n_random: int = DEFAULTS.slerp_random_maps, seed: int = 0, batch_size: int = 64,
               threshold: float = DEFAULTS.slerp_max_step) -> SlerpResult:
    """Generate maps along the slerp path z0 -> z1 (Fig. 8) and measure how smoothly they change.

    ``generator``: a Keras generator (z -> tanh maps (B, H, W, 1)) or a callable; maps are output /
    ``data_scale``. ``track_ell``: multipoles whose power is tracked (default: three, at 10%, 50%
    and 90% of the non-empty ell range), each as the mean power of the nearest ell bins holding
    at least :data:`SLERP_BAND_MODES` Fourier modes; ``n_random`` maps from z ~ N(0, 1)
    (``seed``) set each statistic's spread.
    """
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 2:
        raise PaperReproError(f"n_steps: expected an integer >= 2, found {n_steps!r}")
    if not isinstance(n_random, (int, np.integer)) or n_random < 2:
        raise PaperReproError(f"n_random: expected an integer >= 2, found {n_random!r}")
    t = np.linspace(0.0, 1.0, int(n_steps))
    z = slerp(z0, z1, t)
    maps = _run_generator(generator, z, batch_size, data_scale)
    bands = _bands(maps.shape[1], angle_deg, l_edges, track_ell)
    rng = np.random.default_rng(seed)
    zr = rng.standard_normal((int(n_random), z.shape[1])).astype(np.float32)
    rand = _run_generator(generator, zr, batch_size, data_scale)
    if rand.shape[1:] != maps.shape[1:]:
        raise PaperReproError(f"generator: maps of inconsistent shapes {maps.shape[1:]} and {rand.shape[1:]}")
    stats = _path_stats(maps, angle_deg, l_edges, bands)
    rstats = _path_stats(rand, angle_deg, l_edges, bands)
    tiny = np.finfo(np.float64).tiny

    def scaled(name: str, v: np.ndarray) -> np.ndarray:
        return v if name == "mean" else np.log(np.maximum(v, tiny))

    spread = {k: float(np.std(scaled(k, v), ddof=1)) for k, v in rstats.items()}
    max_step = {k: (float(np.max(np.abs(np.diff(scaled(k, stats[k]))))) / spread[k] if spread[k] > 0 else math.inf)
                for k in stats}
    steps = np.sqrt(np.sum((np.diff(maps.astype(np.float64), axis=0)) ** 2, axis=(1, 2)))
    flat = rand.reshape(len(rand), -1).astype(np.float64)
    rms_pair = math.sqrt(2.0 * float(np.sum(flat.var(axis=0, ddof=1))))   # RMS distance of two random maps
    stats["pixel_step"] = steps
    spread["pixel"] = rms_pair
    max_step["pixel"] = float(steps.max()) / rms_pair if rms_pair > 0 else math.inf
    smooth = all(v < threshold for v in max_step.values())
    return SlerpResult(t=t, latents=z, maps=maps, ell=np.array([b[0] for b in bands]), stats=stats,
                       spread=spread, max_step=max_step, threshold=float(threshold), smooth=bool(smooth))
