"""Summary statistics of convergence maps, exactly as LensTools 1.2 computes them, batched and fast.

The paper (Sect. 3.1) measured every statistic with LensTools 1.2 (``ConvergenceMap``). The
functions here reproduce LensTools' C code operation by operation (same finite differences, same
bin conventions, same order of floating-point operations where it matters), so results agree with
LensTools to ~1e-12 relative, but work on a batch of maps at once with vectorised NumPy:

* :func:`power_spectrum` -- ``ConvergenceMap.powerSpectrum(l_edges)``;
* :func:`minkowski_functionals` -- ``ConvergenceMap.minkowskiFunctionals(thresholds, norm)``;
* :func:`peak_counts` -- ``ConvergenceMap.peakCount(thresholds, norm)``;
* :func:`moments` -- ``ConvergenceMap.moments(connected, dimensionless)``;
* :func:`pixel_histogram` -- per-map histograms of pixel values (the paper's Fig. 2 statistic);
* :func:`correlation_matrix`, :func:`correlation_difference` -- the paper's Fig. 4.

Every function takes one map (H, W) or a batch (N, H, W) (float32 or float64; square maps) and
returns 1-D results for one map, (N, K) results for a batch. Maps are converted to float64 (as
LensTools does when it hands them to its C code) chunk by chunk, so memory stays bounded by
``chunk_maps`` maps (default: about ``CHUNK_PIXELS`` pixels) whatever N is; memory-mapped inputs
are never loaded whole. Per-map work reuses one set of buffers (no allocation per map), which
is what makes these memory-bound loops fast.
"""
from __future__ import annotations

import functools
import math
from typing import Iterator

import numpy as np
import scipy.fft

from .errors import PaperReproError

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
#: default number of pixels converted to float64 at once (4 maps of 256^2: fits in cache)
CHUNK_PIXELS = 2**18


# --- input handling -------------------------------------------------------------------------------

def _as_batch(maps, name: str = "maps") -> tuple[np.ndarray, bool]:
    """Return an (N, H, W) view of ``maps`` and whether the input was a single map. No copy."""
    arr = maps if isinstance(maps, np.ndarray) else np.asarray(maps)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    elif arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise PaperReproError(
            f"{name}: expected one map (H, W) or a batch (N, H, W), found shape {np.shape(maps)}")
    if arr.dtype.kind != "f":
        raise PaperReproError(f"{name}: expected float32 or float64 maps, found dtype {arr.dtype}")
    n, h, w = arr.shape
    if h != w:
        raise PaperReproError(f"{name}: expected square maps, found {h}x{w}")
    if n == 0 or h < 5:
        raise PaperReproError(
            f"{name}: expected at least one map of at least 5x5 pixels, found shape {arr.shape}")
    return arr, single


def _chunks(arr: np.ndarray, chunk_maps: int | None, name: str = "maps") -> Iterator[tuple[int, np.ndarray]]:
    """Yield (start, float64 C-contiguous copy of maps[start:start + step]), checking finiteness.

    The default step keeps a chunk near ``CHUNK_PIXELS`` pixels: small enough to stay in cache
    (the speed of these memory-bound loops depends on it) and to bound memory for any N.
    """
    n, h, w = arr.shape
    step = max(1, CHUNK_PIXELS // (h * w)) if chunk_maps is None else int(chunk_maps)
    if step < 1:
        raise PaperReproError(f"chunk_maps: expected a positive number of maps, found {chunk_maps!r}")
    for start in range(0, n, step):
        chunk = np.ascontiguousarray(arr[start:start + step], dtype=np.float64)
        if not np.isfinite(chunk).all():
            bad = start + int(np.flatnonzero(~np.isfinite(chunk).reshape(len(chunk), -1).all(1))[0])
            raise PaperReproError(f"{name}: map {bad} contains NaN or inf")
        yield start, chunk


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


# --- power spectrum ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=32)
def _ps_binning(size: int, angle_deg: float, edges_bytes: bytes) -> tuple[np.ndarray, np.ndarray, float]:
    """Bin of every rfft2 half-plane mode of a ``size``^2 map (nb = not binned), hits per bin, normalisation.

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
    """Binned convergence power spectrum, LensTools' ``powerSpectrum`` (dimensionless C_ell, sr units).

    ``maps``: one map (H, W) or a batch (N, H, W) covering ``angle_deg`` degrees on a side.
    ``l_edges``: multipole bin edges (default: the paper's ``arange(200, 50000, 200)``).
    Returns (ell bin centres (K,), P of shape (K,) or (N, K)). P_k = (theta_rad / N^2)^2 times
    the mean of |rfft2(map)|^2 over the half-plane modes with e_k < ell <= e_{k+1}; bins holding
    no mode are 0 (at the paper's settings, (200, 400] and (600, 800]). ``workers``: threads of
    ``scipy.fft`` (default 1).
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
    index = None
    for start, chunk in _chunks(arr, chunk_maps):
        n = chunk.shape[0]
        ft = scipy.fft.rfft2(chunk, workers=workers).reshape(n, -1)
        power = ft.real * ft.real
        power += ft.imag * ft.imag                                # creal^2 + cimag^2, as LensTools
        if index is None or index.size != power.size:
            index = (np.arange(n)[:, None] * (nb + 1) + bins[None, :]).ravel()
        # sequential sums in LensTools' loop order (i-major, then j), one bin per mode
        sums = np.bincount(index, weights=power.ravel(), minlength=n * (nb + 1)).reshape(n, nb + 1)
        out[start:start + n, nonempty] = norm * (sums[:, :nb][:, nonempty] / hits[nonempty])
    return ell, _finish(out, single)


def count_modes(size: int, angle_deg: float = DEFAULT_ANGLE_DEG, l_edges=None) -> np.ndarray:
    """Number of rfft2 half-plane Fourier modes in each ell bin for a ``size``^2 map (0: empty bin)."""
    edges = _check_edges(DEFAULT_L_EDGES if l_edges is None else l_edges, "l_edges")
    return np.array(_ps_binning(int(size), _check_angle(angle_deg), edges.tobytes())[1])


# --- derivatives (LensTools differentials.c: periodic, pixel units) ---------------------------------

class _Workspace:
    """Buffers for one N x N map, reused map after map (no page faults, stays in cache)."""

    def __init__(self, size: int):
        n = size
        self.size = n
        self.flat = np.empty(n * n + 4 * n + 4)              # map, 2 wrapped rows each side, 2 spare
        self.rows = self.flat[2:2 + n * n + 4 * n].reshape(n + 4, n)
        self.cols = np.array([0, 1, n - 2, n - 1])           # columns where a flat shift wraps wrongly
        for name in ("dx", "dy", "dxx", "dyy", "dxy", "two", "t1", "t2", "g2", "i1", "i2"):
            setattr(self, name, np.empty((n, n)))
        self.mask = np.empty((n, n), dtype=bool)

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

    def strip(self, dy: int, dx: int) -> np.ndarray:
        """f[y + dy, (x + dx) mod N] for x in the 4 edge columns: (N, 4)."""
        n = self.size
        return self.rows[2 + dy:2 + dy + n][:, (self.cols + dx) % n]


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
    exact, so they are left to the callers, which fold them into their own constants.
    """
    ws.load(m)
    np.multiply(m, 2, out=ws.two)
    out = _stencils(ws.shifted, ws.two, (ws.dx, ws.dy, ws.dxx, ws.dyy, ws.dxy))
    cols = ws.cols
    fix = _stencils(ws.strip, ws.two[:, cols], tuple(np.empty((ws.size, cols.size)) for _ in range(5)))
    for o, f in zip(out, fix):
        o[:, cols] = f
    return out


def gradient_hessian(maps) -> tuple[np.ndarray, ...]:
    """LensTools' finite-difference gradient and Hessian (g_x, g_y, h_xx, h_yy, h_xy), pixel units.

    Each of shape (H, W) or (N, H, W); x is the column index; periodic boundaries.
    """
    arr, single = _as_batch(maps)
    ws = _Workspace(arr.shape[1])
    out = tuple(np.empty(arr.shape) for _ in range(5))
    for start, chunk in _chunks(arr, None):
        for j, m in enumerate(chunk):
            d = _differences(m, ws)
            for o, v, scale in zip(out, d, (0.5, 0.5, 0.25, 0.25, 0.25)):
                np.multiply(v, scale, out=o[start + j])
    return tuple(_finish(o, single) for o in out)


# --- Minkowski functionals --------------------------------------------------------------------------

def _count_at_or_below(x: np.ndarray, levels: np.ndarray, acc: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """acc[p] = number of ``levels`` <= x[p] (exact comparisons; levels increasing, < 255 of them)."""
    acc[...] = 0
    acc_u8 = acc
    for v in levels:
        np.greater_equal(x, v, out=tmp)
        np.add(acc_u8, tmp.view(np.uint8), out=acc_u8)
    return acc


def minkowski_functionals(maps, thresholds=None, norm: bool = True, *,
                          chunk_maps: int | None = None
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
    if nb > 250:
        raise PaperReproError(f"thresholds: expected at most 251 edges, found {t.size}")
    nu = 0.5 * (t[:-1] + t[1:])
    dt = t[1:] - t[:-1]
    size = arr.shape[1]
    npix = size * size
    ws = _Workspace(size)
    k = np.empty(npix, dtype=np.uint8)
    a = np.empty(npix, dtype=np.uint8)
    tmp = np.empty(npix, dtype=bool)
    v0 = np.empty((arr.shape[0], nb))
    v1 = np.empty((arr.shape[0], nb))
    v2 = np.empty((arr.shape[0], nb))
    for start, chunk in _chunks(arr, chunk_maps):
        sigmas = chunk.reshape(len(chunk), -1).std(axis=1) if norm else np.ones(len(chunk))
        for j, m in enumerate(chunk):
            dx, dy, dxx, dyy, dxy = _differences(m, ws)
            # with dx = 2 g_x, dxx = 4 h_xx, ... every factor below is an exact power of two, so
            # the integrands equal LensTools' bit for bit
            dx2 = np.multiply(dx, dx, out=ws.t1)
            dy2 = np.multiply(dy, dy, out=ws.t2)
            g2 = np.add(dx2, dy2, out=ws.g2)                        # 4 (g_x^2 + g_y^2)
            i1 = np.sqrt(g2, out=ws.i1)
            i1 *= 0.125                                             # 0.25 sqrt(g_x^2 + g_y^2)
            i2 = np.multiply(dx, 2, out=ws.i2)
            i2 *= dy
            i2 *= dxy
            dx2 *= dyy
            i2 -= dx2
            dy2 *= dxx
            i2 -= dy2                                               # 16 (2 gx gy hxy - gx^2 hyy - gy^2 hxx)
            flat = np.equal(g2, 0.0, out=ws.mask)
            np.divide(i2, g2, out=i2, where=~flat)
            i2 *= 0.25
            i2 /= 2.0 * math.pi
            if flat.any():                                          # LensTools' case |grad| == 0
                i2[flat] = ((2 * dxy - dxx - dyy)[flat] * 0.25) / (4.0 * math.pi)
            x = m.ravel()
            s = sigmas[j]
            _count_at_or_below(x, t * s, k, tmp)                    # t_i * sigma <= x: bin k - 1
            _count_at_or_below(x, (t[:-1] + t[1:]) * s / 2, a, tmp)  # (v_i + v_{i+1}) sigma / 2 <= x
            v1[start + j] = np.bincount(k, weights=i1.ravel(), minlength=nb + 2)[1:nb + 1]
            v2[start + j] = np.bincount(k, weights=i2.ravel(), minlength=nb + 2)[1:nb + 1]
            above = np.bincount(a, minlength=nb + 1)[::-1].cumsum()[::-1]
            v0[start + j] = above[1:]
    v0 /= npix
    v1 /= npix * dt
    v2 /= npix * dt
    return nu, _finish(v0, single), _finish(v1, single), _finish(v2, single)


# --- peaks --------------------------------------------------------------------------------------------

def peak_counts(maps, thresholds=None, norm: bool = True, *,
                chunk_maps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
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
    ws = _Workspace(size)
    centre = np.empty((size, size))
    peak = np.empty((size, size), dtype=bool)
    tmp = np.empty((size, size), dtype=bool)
    cols = np.array([0, size - 1])
    for start, chunk in _chunks(arr, chunk_maps):
        sigmas = chunk.reshape(len(chunk), -1).std(axis=1) if norm else np.ones(len(chunk))
        for j, m in enumerate(chunk):
            ws.load(m)
            centre[...] = m.astype(np.float32)                      # C: float pixel_value = map[...]
            peak[...] = True
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if dy or dx:
                        np.greater(centre, ws.shifted(dy, dx), out=tmp)
                        peak &= tmp
            # the edge columns again, with the periodic neighbours
            ec = centre[:, cols]
            ep = np.ones(ec.shape, dtype=bool)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if dy or dx:
                        ep &= ec > ws.rows[2 + dy:2 + dy + size][:, (cols + dx) % size]
            peak[:, cols] = ep
            vals = m[peak]
            b = np.searchsorted(t * sigmas[j], vals, side="right") - 1   # t_k sigma <= kappa < t_{k+1} sigma
            b = b[(b >= 0) & (b < nb)]
            out[start + j] = np.bincount(b, minlength=nb) / (t[1:] - t[:-1])
    return nu, _finish(out, single)


# --- moments ------------------------------------------------------------------------------------------

def moments(maps, connected: bool = True, dimensionless: bool = False, *,
            chunk_maps: int | None = None) -> np.ndarray:
    """The nine LensTools moments (sigma0, sigma1, S0, S1, S2, K0, K1, K2, K3) of each map.

    Quadratic, cubic and quartic moments of the map and of its LensTools finite-difference
    gradient and Hessian (pixel units). ``connected=True`` (the oracle fixture's convention)
    subtracts the Gaussian part of the quartic moments; ``dimensionless`` divides by powers of
    sigma0 and sigma1. As in LensTools, the map mean is not subtracted (only sigma0 is central).
    Returns (9,) or (N, 9).
    """
    arr, single = _as_batch(maps)
    out = np.empty((arr.shape[0], 9))
    size = arr.shape[1]
    ws = _Workspace(size)
    for start, chunk in _chunks(arr, chunk_maps):
        for j, d in enumerate(chunk):
            dx, dy, dxx, dyy, dxy = _differences(d, ws)
            gx, gy = dx * 0.5, dy * 0.5
            lap = dxx * 0.25 + dyy * 0.25
            g2 = gx ** 2 + gy ** 2
            d2 = d ** 2
            d3 = d2 * d
            sigma0 = d.std()
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
            out[start + j] = (sigma0, sigma1, s0, s1, s2, k0, k1, k2, k3)
    return _finish(out, single)


# --- pixel intensities ----------------------------------------------------------------------------------

def pixel_histogram(maps, bins, *, range: tuple[float, float] | None = None, density: bool = False,
                    chunk_maps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of pixel values (convergence) of each map, with NumPy's ``histogram`` conventions.

    ``bins``: edges (1-D, increasing) or a number of equal bins over ``range`` (default: the
    min and max over all the maps given). Bins are half open [e_i, e_{i+1}) except the last,
    which is closed; values outside are not counted. Pass the same edges to both sets you compare.
    Returns (bin centres (K,), counts (K,) or (N, K)); with ``density`` the counts are divided by
    (pixels per map x bin width), so each map's histogram integrates to the fraction of its
    pixels inside the edges. Sum over axis 0 for the histogram of a whole set.
    """
    arr, single = _as_batch(maps)
    if np.ndim(bins) == 0:
        nbins = int(bins)
        if nbins < 1:
            raise PaperReproError(f"bins: expected a positive number of bins or an array of edges, found {bins!r}")
        if range is None:
            lo, hi = math.inf, -math.inf
            for _, chunk in _chunks(arr, chunk_maps):
                lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
        else:
            lo, hi = float(range[0]), float(range[1])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5                            # as np.histogram for constant data
        edges = np.linspace(lo, hi, nbins + 1)
    else:
        edges = _check_edges(bins, "bins")
    nb = edges.size - 1
    out = np.empty((arr.shape[0], nb))
    for start, chunk in _chunks(arr, chunk_maps):
        n = chunk.shape[0]
        x = chunk.reshape(n, -1)
        k = np.searchsorted(edges, x, side="right") - 1
        k[x == edges[-1]] = nb - 1                                # last bin closed
        k = np.where((k >= 0) & (k < nb), k, nb)
        k += (np.arange(n) * (nb + 1))[:, None]
        out[start:start + n] = np.bincount(k.ravel(), minlength=n * (nb + 1)).reshape(n, nb + 1)[:, :nb]
    if density:
        out = out / (arr.shape[1] * arr.shape[2] * np.diff(edges))
    return 0.5 * (edges[:-1] + edges[1:]), _finish(out, single)


# --- correlation matrices ---------------------------------------------------------------------------------

def correlation_matrix(stat) -> np.ndarray:
    """Pearson correlation matrix (K, K) of a statistic's K components across N maps (stat: (N, K)).

    Components that are constant across the maps (e.g. empty ell bins) have NaN rows and columns
    (their correlation is undefined), never a spurious 0 or 1.
    """
    x = np.asarray(stat, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise PaperReproError(f"stat: expected an (N, K) array with N >= 2 maps, found shape {x.shape}")
    xc = x - x.mean(axis=0)
    sd = np.sqrt((xc * xc).sum(axis=0))
    const = ~(sd > 0) | np.all(x == x[:1], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = xc / np.where(const, np.nan, sd)
    c = z.T @ z
    c = np.clip(c, -1.0, 1.0)
    idx = np.flatnonzero(~const)
    c[idx, idx] = 1.0
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
