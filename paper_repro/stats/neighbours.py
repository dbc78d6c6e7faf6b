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
novel maps prune little, so cost ~ N_query x N_reference x 8 inverse FFTs: 8 s per query against
128 maps of 256^2 on 2 busy cores). ``candidates=m`` is a candidate search, then exact verification:

1. per query the m references with the smallest bound over the ``lb_modes`` lowest-|k| modes
   (one float32 matrix product per block, bounds kept per amplitude class);
2. those m ranked by their correlation over all coarse shifts and 8 transforms of the maps
   reduced to the Fourier band |kx|, |ky| < :data:`COARSE_SIZE` / 2 (a 32^2 FFT per pair);
3. the ``verify`` best (reference, amplitude class) pairs evaluated exactly: both transforms of
   the class, all periodic shifts at full resolution (float32 FFTs pick the winners, every pair
   within a rounding allowance of the best is redone in float64, and the winner's distance is
   recomputed by direct differences).

A (shifted, flipped, noisy) copy has a bound near 0 and the largest coarse correlation, so it is
verified first (every planted copy in the tests was found and certified). ``certified[i]`` is True where the bounds of every (reference, class) pair left unverified exceed
the answer, i.e. the answer provably equals the exhaustive search's; otherwise it is the exact
distance to the best verified reference, an upper bound of the nearest distance (measured on
smooth 256^2 maps: within about 1% of it). 512 x 512 maps of 256^2 take about half a minute.

:func:`invariant_features` gives each map a vector whose L2 distances bound the invariant distance
from below for all 8 transforms at once: per orbit of Fourier modes under the square's symmetries
(:func:`dihedral_orbits`), the amplitudes sorted (a transform permutes modes within an orbit, and
sorted sequences are the closest pairing). Exact nearest neighbours in that space are one matrix
product per block (:func:`paper_repro.stats.distances.knn`); the copying test searches there and
checks the maps it flags with :func:`invariant_pairs` (the invariant distance of given pairs).

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
#: side (px) of the coarse maps (the Fourier band |kx|, |ky| < COARSE_SIZE / 2) that rank candidates
COARSE_SIZE = 32
#: (reference, amplitude class) pairs per query verified exactly after the coarse ranking
VERIFY_PAIRS = 8


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


def _class_bounds(qa: np.ndarray, ra: np.ndarray) -> np.ndarray:
    """Certified lower bounds (4, q, r) of d^2 over the transforms of each amplitude class (see
    :func:`transform_class`), from amplitude features qa (4, q, M), ra (r, M)."""
    gamma = dot_error_factor(qa.shape[-1])
    r32, rn = as_float32(ra), squared_norms(ra)
    lb = np.empty((qa.shape[0], qa.shape[1], ra.shape[0]))
    for c in range(qa.shape[0]):
        d2, bound = approx_sq_distances(as_float32(qa[c]), squared_norms(qa[c]), r32, rn, gamma)
        lb[c] = d2 - bound[:, None]
    return np.maximum(lb, 0.0)


def _lower_bound(qa: np.ndarray, ra: np.ndarray) -> np.ndarray:
    """Certified lower bound (q, r) of the invariant d^2, from amplitude features qa (4, q, M), ra (r, M)."""
    return _class_bounds(qa, ra).min(axis=0)


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


def transform_class(t: int) -> int:
    """Amplitude class (0-3) of dihedral transform ``t``: t and its 180-degree turn share one pattern."""
    return t % 2 + 2 * (t >= 4)


def _coarse(f: np.ndarray, size: int, c: int) -> np.ndarray:
    """The band |kx|, |ky| < c/2 of rfft2 coefficients (..., size, size//2+1) as a (..., c, c//2+1) spectrum."""
    h = c // 2
    out = np.zeros((*f.shape[:-2], c, h + 1), dtype=np.complex64)
    out[..., :h, :h] = f[..., :h, :h]
    out[..., c - h + 1:, :h] = f[..., size - h + 1:, :h]
    return out


def _shift_max(prod: np.ndarray, size: int, workers: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Max over all periodic shifts of the correlations whose spectra are ``prod`` (n, size, size//2+1)."""
    corr = scipy.fft.irfft2(prod, s=(size, size), workers=workers).reshape(len(prod), -1)
    s = corr.argmax(axis=1)
    return corr[np.arange(len(prod)), s].astype(np.float64), s


def _verify(qx: np.ndarray, qn: float, rx: np.ndarray, rn: np.ndarray, pairs: list, size: int,
            k: int, workers: int | None) -> dict:
    """Exact min over shifts of d^2 for (reference row, transform) ``pairs`` of one query map qx (H, W).

    Correlations in float32 pick the winners; every pair within a float32 rounding allowance
    (1e-4 |a||b|, ~100 x the FFT's rounding error) of the k-th best reference is redone in float64.
    Returns per pair d^2 (float64 where it matters), transform and flat shift.
    """
    ts = sorted({t for _, t in pairs})
    qf = {t: f for t, f in zip(ts, scipy.fft.rfft2(np.stack([dihedral_transform(qx, t) for t in ts])
                                                     .astype(np.float32), workers=workers))}
    rf = scipy.fft.rfft2(rx.astype(np.float32), workers=workers)
    j, t = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    cmax, shift = _shift_max(np.stack([np.conj(qf[b]) * rf[a] for a, b in pairs]), size, workers)
    d2 = qn + rn[j] - 2.0 * cmax
    slack = 2e-4 * np.sqrt(qn * rn[j])                   # 2 x the allowance on a correlation
    per_ref = np.full(len(rx), np.inf)
    np.minimum.at(per_ref, j, d2)
    kth = np.sort(per_ref)[min(k, len(rx)) - 1]
    redo = np.flatnonzero(d2 <= kth + slack + slack.max())
    if redo.size:
        f64 = {b: scipy.fft.rfft2(dihedral_transform(qx, b), workers=workers) for b in set(t[redo].tolist())}
        r64 = scipy.fft.rfft2(rx[np.unique(j[redo])], workers=workers)
        rpos = np.searchsorted(np.unique(j[redo]), j[redo])
        c64, s64 = _shift_max(np.conj(np.stack([f64[b] for b in t[redo]])) * r64[rpos], size, workers)
        d2[redo], shift[redo] = qn + rn[j[redo]] - 2.0 * c64, s64
    return {"d": d2, "j": j, "t": t, "s": shift}


def _candidate_search(Q: Rows, R: Rows, size: int, k: int, candidates: int, lb_modes: int | None,
                      verify: int, budget: int, workers: int | None, out: dict) -> np.ndarray:
    """Candidates, then exact verification (module docstring); fills ``out`` (d, i, t, s). Returns per
    query a lower bound of d^2 over every (reference, class) pair left unverified."""
    nq, nr = Q.n, R.n
    hr = size * (size // 2 + 1)
    modes = _modes(size, lb_modes)
    n_modes = modes.sel.size
    c = min(COARSE_SIZE, size - size % 2)
    m = min(int(candidates), nr)
    keep = min(m + 1, nr)
    scale = c * c / float(size * size)                   # coarse correlation -> full-resolution units
    fstep = max(1, min(nq, budget // 4 // (4 * 16 * hr + Q.row_bytes)))
    qstep = max(1, min(nq, budget // 4 // (4 * n_modes * 12 + keep * 64 + 8 * c * c * 8)))
    rstep = max(1, min(nr, budget // 4 // (16 * hr + R.row_bytes + 8 * hr + 12 * n_modes),
                       budget // 64 // qstep))
    store = nr * c * (c // 2 + 1) * 8 <= budget // 4      # keep every reference's coarse band
    rc_all = np.zeros((nr, c, c // 2 + 1), dtype=np.complex64) if store else None
    rn_all = np.zeros(nr)
    unverified = np.full(nq, np.inf)
    classes = list(_AMPLITUDE_CLASSES)
    for qs in range(0, nq, qstep):
        qe = min(nq, qs + qstep)
        nb = qe - qs
        qa = np.empty((4, nb, n_modes))
        qc = np.empty((nb, 8, c, c // 2 + 1), dtype=np.complex64)
        qn = np.empty(nb)
        for fs in range(qs, qe, fstep):                   # amplitudes and coarse bands, a few queries at a time
            fe = min(qe, fs + fstep)
            qx = Q.read(fs, fe).reshape(-1, size, size)
            qn[fs - qs:fe - qs] = squared_norms(qx.reshape(len(qx), -1))
            f = scipy.fft.rfft2(np.stack([dihedral_transform(qx, t) for t in classes]), workers=workers)
            qa[:, fs - qs:fe - qs] = _amplitudes(f, modes)
            low = scipy.fft.irfft2(_coarse(f[0], size, c), s=(c, c), workers=workers)   # coarse maps
            qc[fs - qs:fe - qs] = scipy.fft.rfft2(_all_transforms(low), workers=workers).transpose(1, 0, 2, 3)
        top = {"d": np.full((nb, keep), np.inf), "i": np.full((nb, keep), -1, dtype=np.int64),
               "c": np.full((nb, keep, 4), np.inf)}
        for rs in range(0, nr, rstep):                    # pass 1: the m smallest amplitude bounds
            re_ = min(nr, rs + rstep)
            rx = R.read(rs, re_)
            rf = scipy.fft.rfft2(rx.reshape(-1, size, size), workers=workers)
            if qs == 0:
                rn_all[rs:re_] = squared_norms(rx)
                if store:
                    rc_all[rs:re_] = _coarse(rf, size, c)
            lbc = _class_bounds(qa, _amplitudes(rf, modes))           # (4, nb, r)
            lb = lbc.min(axis=0)
            kk = min(keep, lb.shape[1])
            part = (np.argpartition(lb, kk - 1, axis=1)[:, :kk] if kk < lb.shape[1]
                    else np.broadcast_to(np.arange(lb.shape[1]), lb.shape))
            rows = np.repeat(np.arange(nb), kk)
            merge_top_k(top, rows, {"d": np.take_along_axis(lb, part, 1).ravel(), "i": part.ravel() + rs,
                                    "c": lbc[:, rows, part.ravel()].T})
        del qa
        for i in range(nb):                               # pass 2: coarse ranking; pass 3: exact verification
            cand = top["i"][i, :m]
            cand = cand[cand >= 0]
            if store:
                rc = rc_all[cand]
            else:
                order = np.argsort(cand)
                rc = np.empty((len(cand), c, c // 2 + 1), dtype=np.complex64)
                rc[order] = _coarse(scipy.fft.rfft2(R.take(cand[order]).reshape(-1, size, size),
                                                    workers=workers), size, c)
            corr = scipy.fft.irfft2(np.conj(qc[i])[:, None] * rc[None], s=(c, c), workers=workers)
            approx = qn[i] + rn_all[cand][None] - 2.0 * scale * corr.reshape(8, len(cand), -1).max(axis=2)
            by_class = np.minimum(approx[[0, 1, 4, 5]], approx[[2, 3, 6, 7]])     # (4, m)
            order = np.argsort(by_class, axis=None, kind="stable")
            chosen, refs = [], set()
            for flat in order:
                g, a = divmod(int(flat), len(cand))
                if len(chosen) >= verify and len(refs) >= k:
                    break
                chosen.append((a, g))
                refs.add(a)
            ref_rows = np.array(sorted(refs))
            rx = R.take(cand[ref_rows]).reshape(-1, size, size)
            pos = {a: p for p, a in enumerate(ref_rows.tolist())}
            pairs = [(pos[a], classes[g] + d) for a, g in chosen for d in (0, 2)]
            qx1 = Q.read(qs + i, qs + i + 1).reshape(size, size)
            res = _verify(qx1, qn[i], rx, rn_all[cand[ref_rows]], pairs, size, k, workers)
            gidx = cand[ref_rows][res["j"]]
            o = np.lexsort((res["d"], res["j"]))
            first = o[np.r_[True, np.diff(res["j"][o]) != 0]]        # each reference's best transform
            best_d = res["d"][first]
            row = {key: out[key][qs + i:qs + i + 1] for key in ("d", "i", "t", "s")}
            merge_top_k(row, np.zeros(len(first), dtype=np.int64),
                        {"d": best_d, "i": gidx[first], "t": res["t"][first], "s": res["s"][first]})
            done = np.zeros((4, len(cand)), dtype=bool)
            for a, g in chosen:
                done[g, a] = True
            left = top["c"][i, :len(cand)].T[~done]
            unverified[qs + i] = min(float(left.min()) if left.size else np.inf,
                                     float(top["d"][i, m]) if keep > m else np.inf)
    return unverified


def _invariant_search(Q: Rows, R: Rows, size: int, k: int, candidates: int | None,
                      lb_modes: int | None, budget: int, workers: int | None, verify: int = 8):
    nq, nr = Q.n, R.n
    hr = size * (size // 2 + 1)
    fft_bytes = 16 * hr                                   # one complex128 half-plane spectrum
    chunk = max(1, budget // 4 // (8 * (16 * hr + 8 * size * size)))   # refs per batch of 8 inverse FFTs
    fstep = max(1, min(nq, budget // 4 // (8 * fft_bytes + Q.row_bytes)))   # queries whose 8 spectra fit
    d_out = np.full((nq, k), np.inf)
    i_out = np.full((nq, k), -1, dtype=np.int64)
    t_out = np.zeros((nq, k), dtype=np.int64)
    s_out = np.zeros((nq, k), dtype=np.int64)
    unverified = None
    if candidates is not None:
        unverified = _candidate_search(Q, R, size, k, candidates, lb_modes, verify, budget, workers,
                                       {"d": d_out, "i": i_out, "t": t_out, "s": s_out})
    else:
        modes = _modes(size, None)
        rstep = max(1, min(nr, budget // 4 // (fft_bytes + R.row_bytes + 8 * hr + 12 * modes.sel.size),
                           budget // 64 // fstep))
        classes = list(_AMPLITUDE_CLASSES)
        for qs in range(0, nq, fstep):                    # the superblock's spectra stay in memory
            qe = min(nq, qs + fstep)
            best = {"d": d_out[qs:qe], "i": i_out[qs:qe], "t": t_out[qs:qe], "s": s_out[qs:qe]}
            qx = Q.read(qs, qe)
            qn = squared_norms(qx)
            qf = scipy.fft.rfft2(_all_transforms(qx.reshape(-1, size, size)), workers=workers)
            qa = _amplitudes(qf[classes], modes)                       # (4, q, M)
            for rs in range(0, nr, rstep):
                re_ = min(nr, rs + rstep)
                rx = R.read(rs, re_)
                rf, rn = scipy.fft.rfft2(rx.reshape(-1, size, size), workers=workers), squared_norms(rx)
                lb = _lower_bound(qa, _amplitudes(rf, modes))
                for i in range(qe - qs):
                    cand = np.flatnonzero(lb[i] <= best["d"][i, -1])
                    cand = cand[np.argsort(lb[i, cand], kind="stable")]
                    c = min(chunk, max(k, 4))                 # small first batches: a copy ends the search early
                    while cand.size:
                        now, cand = cand[:c], cand[c:]
                        d2, t, s = _invariant_exact(qf[:, i], qn[i], rf[now], rn[now], size, workers)
                        merge_top_k(best, np.full(len(now), i), {"d": d2, "i": now + rs, "t": t, "s": s})
                        cand = cand[lb[i, cand] <= best["d"][i, -1]]
                        c = min(chunk, 2 * c)
    # final recheck of the winners by direct differences in float64
    for fs in range(0, nq, fstep):
        fe = min(nq, fs + fstep)
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
    # certified: no unverified pair can come closer than the k-th answer (by direct differences)
    certified = np.ones(nq, dtype=bool) if unverified is None else unverified >= d_out[:, -1]
    shifts = np.stack([s_out // size, s_out % size], axis=-1)
    return i_out, d_out, t_out, shifts, certified


# ============================================================================== orbit-sorted amplitudes
def dihedral_orbits(size: int, n_modes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The lowest-|k| orbits of the Fourier modes of (size, size) maps under the square's 8 symmetries.

    An orbit is {(+-kx, +-ky), (+-ky, +-kx)} (mod size): the modes a dihedral transform can move
    mode (kx, ky) to. Orbits are taken by increasing |k| until they hold at least ``n_modes`` modes
    (None: all). Returns (O, 8) indices into the flat rfft2 half plane, each orbit's 8 images (an orbit
    of s modes lists each 8 / s times; modes of the other half plane by conjugate symmetry), and the
    (O,) weights sqrt(s / 8) / size of :func:`invariant_features`.
    """
    if not isinstance(size, (int, np.integer)) or size < 2:
        raise PaperReproError(f"size: expected an integer >= 2, found {size!r}")
    if n_modes is not None and (not isinstance(n_modes, (int, np.integer)) or n_modes < 1):
        raise PaperReproError(f"n_modes: expected None or a positive integer, found {n_modes!r}")
    n = int(size)
    kx, ky = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    images = [(kx, ky), (-kx, ky), (kx, -ky), (-kx, -ky), (ky, kx), (-ky, kx), (ky, -kx), (-ky, -kx)]
    flat = np.stack([(a % n) * n + b % n for a, b in images], axis=-1).reshape(n * n, 8)
    rep = np.unique(flat.min(axis=1))                       # one representative per orbit
    signed = np.minimum(np.arange(n), n - np.arange(n))
    k2 = (signed[:, None] ** 2 + signed[None, :] ** 2).ravel()
    rep = rep[np.lexsort((rep, k2[rep]))]                   # by |k|, then index
    members = flat[rep]
    srt = np.sort(members, axis=1)
    sizes = 1 + np.count_nonzero(np.diff(srt, axis=1), axis=1)
    if n_modes is not None:
        keep = min(len(rep), int(np.searchsorted(np.cumsum(sizes), n_modes)) + 1)
        members, sizes = members[:keep], sizes[:keep]
    a, b = members // n, members % n
    wr = n // 2 + 1
    other = b >= wr                                         # the other half plane: |A(-k)| = |A(k)|
    a, b = np.where(other, -a % n, a), np.where(other, -b % n, b)
    return a * wr + b, np.sqrt(sizes / 8.0) / n


def invariant_features(maps, n_modes: int | None = None, *, standardize: bool = True,
                       block_bytes: int | None = None, workers: int | None = None) -> np.ndarray:
    """Shift- and flip-invariant features (N, 8 O) of maps (N, H, W): sorted Fourier amplitudes per orbit.

    For each orbit of :func:`dihedral_orbits` (the lowest-|k| ones holding ``n_modes`` modes), its
    modes' Fourier amplitudes sorted and weighted. The L2 distance between two maps' features is a
    certified lower bound of their shift/flip-invariant distance (standardized maps with
    ``standardize``): for any transform g and shift s, by Parseval and ||u| - |v|| <= |u - v|,
    ||roll(g a, s) - b||^2 >= sum_k (|A(g k)| - |B(k)|)^2 / N^2; g permutes the modes within each
    orbit, and by the rearrangement inequality an orbit's sum is smallest with both sides sorted.
    An exact copy, shifted or flipped, has the same features; additive noise moves them by at most
    its norm in those modes. Float64, computed block by block (memory maps are streamed).
    """
    arr = check_map_set(maps, "maps")
    size = arr.shape[1]
    idx, w = dihedral_orbits(size, n_modes)
    rows = Rows(arr, "maps")
    step = max(1, min(rows.n, block_budget(block_bytes) // (40 * size * size)))
    out = np.empty((rows.n, idx.size))
    for s in range(0, rows.n, step):
        e = min(rows.n, s + step)
        x = rows.read(s, e).reshape(e - s, size, size).astype(np.float64)
        f = scipy.fft.rfft2(x, workers=workers).reshape(e - s, -1)
        amp = np.abs(f[:, idx])                                               # (b, O, 8)
        if standardize:                 # the standardized map's amplitudes: mode 0 gone, scaled by 1 / rms
            amp[:, idx == 0] = 0.0
            x -= x.mean(axis=(1, 2), keepdims=True)
            rms = np.sqrt(np.einsum("bij,bij->b", x, x) / size ** 2)
            amp /= np.where(rms > 0, rms, 1.0)[:, None, None]
        amp.sort(axis=-1)
        amp *= w[:, None]
        out[s:e] = amp.reshape(e - s, -1)
    return out


def invariant_pairs(queries, reference, query_rows, reference_rows, *, standardize: bool = False,
                    block_bytes: int | None = None, workers: int | None = None):
    """The shift/flip-invariant distance of given pairs (queries[query_rows[i]], reference[reference_rows[i]]).

    Returns (distances (P,), transforms (P,), shifts (P, 2)) with the convention of :class:`Neighbors`:
    ``roll(dihedral_transform(query, t), (dy, dx))`` is nearest to the reference map. All 8 transforms
    and every periodic shift by float64 FFT correlation; each winner's distance recomputed by direct
    differences. ``standardize``: of the standardized maps.
    """
    q = check_map_set(queries, "queries")
    r = check_map_set(reference, "reference")
    check_same_size(q, r, "queries", "reference")
    qi, ri = np.asarray(query_rows, dtype=np.int64), np.asarray(reference_rows, dtype=np.int64)
    if qi.shape != ri.shape or qi.ndim != 1 or (qi.size and (qi.min() < 0 or qi.max() >= len(q)
                                                               or ri.min() < 0 or ri.max() >= len(r))):
        raise PaperReproError(f"query_rows, reference_rows: expected two equally long lists of row indices "
                              f"(< {len(q)} and < {len(r)}), found shapes {qi.shape} and {ri.shape}")
    size = q.shape[1]
    Q, R = Rows(q, "queries", standardize), Rows(r, "reference", standardize)
    d = np.empty(qi.size)
    t_out = np.zeros(qi.size, dtype=np.int64)
    s_out = np.zeros((qi.size, 2), dtype=np.int64)
    step = max(1, block_budget(block_bytes) // (8 * 8 * 3 * size * size))
    for s in range(0, qi.size, step):
        e = min(qi.size, s + step)
        uq, iq = np.unique(qi[s:e], return_inverse=True)
        ur, ir = np.unique(ri[s:e], return_inverse=True)
        a = Q.take(uq).reshape(-1, size, size).astype(np.float64, copy=False)[iq]
        b = R.take(ur).reshape(-1, size, size).astype(np.float64, copy=False)[ir]
        fa = scipy.fft.rfft2(_all_transforms(a), workers=workers)          # (8, p, H, Wr)
        corr = scipy.fft.irfft2(np.conj(fa) * scipy.fft.rfft2(b, workers=workers)[None], s=(size, size),
                                workers=workers).reshape(8, e - s, -1)
        flat = corr.reshape(8, e - s, -1).max(axis=2).argmax(axis=0)       # best transform per pair
        shift = corr[flat, np.arange(e - s)].argmax(axis=1)
        for p in range(e - s):
            sy, sx = divmod(int(shift[p]), size)
            moved = np.roll(dihedral_transform(a[p], int(flat[p])), (sy, sx), axis=(0, 1))
            d[s + p] = float(np.sqrt(np.sum((moved - b[p]) ** 2)))
            t_out[s + p], s_out[s + p] = flat[p], (sy, sx)
    return d, t_out, s_out


# ============================================================================== the search
def nearest_neighbors(queries, reference, k: int = 1, *, space: str = "pixel", standardize: bool = False,
                      angle_deg: float = DEFAULT_ANGLE_DEG, l_edges=None,
                      candidates: int | None = None, lb_modes: int | None = None,
                      verify: int = VERIFY_PAIRS, block_bytes: int | None = None, workers: int | None = None) -> Neighbors:
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
    if not isinstance(verify, (int, np.integer)) or verify < 1:
        raise PaperReproError(f"verify: expected a positive integer, found {verify!r}")
    idx, d2, t, s, cert = _invariant_search(Rows(q, "queries", standardize), Rows(r, "reference", standardize),
                                            q.shape[1], k, candidates, lb_modes, budget, workers, int(verify))
    return Neighbors(idx, np.sqrt(np.maximum(d2, 0.0)), "invariant", transforms=t, shifts=s, certified=cert)


def invariant_distance(a, b) -> tuple[float, int, tuple[int, int]]:
    """min over the 8 dihedral transforms g and periodic shifts s of ||roll(g(a), s) - b||, one pair.

    Returns (distance, transform index, (dy, dx)).
    """
    if np.ndim(a) != 2 or np.shape(a) != np.shape(b):
        raise PaperReproError(f"a, b: expected two maps (H, W) of one shape, found {np.shape(a)} and {np.shape(b)}")
    res = nearest_neighbors(np.asarray(a)[None], np.asarray(b)[None], 1, space="invariant")
    return float(res.distances[0, 0]), int(res.transforms[0, 0]), tuple(int(v) for v in res.shifts[0, 0])
