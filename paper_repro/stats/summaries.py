"""Summary statistics of convergence maps, exactly as LensTools 1.2 computes them, batched and fast.

The paper (Sect. 3.1) measured every statistic with LensTools 1.2 (``ConvergenceMap``). The
functions here reproduce LensTools' C code (same finite differences, same bin conventions, the
same floating-point operations where it matters), so results agree with LensTools to ~1e-14
relative (tests/test_statistics.py against the oracle fixture; tests_lenstools/ against the real
LensTools 1.2 on fresh maps), but run on a batch of maps with vectorised NumPy:

* :func:`power_spectrum` -- ``ConvergenceMap.powerSpectrum(l_edges)``;
* :func:`minkowski_functionals` -- ``ConvergenceMap.minkowskiFunctionals(thresholds, norm)``;
* :func:`peak_counts` -- ``ConvergenceMap.peakCount(thresholds, norm)``;
* :func:`moments` -- ``ConvergenceMap.moments(connected, dimensionless)``;
* :func:`gradient_hessian` -- ``ConvergenceMap.gradient()`` and ``hessian()``;
* :func:`pixel_histogram` -- per-map histograms of pixel values (the paper's Fig. 2 statistic);
* :func:`correlation_matrix`, :func:`correlation_difference` -- the paper's Fig. 4;
* :func:`fourier_mode_power` -- not LensTools: the power of every 2-D Fourier mode, for the
  orientation-dependent errors (checkerboards) that ring averages hide.

Every function takes one map (H, W) or a batch (N, H, W) (float32 or float64; square maps) and
returns 1-D results for one map, (N, K) results for a batch. Maps are promoted to float64 before
anything (float32 input gives exactly LensTools' result on ``map.astype(float64)``), chunk by
chunk: memory stays bounded by ``chunk_maps`` maps (default about ``CHUNK_PIXELS`` pixels) plus
one set of per-map buffers, whatever N is, and memory-mapped inputs are never loaded whole. Per
map, every step writes into those reused buffers (no allocation, no page faults), which is what
makes these memory-bound loops fast. ``workers`` > 1 splits the batch over threads (NumPy releases
the GIL); the default is one thread, and results do not depend on ``workers``.
"""
from __future__ import annotations

import functools
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np
import scipy.fft

from ..errors import PaperReproError

#: the paper's power-spectrum binning: 249 edges, 248 modes (paper-facts; authors' slides)
DEFAULT_L_EDGES = np.arange(200.0, 50000.0, 200.0)
#: the paper's side angle of a 256^2 crop in degrees (sqrt(12)/4)
DEFAULT_ANGLE_DEG = 0.866
#: the paper's Minkowski thresholds in units of the map's std: 20 edges, 19 values per functional
DEFAULT_MF_THRESHOLDS = np.arange(-2.0, 2.0, 0.2)
#: peak-count thresholds (units of sigma) of the LensTools oracle fixture: 15 edges, 14 bins
DEFAULT_PEAK_THRESHOLDS = np.arange(-2.0, 5.25, 0.5)
#: names of the nine LensTools moments, in order
MOMENT_NAMES = ("sigma0", "sigma1", "S0", "S1", "S2", "K0", "K1", "K2", "K3")
#: default number of pixels promoted to float64 at once (4 maps of 256^2)
CHUNK_PIXELS = 2**18


# --- input handling -------------------------------------------------------------------------------

def _as_batch(maps, name: str = "maps") -> tuple[np.ndarray, bool]:
    """Return an (N, H, W) view of ``maps`` and whether the input was a single map. No copy."""
    from ..maps.io import check_maps

    arr = maps if isinstance(maps, np.ndarray) else np.asarray(maps)
    single = arr.ndim == 2
    arr = check_maps(arr[None] if single else arr, name=name, check_finite=False, min_maps=0)
    n, h, w = arr.shape
    if n == 0 or h < 5:
        raise PaperReproError(
            f"{name}: expected at least one map of at least 5x5 pixels, found shape {arr.shape}")
    return arr, single


def _chunks(arr: np.ndarray, chunk_maps: int | None, name: str = "maps",
            offset: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (start, maps[start:start + step] as C-contiguous float64), checking finiteness.

    Float32 (or strided, or memory-mapped) input is converted into one buffer reused for every
    chunk: a caller must not keep a chunk past the next iteration. ``offset`` only shifts the
    map numbers in error messages.
    """
    n, h, w = arr.shape
    step = max(1, CHUNK_PIXELS // (h * w)) if chunk_maps is None else int(chunk_maps)
    if step < 1:
        raise PaperReproError(f"chunk_maps: expected a positive number of maps, found {chunk_maps!r}")
    direct = arr.dtype == np.float64 and arr.flags.c_contiguous and not isinstance(arr, np.memmap)
    buf = None if direct else _scratch((min(step, n), h, w))
    for start in range(0, n, step):
        src = arr[start:start + step]
        if direct:
            chunk = src
        else:
            chunk = buf[:len(src)]
            np.copyto(chunk, src, casting="same_kind")
        # a NaN or inf makes its map's sum non-finite (so may an overflow: then look closer)
        sums = np.add.reduce(chunk.reshape(len(chunk), -1), axis=1)
        if not np.isfinite(sums).all():
            for j in np.flatnonzero(~np.isfinite(sums)):
                if not np.isfinite(chunk[j]).all():
                    raise PaperReproError(f"{name}: map {offset + start + j} contains NaN or inf")
        yield start, chunk


_EXECUTORS: dict[int, ThreadPoolExecutor] = {}


def _parallel(n: int, workers: int | None, fn: Callable[[int, int], None]) -> None:
    """Run fn(lo, hi) over contiguous ranges of the n maps, on ``workers`` threads (default 1)."""
    w = 1 if workers is None else int(workers)
    if w < 1:
        raise PaperReproError(f"workers: expected a positive number of threads, found {workers!r}")
    w = min(w, n)
    if w == 1:
        fn(0, n)
        return
    bounds = np.linspace(0, n, w + 1).astype(int)
    ex = _EXECUTORS.get(w)
    if ex is None:                                            # kept: its threads keep their buffers
        ex = _EXECUTORS[w] = ThreadPoolExecutor(w, thread_name_prefix="paper_repro.statistics")
    for f in [ex.submit(fn, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]:
        f.result()


def _check_edges(edges, name: str, min_len: int = 2) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < min_len:
        raise PaperReproError(
            f"{name}: expected a 1-D array of at least {min_len} edges, found shape {e.shape}")
    if not np.isfinite(e).all() or np.any(np.diff(e) <= 0):
        raise PaperReproError(f"{name}: expected finite, strictly increasing edges, found {e[:6]}...")
    return e


def _check_angle(angle_deg) -> float:
    try:
        a = float(angle_deg)
    except (TypeError, ValueError):
        raise PaperReproError(
            f"angle_deg: expected a positive number of degrees, found {angle_deg!r}") from None
    if not (math.isfinite(a) and a > 0):
        raise PaperReproError(f"angle_deg: expected a positive number of degrees, found {angle_deg!r}")
    return a


def _finish(out: np.ndarray, single: bool) -> np.ndarray:
    return out[0] if single else out


# --- per-map buffers and LensTools' finite differences (differentials.c) -------------------------------

_LOCAL = threading.local()
#: buffers at most this large (bytes) are kept between calls, per thread (fresh memory costs page
#: faults on first touch: ~10 ms for the ~8 MB a 256^2 workspace needs, more than computing 8 maps)
KEEP_BYTES = 64 * 2**20


def _workspace(size: int) -> "_Workspace":
    """This thread's workspace for size x size maps (kept between calls when small enough)."""
    ws = getattr(_LOCAL, "ws", None)
    if ws is not None and ws.size == size:
        return ws
    ws = _Workspace(size)
    if ws.nbytes <= KEEP_BYTES:
        _LOCAL.ws = ws
    return ws


def _scratch(shape: tuple[int, ...]) -> np.ndarray:
    """This thread's float64 chunk buffer of ``shape`` (kept between calls when small enough)."""
    buf = getattr(_LOCAL, "chunk", None)
    if buf is not None and buf.shape == shape:
        return buf
    buf = np.empty(shape)
    if buf.nbytes <= KEEP_BYTES:
        _LOCAL.chunk = buf
    return buf


class _Workspace:
    """Buffers for one N x N map, reused map after map: no allocation (and no page faults) per map."""

    def __init__(self, size: int):
        n = size
        self.size = n
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


# --- power spectrum ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=32)
def _ps_binning(size: int, angle_deg: float, edges_bytes: bytes) -> tuple[np.ndarray, np.ndarray, float]:
    """Bin of every rfft2 half-plane mode of a ``size``^2 map (nb: none), hits per bin, normalisation.

    Mirrors LensTools ``azimuthal_rfft2``: ell of mode (i, j) is sqrt(lx^2 + ly^2) with
    lx = min(i, N - i) * 360/angle, ly = j * 360/angle; bin k holds e_k < ell <= e_{k+1}.
    """
    edges = np.frombuffer(edges_bytes, dtype=np.float64)
    nb = edges.size - 1
    lpix = 360.0 / angle_deg
    i = np.arange(size)
    lx = np.minimum(i, size - i) * lpix
    ly = np.arange(size // 2 + 1) * lpix
    ell = np.sqrt(lx[:, None] * lx[:, None] + ly[None, :] * ly[None, :]).ravel()
    k = np.searchsorted(edges, ell, side="left") - 1      # e_k < ell <= e_{k+1}
    k[(k < 0) | (k >= nb)] = nb                             # outside every bin: a dump bin
    hits = np.bincount(k, minlength=nb + 1)[:nb]
    norm = ((angle_deg * math.pi / 180.0) / (size * size)) ** 2
    k.setflags(write=False)
    hits.setflags(write=False)
    return k, hits, norm


def power_spectrum(maps, angle_deg: float = DEFAULT_ANGLE_DEG, l_edges=None, *,
                   workers: int | None = None,
                   chunk_maps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Binned convergence power spectrum, LensTools' ``powerSpectrum`` (dimensionless C_ell, sr).

    ``maps``: one map (H, W) or a batch (N, H, W) covering ``angle_deg`` degrees on a side.
    ``l_edges``: multipole bin edges (default: the paper's ``arange(200, 50000, 200)``).
    Returns (ell bin centres (K,), P of shape (K,) or (N, K)). P_k = (theta_rad / N^2)^2 times
    the mean of |rfft2(map)|^2 over the half-plane modes with e_k < ell <= e_{k+1}; bins holding
    no mode are 0 (at the paper's settings, (200, 400] and (600, 800]).
    """
    arr, single = _as_batch(maps)
    angle = _check_angle(angle_deg)
    edges = _check_edges(DEFAULT_L_EDGES if l_edges is None else l_edges, "l_edges")
    size = arr.shape[1]
    bins, hits, norm = _ps_binning(size, angle, edges.tobytes())
    nb = edges.size - 1
    ell = 0.5 * (edges[:-1] + edges[1:])
    out = np.zeros((arr.shape[0], nb))
    nonempty = hits > 0

    def run(lo: int, hi: int) -> None:
        index = sq = power = None
        for start, chunk in _chunks(arr[lo:hi], chunk_maps, offset=lo):
            n = chunk.shape[0]
            ft = scipy.fft.rfft2(chunk).reshape(n, -1)
            if index is None or index.size != n * bins.size:
                index = (np.arange(n)[:, None] * (nb + 1) + bins[None, :]).ravel()
                sq = np.empty((n, bins.size, 2))
                power = np.empty((n, bins.size))
            np.multiply(ft.view(np.float64).reshape(sq.shape), ft.view(np.float64).reshape(sq.shape), out=sq)
            np.add(sq[..., 0], sq[..., 1], out=power)             # creal^2 + cimag^2, as LensTools
            # sums in LensTools' loop order (i-major, then j): bit-identical sums
            sums = np.bincount(index, weights=power.ravel(), minlength=n * (nb + 1)).reshape(n, nb + 1)
            out[lo + start:lo + start + n, nonempty] = norm * (sums[:, :nb][:, nonempty] / hits[nonempty])

    _parallel(arr.shape[0], workers, run)
    return ell, _finish(out, single)


def count_modes(size: int, angle_deg: float = DEFAULT_ANGLE_DEG, l_edges=None) -> np.ndarray:
    """Number of rfft2 half-plane Fourier modes in each ell bin for a ``size``^2 map (0: empty bin)."""
    edges = _check_edges(DEFAULT_L_EDGES if l_edges is None else l_edges, "l_edges")
    return np.array(_ps_binning(int(size), _check_angle(angle_deg), edges.tobytes())[1])


def fourier_mode_power(maps, *, chunk_maps: int | None = None) -> dict[str, np.ndarray]:
    """Mean and standard error over maps of the power |FFT|^2 of every 2-D Fourier mode (not a
    LensTools statistic: ring averages such as :func:`power_spectrum` hide errors that depend on
    orientation, like a generator's checkerboard at the grid of its strided layers).

    ``maps``: (N, H, W), N >= 2, square. Orthonormal FFT, so the mean over modes of one map's power
    is the mean of its squared pixels (kappa^2). Returns {"kx", "ky" (H, W) integer wavevectors in
    fundamental modes, in (-H/2, H/2]; "mean", "sem" (H, W); "mean_map" (H, W), the pixel-wise
    mean of the maps (a fixed pattern shared by all of them); "n"}.
    """
    arr, single = _as_batch(maps)
    n, h, w = arr.shape
    if single or n < 2:
        raise PaperReproError(f"maps: a standard error needs at least 2 maps, found {n}")
    if h != w:
        raise PaperReproError(f"maps: expected square maps, found {h}x{w}")
    s1 = np.zeros((h, w))
    s2 = np.zeros((h, w))
    pix = np.zeros((h, w))
    for _, chunk in _chunks(arr, chunk_maps):
        p = np.abs(scipy.fft.fft2(chunk, norm="ortho")) ** 2
        s1 += p.sum(axis=0)
        s2 += np.square(p).sum(axis=0)
        pix += chunk.sum(axis=0)
    mean = s1 / n
    var = np.maximum(s2 / n - mean ** 2, 0.0) * n / (n - 1)
    k = (np.arange(h) + h // 2 - 1) % h - h // 2 + 1          # 0, 1, ..., h/2, -h/2 + 1, ..., -1
    kx, ky = np.meshgrid(k, k, indexing="ij")
    return {"kx": kx, "ky": ky, "mean": mean, "sem": np.sqrt(var / n), "mean_map": pix / n, "n": n}


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
    arr, single = _as_batch(maps)
    out = tuple(np.empty(arr.shape) for _ in range(5))

    def run(lo: int, hi: int) -> None:
        ws = _workspace(arr.shape[1])
        for start, chunk in _chunks(arr[lo:hi], None, offset=lo):
            for j, m in enumerate(chunk):
                for o, v, scale in zip(out, _differences(m, ws), (0.5, 0.5, 0.25, 0.25, 0.25)):
                    np.multiply(v, scale, out=o[lo + start + j])

    _parallel(arr.shape[0], workers, run)
    return tuple(_finish(o, single) for o in out)


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
    arr, single = _as_batch(maps)
    t = _check_edges(DEFAULT_MF_THRESHOLDS if thresholds is None else thresholds, "thresholds")
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
        for start, chunk in _chunks(arr[lo:hi], chunk_maps, offset=lo):
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

    _parallel(arr.shape[0], workers, run)
    v0 /= npix
    v1 = (s1[:, 1:-1:2] + s1[:, 2::2]) * 0.125 / (npix * dt)
    v2 = (s2[:, 1:-1:2] + s2[:, 2::2]) * 0.25 / (2.0 * math.pi) / (npix * dt)
    return nu, _finish(v0, single), _finish(v1, single), _finish(v2, single)


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
    arr, single = _as_batch(maps)
    t = _check_edges(DEFAULT_PEAK_THRESHOLDS if thresholds is None else thresholds, "thresholds")
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
        for start, chunk in _chunks(arr[lo:hi], chunk_maps, offset=lo):
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

    _parallel(arr.shape[0], workers, run)
    return nu, _finish(out, single)


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
    arr, single = _as_batch(maps)
    out = np.empty((arr.shape[0], 9))

    def run(lo: int, hi: int) -> None:
        ws = _workspace(arr.shape[1])
        for start, chunk in _chunks(arr[lo:hi], chunk_maps, offset=lo):
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

    _parallel(arr.shape[0], workers, run)
    return _finish(out, single)


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
    arr, single = _as_batch(maps)
    if np.ndim(bins) == 0:
        nbins = int(bins)
        if nbins < 1:
            raise PaperReproError(f"bins: expected a positive number of bins or an array of edges, found {bins!r}")
        if range is None:
            lo_v, hi_v = math.inf, -math.inf
            for _, chunk in _chunks(arr, chunk_maps):
                lo_v, hi_v = min(lo_v, float(chunk.min())), max(hi_v, float(chunk.max()))
        else:
            lo_v, hi_v = float(range[0]), float(range[1])
        if hi_v <= lo_v:
            lo_v, hi_v = lo_v - 0.5, hi_v + 0.5                    # as numpy.histogram for constant data
        edges = np.linspace(lo_v, hi_v, nbins + 1)
    else:
        edges = _check_edges(bins, "bins")
    nb = edges.size - 1
    out = np.empty((arr.shape[0], nb))

    def run(lo: int, hi: int) -> None:
        ws = _workspace(arr.shape[1])
        for start, chunk in _chunks(arr[lo:hi], chunk_maps, offset=lo):
            for j, m in enumerate(chunk):
                c, k = _level_index(m, edges, ws)                   # k + 1 + i for e_i <= x < e_{i+1}
                counts = _fold(np.bincount(c), k, nb + 1)
                row = counts[1:nb + 1].astype(np.float64)
                if counts[nb + 1]:                                  # x >= e_last: only == counts
                    row[-1] += np.count_nonzero(m == edges[-1])
                out[lo + start + j] = row

    _parallel(arr.shape[0], workers, run)
    if density:
        out /= arr.shape[1] * arr.shape[2] * np.diff(edges)
    return 0.5 * (edges[:-1] + edges[1:]), _finish(out, single)


# --- correlation matrices ---------------------------------------------------------------------------------

def correlation_matrix(stat) -> np.ndarray:
    """Pearson correlation matrix (K, K) of a statistic's K components across N maps (stat: (N, K)).

    Components constant across the maps (e.g. empty ell bins) get NaN rows and columns (their
    correlation is undefined), never a spurious 0 or 1.
    """
    x = np.asarray(stat, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise PaperReproError(f"stat: expected an (N, K) array with N >= 2 maps, found shape {x.shape}")
    if not np.isfinite(x).all():
        raise PaperReproError("stat: contains NaN or inf")
    xc = x - x.mean(axis=0)
    sd = np.sqrt((xc * xc).sum(axis=0))
    const = np.all(x == x[:1], axis=0) | ~(sd > 0)
    z = xc / np.where(const, 1.0, sd)
    c = np.clip(z.T @ z, -1.0, 1.0)
    c[const, :] = np.nan
    c[:, const] = np.nan
    keep = np.flatnonzero(~const)
    c[keep, keep] = 1.0
    return c


def correlation_difference(stat_a, stat_b) -> np.ndarray:
    """Difference C_a - C_b of the correlation matrices of one statistic over two sets of maps."""
    a = np.asarray(stat_a)
    b = np.asarray(stat_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise PaperReproError(
            f"stat_a, stat_b: expected (N, K) arrays with the same K, found {a.shape} and {b.shape}")
    return correlation_matrix(a) - correlation_matrix(b)


def offdiagonal(matrix: np.ndarray) -> np.ndarray:
    """The finite strictly-upper-triangular entries of a square matrix (each pair of components once)."""
    m = np.asarray(matrix)
    v = m[np.triu_indices(m.shape[0], k=1)]
    return v[np.isfinite(v)]


# --- all of the paper's statistics at once ----------------------------------------------------------------

def paper_statistics(maps, angle_deg: float = DEFAULT_ANGLE_DEG, *, pixel_edges=None,
                     l_edges=None, thresholds=None, workers: int | None = None
                     ) -> dict[str, tuple[list, np.ndarray]]:
    """The paper's statistics of a set of maps as {name: (component labels, (N, K) array)}.

    ``power_spectrum``: P at the 248 modes (labels: ell bin centres); ``minkowski_functionals``:
    V0, V1, V2 side by side (57 components; labels "V0@nu"); ``pixel_histogram`` (only with
    ``pixel_edges``, which two compared sets must share): per-map pixel-value densities. Each
    array is what :func:`paper_repro.comparison.calibrate` takes.
    """
    ell, p = power_spectrum(maps, angle_deg, l_edges, workers=workers)
    nu, v0, v1, v2 = minkowski_functionals(maps, thresholds, workers=workers)
    if p.ndim == 1:
        p, v0, v1, v2 = p[None], v0[None], v1[None], v2[None]
    out = {
        "power_spectrum": ([float(v) for v in ell], p),
        "minkowski_functionals": ([f"{name}@{v:.4g}" for name in ("V0", "V1", "V2") for v in nu],
                                  np.concatenate([v0, v1, v2], axis=1)),
    }
    if pixel_edges is not None:
        centres, h = pixel_histogram(maps, pixel_edges, density=True, workers=workers)
        out["pixel_histogram"] = ([float(v) for v in centres], h if h.ndim == 2 else h[None])
    return out
