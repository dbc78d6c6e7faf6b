"""Nearest neighbours of maps, exact, in three spaces; the shift- and flip-invariant search.

The k nearest reference maps of each query map in one of three spaces:

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

Maps (N, H, W) float32 in convergence units (memory maps are streamed, see
:mod:`paper_repro.stats.distances`), angles in degrees, distances float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from ..errors import PaperReproError
from .distances import (
    Neighbors,
    Rows,
    approx_sq_distances,
    as_float32,
    block_budget,
    check_k,
    check_map_set,
    check_same_size,
    dot_error_factor,
    knn,
    knn_rows,
    merge_top_k,
    squared_norms,
)
from .power import DEFAULT_ANGLE_DEG, power_features

#: spaces of :func:`nearest_neighbors`
SPACES = ("pixel", "power", "invariant")
#: names of the 8 dihedral transforms, by index (see :func:`dihedral_transform`)
TRANSFORM_NAMES = ("identity", "rot90", "rot180", "rot270", "flip", "flip+rot90", "flip+rot180", "flip+rot270")
#: one transform per distinct Fourier-amplitude pattern (rot180 = identity up to a shift, etc.)
_AMPLITUDE_CLASSES = (0, 1, 4, 5)


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
    gamma = dot_error_factor(qa.shape[-1])
    r32, rn = as_float32(ra), squared_norms(ra)
    lb = np.full((qa.shape[1], ra.shape[0]), np.inf)
    for c in range(qa.shape[0]):
        d2, bound = approx_sq_distances(as_float32(qa[c]), squared_norms(qa[c]), r32, rn, gamma)
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


def _invariant_search(Q: Rows, R: Rows, size: int, k: int, candidates: int | None,
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

        def evaluate(i: int, qf: np.ndarray, qn: float, rf: np.ndarray, rn: np.ndarray, gidx: np.ndarray,
                     best: dict = best) -> None:
            d2, t, s = _invariant_exact(qf, qn, rf, rn, size, workers)
            merge_top_k(best, np.full(len(gidx), i), {"d": d2, "i": gidx, "t": t, "s": s})

        if exact_mode:
            qx = Q.read(qs, qe)
            qn = squared_norms(qx)
            qf = query_spectra(qx)
            qa = _amplitudes(qf[classes], modes)                       # (4, q, M)
            for rs in range(0, nr, rstep):
                re_ = min(nr, rs + rstep)
                rx = R.read(rs, re_)
                rf, rn = spectra(rx), squared_norms(rx)
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
                merge_top_k(top, rows, {"d": np.take_along_axis(lb, part, 1).ravel(), "i": part.ravel() + rs})
            del qa
            for i in range(qe - qs):                          # pass 2: those m candidates, exactly
                qx1 = Q.read(qs + i, qs + i + 1)
                qf1, qn1 = query_spectra(qx1)[:, 0], float(squared_norms(qx1)[0])
                idx = np.sort(top["i"][i, :m])
                idx = idx[idx >= 0]
                for c0 in range(0, idx.size, chunk):
                    now = idx[c0:c0 + chunk]
                    rx = R.take(now)
                    evaluate(i, qf1, qn1, spectra(rx), squared_norms(rx), now)
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


# ============================================================================== the search
def nearest_neighbors(queries, reference, k: int = 1, *, space: str = "pixel", standardize: bool = False,
                      angle_deg: float = DEFAULT_ANGLE_DEG, l_edges=None,
                      candidates: int | None = None, lb_modes: int | None = None,
                      block_bytes: int | None = None, workers: int | None = None) -> Neighbors:
    """The k nearest reference maps of each query map, exact (see the module docstring for the spaces).

    ``queries`` (Q, H, W) and ``reference`` (N, H, W): arrays or memory maps (e.g. from
    :func:`paper_repro.maps.io.open_maps`). ``standardize`` (pixel, invariant): compare maps after
    removing each map's mean and scaling it to unit RMS. ``angle_deg``, ``l_edges``: the power
    spectrum's geometry and bins (power space). ``candidates``, ``lb_modes``: the invariant
    search's prefilter (None = exhaustive, exact). ``block_bytes`` bounds the working memory.
    """
    if space not in SPACES:
        raise PaperReproError(f"space: expected one of {', '.join(SPACES)}, found {space!r}")
    q = check_map_set(queries, "queries")
    r = check_map_set(reference, "reference")
    check_same_size(q, r, "queries", "reference")
    k = check_k(k, r.shape[0])
    budget = block_budget(block_bytes)
    if space == "power":
        res = knn(power_features(q, angle_deg, l_edges), power_features(r, angle_deg, l_edges), k,
                  block_bytes=budget)
        res.space = "power"
        return res
    if space == "pixel":
        idx, d2 = knn_rows(Rows(q, "queries", standardize), Rows(r, "reference", standardize), k, budget)
        return Neighbors(idx, np.sqrt(np.maximum(d2, 0.0)), "pixel", certified=np.ones(len(idx), dtype=bool))
    if candidates is not None and (not isinstance(candidates, (int, np.integer)) or candidates < k):
        raise PaperReproError(f"candidates: expected None or an integer >= k={k}, found {candidates!r}")
    if lb_modes is not None and (not isinstance(lb_modes, (int, np.integer)) or lb_modes < 1):
        raise PaperReproError(f"lb_modes: expected None or a positive integer, found {lb_modes!r}")
    idx, d2, t, s, cert = _invariant_search(Rows(q, "queries", standardize), Rows(r, "reference", standardize),
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
