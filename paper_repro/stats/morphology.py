"""Morphology of convergence maps, exactly as LensTools 1.2: gradients, Minkowski functionals, peaks.

* :func:`gradient_hessian` -- ``ConvergenceMap.gradient()`` and ``hessian()``;
* :func:`minkowski_functionals` -- ``ConvergenceMap.minkowskiFunctionals(thresholds, norm)``;
* :func:`peak_counts` -- ``ConvergenceMap.peakCount(thresholds, norm)``;
* :func:`moments` -- ``ConvergenceMap.moments(connected, dimensionless)``;
* :func:`pixel_histogram` -- per-map histograms of pixel values (the paper's Fig. 2 statistic).

They reproduce LensTools' C code (differentials.c: same finite differences, same bin conventions,
the same floating-point operations where it matters), so results agree with LensTools to ~1e-14
relative (tests/stats/test_morphology.py against the oracle fixture; tests_lenstools/ against
LensTools 1.2), on a batch with vectorised NumPy. Per map, every step writes into one reused
per-thread workspace (no allocation, no page faults), which makes these memory-bound loops fast.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import PaperReproError
from .batching import (
    as_batch,
    check_edges,
    iter_chunks,
    run_parallel,
    thread_buffer,
    unbatch,
)

#: the paper's Minkowski thresholds in units of the map's std: 20 edges, 19 values per functional
DEFAULT_MF_THRESHOLDS = np.arange(-2.0, 2.0, 0.2)
#: peak-count thresholds (units of sigma) of the LensTools oracle fixture: 15 edges, 14 bins
DEFAULT_PEAK_THRESHOLDS = np.arange(-2.0, 5.25, 0.5)
#: names of the nine LensTools moments, in order
MOMENT_NAMES = ("sigma0", "sigma1", "S0", "S1", "S2", "K0", "K1", "K2", "K3")


# --- per-map buffers and LensTools' finite differences (differentials.c) -------------------------------

def _workspace(size: int) -> "_Workspace":
    """This thread's workspace for size x size maps (kept between calls when small enough)."""
    return thread_buffer("workspace", (size, size), lambda: _Workspace(size))


class _Workspace:
    """Buffers for one N x N map, reused map after map: no allocation (and no page faults) per map."""

    def __init__(self, size: int):
        n = size
        self.size = n
        self.shape = (n, n)
        self.flat = np.empty(n * n + 4 * n + 4)              # map, 2 wrapped rows each side, 2 spare
        self.rows = self.flat[2:2 + n * n + 4 * n].reshape(n + 4, n)
        # columns 0, 1, N-2, N-1 (where a shift of the flat array wraps into the next row) are
        # redone on a small periodic block: columns -2..3 and N-4..N+1 side by side
        self.edge_src = np.r_[np.arange(-2, 4), np.arange(n - 4, n + 2)] % n
        self.edge_cols = np.array([0, 1, n - 2, n - 1])
        self.edge = np.empty((n + 4, 12))
        self.edge_out = tuple(np.empty((n, 8)) for _ in range(5))
        self.edge_two = np.empty((n, 8))
        for name in ("dx", "dy", "dxx", "dyy", "dxy", "two", "t1", "t2", "g2", "i1", "i2", "r", "f"):
            setattr(self, name, np.empty((n, n)))
        self.mask = np.empty((n, n), dtype=bool)
        self.mask2 = np.empty((n, n), dtype=bool)
        self.gx_flat = np.empty((n + 2) * n + 2)             # 2 g_x on rows -1..N, 1 spare each end
        self.gx_rows = self.gx_flat[1:-1].reshape(n + 2, n)
        self.gy_rows = np.empty((n + 2, n))                  # 2 g_y on rows -1..N
        self.index = np.empty(n * n, dtype=np.intp)
        self.count = np.empty(n * n, dtype=np.uint8)
        self.nbytes = sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))

    def load(self, m: np.ndarray) -> None:
        r = self.rows
        r[2:-2] = m
        r[:2] = m[-2:]
        r[-2:] = m[:2]

    def shifted(self, dy: int, dx: int) -> np.ndarray:
        """f[y + dy, x + dx] for every pixel, a contiguous view; wrong in the 4 edge columns."""
        n = self.size
        a = 2 + (2 + dy) * n + dx
        return self.flat[a:a + n * n].reshape(n, n)

    def edge_shifted(self, dy: int, dx: int) -> np.ndarray:
        """f[y + dy, x + dx] (periodic) for x = 0, 1, (4 unused), N-2, N-1: (N, 8)."""
        n = self.size
        return self.edge[2 + dy:2 + dy + n, 2 + dx:10 + dx]

    def std(self, m: np.ndarray) -> float:
        """``m.std()`` bit for bit (NumPy's two-pass algorithm, as LensTools calls it), no allocation."""
        n = m.size
        mean = np.add.reduce(m, axis=None) / n
        d = np.subtract(m, mean, out=self.t1)
        np.multiply(d, d, out=d)
        return math.sqrt(np.add.reduce(d, axis=None) / n)


def _stencils(s, two_f, out):
    """Unscaled LensTools differences, in its operation order: 2g_x, 2g_y, 4h_xx, 4h_yy, 4h_xy."""
    dx, dy, dxx, dyy, dxy = out
    np.subtract(s(0, 1), s(0, -1), out=dx)
    np.subtract(s(1, 0), s(-1, 0), out=dy)
    np.add(s(0, 2), s(0, -2), out=dxx)
    dxx -= two_f
    np.add(s(2, 0), s(-2, 0), out=dyy)
    dyy -= two_f
    np.add(s(1, 1), s(-1, -1), out=dxy)
    dxy -= s(1, -1)
    dxy -= s(-1, 1)
    return out


def _differences(m: np.ndarray, ws: _Workspace) -> tuple[np.ndarray, ...]:
    """(2 g_x, 2 g_y, 4 h_xx, 4 h_yy, 4 h_xy) of one float64 map, x the column index, periodic.

    LensTools (differentials.c): g_x = (f[x+1] - f[x-1]) / 2, h_xx = (f[x+2] + f[x-2] - 2f) / 4,
    h_xy = (f[x+1,y+1] + f[x-1,y-1] - f[x-1,y+1] - f[x+1,y-1]) / 4. The divisions by 2 and 4 are
    exact, so they are left to the callers, which fold them into their constants.
    """
    ws.load(m)
    np.multiply(m, 2, out=ws.two)
    out = _stencils(ws.shifted, ws.two, (ws.dx, ws.dy, ws.dxx, ws.dyy, ws.dxy))
    np.take(ws.rows, ws.edge_src, axis=1, out=ws.edge)
    np.multiply(ws.edge[2:-2, 2:10], 2, out=ws.edge_two)
    fix = _stencils(ws.edge_shifted, ws.edge_two, ws.edge_out)
    for o, f in zip(out, fix):
        o[:, ws.edge_cols] = f[:, [0, 1, 6, 7]]
    return out


def _level_index(x: np.ndarray, levels: np.ndarray, ws: _Workspace) -> tuple[np.ndarray, int]:
    """For each pixel of x (N, N), K + the number of ``levels`` (non-decreasing) that are <= x, exactly.

    Returns (ws.index (intp, N^2), K); :func:`_fold` turns a bincount of it into counts 0..len(levels).
    For equally spaced levels, floor((x - l_0) / step) + 1 is that number except within rounding
    of a level: we take floor of that plus 1e-6, shifted by K >= 0 so that it is never negative,
    and redo with exact comparisons (searchsorted) the pixels whose fractional part is below 2e-6,
    i.e. within ~1e-6 step of a level. Otherwise (K = 0): one exact comparison pass per level.
    """
    nl = levels.size
    out = ws.index
    step = (levels[-1] - levels[0]) / (nl - 1) if nl > 1 else 0.0
    ideal = levels[0] + step * np.arange(nl)
    if step > 0 and np.all(np.abs(levels - ideal) <= 1e-9 * step):
        r = np.multiply(x, 1.0 / step, out=ws.r)
        r += 1.0 + 1e-6 - levels[0] / step                     # ~ (x - l_0) / step + 1 + 1e-6
        lo, hi = float(r.min()), float(r.max())
        shift = max(0, math.ceil(-lo) + 1)
        if hi + shift < 1e6:
            if shift:
                r += shift
            f = np.floor(r, out=ws.f)
            o2 = out.reshape(r.shape)
            np.copyto(o2, f, casting="unsafe")
            r -= f                                              # fractional part
            idx = np.flatnonzero(np.less(r, 2e-6, out=ws.mask))
            if idx.size:
                out[idx] = np.searchsorted(levels, x.ravel()[idx], side="right") + shift
            return out, shift
    xf = x.ravel()
    if nl > 255:                                              # too many for the uint8 counter
        out[:] = np.searchsorted(levels, xf, side="right")
        return out, 0
    acc = ws.count
    acc[...] = 0
    tmp = ws.mask.reshape(-1)
    for v in levels:
        np.greater_equal(xf, v, out=tmp)
        np.add(acc, tmp.view(np.uint8), out=acc)
    np.copyto(out, acc)
    return out, 0


def _fold(counts: np.ndarray, shift: int, nl: int) -> np.ndarray:
    """Bincount of a shifted level index -> counts for 0..nl levels at or below (nl + 1 entries)."""
    out = np.zeros(nl + 1, dtype=counts.dtype)
    core = counts[shift:shift + nl + 1]
    out[:core.size] = core
    out[0] += counts[:shift].sum()
    out[nl] += counts[shift + nl + 1:].sum()
    return out


# --- gradient and Hessian ----------------------------------------------------------------------------

def _fast_differences(m: np.ndarray, ws: _Workspace) -> tuple[np.ndarray, ...]:
    """Like :func:`_differences` with second differences taken of the first ones (fewer passes).

    4 h_xx = (2 g_x)[x+1] - (2 g_x)[x-1] = f[x+2] + f[x-2] - 2 f (and alike for h_yy, h_xy): the
    same stencils, summed in another order, so they agree with LensTools' to rounding (~1e-16 of
    the map's values); the gradient is bit-identical.
    """
    n = ws.size
    ws.load(m)
    r = ws.rows                                               # rows -2..N+1
    flat = ws.flat
    # 2 g_x on rows -1..N: flat shifts by one pixel, then the two wrapping columns
    gx = ws.gx_rows
    a = 2 + n                                                 # start of row -1 in ws.flat
    np.subtract(flat[a + 1:a + 1 + (n + 2) * n], flat[a - 1:a - 1 + (n + 2) * n], out=gx.reshape(-1))
    np.subtract(r[1:n + 3, 1], r[1:n + 3, n - 1], out=gx[:, 0])
    np.subtract(r[1:n + 3, 0], r[1:n + 3, n - 2], out=gx[:, n - 1])
    gy = np.subtract(r[2:n + 4], r[0:n + 2], out=ws.gy_rows)  # 2 g_y on rows -1..N
    dx = gx[1:n + 1]
    dy = gy[1:n + 1]
    dxx = np.subtract(ws.gx_flat[n + 2:n + 2 + n * n], ws.gx_flat[n:n + n * n], out=ws.dxx.reshape(-1))
    dxx = ws.dxx
    np.subtract(gx[1:n + 1, 1], gx[1:n + 1, n - 1], out=dxx[:, 0])
    np.subtract(gx[1:n + 1, 0], gx[1:n + 1, n - 2], out=dxx[:, n - 1])
    dyy = np.subtract(gy[2:n + 2], gy[0:n], out=ws.dyy)
    dxy = np.subtract(gx[2:n + 2], gx[0:n], out=ws.dxy)
    return dx, dy, dxx, dyy, dxy


def gradient_hessian(maps, *, workers: int | None = None) -> tuple[np.ndarray, ...]:
    """LensTools' finite-difference gradient and Hessian (g_x, g_y, h_xx, h_yy, h_xy), pixel units.

    Each of shape (H, W) or (N, H, W); x is the column index; periodic boundaries.
    """
    arr, single = as_batch(maps)
    out = tuple(np.empty(arr.shape) for _ in range(5))

    def run(lo: int, hi: int) -> None:
        ws = _workspace(arr.shape[1])
        for start, chunk in iter_chunks(arr[lo:hi], None, offset=lo):
            for j, m in enumerate(chunk):
                for o, v, scale in zip(out, _differences(m, ws), (0.5, 0.5, 0.25, 0.25, 0.25)):
                    np.multiply(v, scale, out=o[lo + start + j])

    run_parallel(arr.shape[0], workers, run)
    return tuple(unbatch(o, single) for o in out)


# --- Minkowski functionals --------------------------------------------------------------------------

def minkowski_functionals(maps, thresholds=None, norm: bool = True, *,
                          workers: int | None = None, chunk_maps: int | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Minkowski functionals V0 (area), V1 (perimeter), V2 (genus) of excursion sets, as LensTools.

    ``thresholds``: excursion-set bin edges (default: the paper's ``arange(-2, 2, 0.2)``), in
    units of each map's standard deviation when ``norm`` (ddof 0), else in convergence units.
    Returns (nu bin midpoints (K,), V0, V1, V2 each (K,) or (N, K)), K = len(thresholds) - 1:
    V0_i = fraction of pixels >= the midpoint; V1_i, V2_i = sums of the per-pixel integrands
    |grad kappa| / 4 and (2 g_x g_y h_xy - g_x^2 h_yy - g_y^2 h_xx) / (2 pi |grad kappa|^2) over
    pixels with t_i <= kappa < t_{i+1}, divided by N^2 (t_{i+1} - t_i). No smoothing (as the paper).
    """
    arr, single = as_batch(maps)
    t = check_edges(DEFAULT_MF_THRESHOLDS if thresholds is None else thresholds, "thresholds")
    nb = t.size - 1
    nu = 0.5 * (t[:-1] + t[1:])
    dt = t[1:] - t[:-1]
    size = arr.shape[1]
    npix = size * size
    nl = 2 * nb + 1                                            # edges and midpoints, interleaved
    v0 = np.empty((arr.shape[0], nb))
    s1 = np.empty((arr.shape[0], nl + 1))
    s2 = np.empty((arr.shape[0], nl + 1))

    def run(lo: int, hi: int) -> None:
        ws = _workspace(size)
        levels = np.empty(nl)
        for start, chunk in iter_chunks(arr[lo:hi], chunk_maps, offset=lo):
            for j, m in enumerate(chunk):
                row = lo + start + j
                dx, dy, dxx, dyy, dxy = _fast_differences(m, ws)
                # dx = 2 g_x, dxx = 4 h_xx, ...: LensTools' V1 integrand is sqrt(g2) / 8 and its
                # V2 integrand (i2 / g2) / 4 / (2 pi): powers of two and a constant, applied at the end
                dx2 = np.multiply(dx, dx, out=ws.t1)
                dy2 = np.multiply(dy, dy, out=ws.t2)
                g2 = np.add(dx2, dy2, out=ws.g2)                    # 4 (g_x^2 + g_y^2)
                i1 = np.sqrt(g2, out=ws.i1)
                i2 = np.multiply(dx, dy, out=ws.i2)
                i2 *= dxy
                i2 += i2
                dx2 *= dyy
                i2 -= dx2
                dy2 *= dxx
                i2 -= dy2                                           # 16 (2 gx gy hxy - gx^2 hyy - gy^2 hxx)
                with np.errstate(divide="ignore", invalid="ignore"):
                    i2 /= g2                                        # NaN where |grad| == 0: see below
                s = ws.std(m) if norm else 1.0
                levels[0::2] = t * s                                # t_i * sigma, as LensTools
                levels[1::2] = (t[:-1] + t[1:]) * s / 2             # (v_i + v_{i+1}) * sigma / 2
                # non-decreasing (sigma = 0 for a constant map makes them all 0, as in LensTools):
                # the levels <= x are a prefix of the list, so, with c their number,
                # c in {2i+1, 2i+2}: t_i s <= x < t_{i+1} s;  c >= 2i+2: x >= midpoint i
                c, k = _level_index(m, levels, ws)
                s1[row] = _fold(np.bincount(c, weights=i1.ravel()), k, nl)
                s2[row] = _fold(np.bincount(c, weights=i2.ravel()), k, nl)
                if not np.isfinite(s2[row, 1:nl]).all():            # LensTools' case |grad| == 0:
                    flat = np.equal(g2, 0.0, out=ws.mask)           # (2 hxy - hxx - hyy) / (4 pi)
                    i2[flat] = (2 * dxy - dxx - dyy)[flat] * 0.5    # (x 1/4 / (2 pi) at the end)
                    s2[row] = _fold(np.bincount(c, weights=i2.ravel()), k, nl)
                v0[row] = _fold(np.bincount(c), k, nl)[::-1].cumsum()[::-1][2::2]

    run_parallel(arr.shape[0], workers, run)
    v0 /= npix
    v1 = (s1[:, 1:-1:2] + s1[:, 2::2]) * 0.125 / (npix * dt)
    v2 = (s2[:, 1:-1:2] + s2[:, 2::2]) * 0.25 / (2.0 * math.pi) / (npix * dt)
    return nu, unbatch(v0, single), unbatch(v1, single), unbatch(v2, single)


# --- peaks --------------------------------------------------------------------------------------------

def peak_counts(maps, thresholds=None, norm: bool = True, *,
                workers: int | None = None, chunk_maps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Differential peak counts dN/dnu, as LensTools' ``peakCount``.

    A peak is a pixel strictly above its 8 periodic neighbours (LensTools compares the pixel value
    rounded to float32 with the float64 neighbours; so do we). ``thresholds`` are bin edges
    (default ``arange(-2, 5.5, 0.5)``), in units of the map's std when ``norm``. Returns
    (nu midpoints (K,), counts (K,) or (N, K)) where counts_i = (number of peaks with
    t_i <= kappa < t_{i+1}) / (t_{i+1} - t_i), i.e. per unit threshold, as LensTools.
    """
    arr, single = as_batch(maps)
    t = check_edges(DEFAULT_PEAK_THRESHOLDS if thresholds is None else thresholds, "thresholds")
    nb = t.size - 1
    nu = 0.5 * (t[:-1] + t[1:])
    out = np.empty((arr.shape[0], nb))
    size = arr.shape[1]
    neighbours = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]

    def run(lo: int, hi: int) -> None:
        ws = _workspace(size)
        centre = ws.r
        peak, tmp = ws.mask, ws.mask2
        c32 = np.empty((size, size), dtype=np.float32)
        cols = np.array([0, size - 1])
        for start, chunk in iter_chunks(arr[lo:hi], chunk_maps, offset=lo):
            for j, m in enumerate(chunk):
                ws.load(m)
                np.copyto(c32, m, casting="same_kind")             # C: float pixel_value = map[...]
                np.copyto(centre, c32)
                np.greater(centre, ws.shifted(*neighbours[0]), out=peak)
                for dy, dx in neighbours[1:]:
                    np.greater(centre, ws.shifted(dy, dx), out=tmp)
                    peak &= tmp
                # the two edge columns again, with their periodic neighbours
                ec = centre[:, cols]
                ep = np.ones(ec.shape, dtype=bool)
                for dy, dx in neighbours:
                    ep &= ec > ws.rows[2 + dy:2 + dy + size][:, (cols + dx) % size]
                peak[:, cols] = ep
                vals = m[peak]
                s = ws.std(m) if norm else 1.0
                b = np.searchsorted(t * s, vals, side="right") - 1   # t_k sigma <= kappa < t_{k+1} sigma
                b = b[(b >= 0) & (b < nb)]
                out[lo + start + j] = np.bincount(b, minlength=nb) / (t[1:] - t[:-1])

    run_parallel(arr.shape[0], workers, run)
    return nu, unbatch(out, single)


# --- moments ------------------------------------------------------------------------------------------

def moments(maps, connected: bool = True, dimensionless: bool = False, *,
            workers: int | None = None, chunk_maps: int | None = None) -> np.ndarray:
    """The nine LensTools moments (sigma0, sigma1, S0, S1, S2, K0, K1, K2, K3) of each map.

    Quadratic, cubic and quartic moments of the map and of its LensTools finite-difference
    gradient and Hessian (pixel units). ``connected=True`` (the oracle fixture's convention)
    subtracts the Gaussian part of the quartic moments; ``dimensionless`` divides by powers of
    sigma0 and sigma1. As in LensTools, the map mean is not subtracted (only sigma0 is central).
    Returns (9,) or (N, 9).
    """
    arr, single = as_batch(maps)
    out = np.empty((arr.shape[0], 9))

    def run(lo: int, hi: int) -> None:
        ws = _workspace(arr.shape[1])
        for start, chunk in iter_chunks(arr[lo:hi], chunk_maps, offset=lo):
            for j, d in enumerate(chunk):
                dx, dy, dxx, dyy, dxy = _differences(d, ws)
                gx, gy = dx * 0.5, dy * 0.5
                lap = dxx * 0.25 + dyy * 0.25
                g2 = gx ** 2 + gy ** 2
                d2 = d ** 2
                d3 = d2 * d
                sigma0 = ws.std(d)
                sigma1 = np.sqrt(g2.mean())
                s0 = d3.mean()
                s1 = (d2 * lap).mean()
                s2 = (g2 * lap).mean()
                k0 = (d2 * d2).mean()
                k1 = (d3 * lap).mean()
                k2 = (d * g2 * lap).mean()
                k3 = (g2 ** 2).mean()
                if connected:
                    k0 -= 3 * sigma0 ** 4
                    k1 += 3 * sigma0 ** 2 * sigma1 ** 2
                    k2 += sigma1 ** 4
                    k3 -= 2 * sigma1 ** 4
                if dimensionless:
                    s0 /= sigma0 ** 3
                    s1 /= sigma0 * sigma1 ** 2
                    s2 *= sigma0 / sigma1 ** 4
                    k0 /= sigma0 ** 4
                    k1 /= sigma0 ** 2 * sigma1 ** 2
                    k2 /= sigma1 ** 4
                    k3 /= sigma1 ** 4
                    sigma0, sigma1 = 1.0, 1.0
                out[lo + start + j] = (sigma0, sigma1, s0, s1, s2, k0, k1, k2, k3)

    run_parallel(arr.shape[0], workers, run)
    return unbatch(out, single)


# --- pixel intensities ----------------------------------------------------------------------------------

def pixel_histogram(maps, bins, *, range: tuple[float, float] | None = None, density: bool = False,
                    workers: int | None = None, chunk_maps: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of the pixel values (convergence) of each map, with ``numpy.histogram``'s conventions.

    ``bins``: edges (1-D, increasing) or a number of equal bins over ``range`` (default: the min
    and max over all the maps given; pass the same edges to two sets you compare). Bins are
    [e_i, e_{i+1}) except the last, which is closed; values outside are not counted. Returns
    (bin centres (K,), counts (K,) or (N, K)); with ``density`` the counts are divided by
    (pixels per map x bin width), so that a map's histogram integrates to the fraction of its
    pixels inside the edges. Sum over axis 0 for the histogram of a whole set.
    """
    arr, single = as_batch(maps)
    if np.ndim(bins) == 0:
        nbins = int(bins)
        if nbins < 1:
            raise PaperReproError(f"bins: expected a positive number of bins or an array of edges, found {bins!r}")
        if range is None:
            lo_v, hi_v = math.inf, -math.inf
            for _, chunk in iter_chunks(arr, chunk_maps):
                lo_v, hi_v = min(lo_v, float(chunk.min())), max(hi_v, float(chunk.max()))
        else:
            lo_v, hi_v = float(range[0]), float(range[1])
        if hi_v <= lo_v:
            lo_v, hi_v = lo_v - 0.5, hi_v + 0.5                    # as numpy.histogram for constant data
        edges = np.linspace(lo_v, hi_v, nbins + 1)
    else:
        edges = check_edges(bins, "bins")
    nb = edges.size - 1
    out = np.empty((arr.shape[0], nb))

    def run(lo: int, hi: int) -> None:
        ws = _workspace(arr.shape[1])
        for start, chunk in iter_chunks(arr[lo:hi], chunk_maps, offset=lo):
            for j, m in enumerate(chunk):
                c, k = _level_index(m, edges, ws)                   # k + 1 + i for e_i <= x < e_{i+1}
                counts = _fold(np.bincount(c), k, nb + 1)
                row = counts[1:nb + 1].astype(np.float64)
                if counts[nb + 1]:                                  # x >= e_last: only == counts
                    row[-1] += np.count_nonzero(m == edges[-1])
                out[lo + start + j] = row

    run_parallel(arr.shape[0], workers, run)
    if density:
        out /= arr.shape[1] * arr.shape[2] * np.diff(edges)
    return 0.5 * (edges[:-1] + edges[1:]), unbatch(out, single)
