"""Independent references for the LensTools-exact statistics: straightforward np.roll and
bin-by-bin loops written from LensTools' C code, a tolerance check, and convergence-like test maps."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

RTOL = 1e-10


def close(ours, theirs, rtol=RTOL):
    """Agreement to rtol relative to the largest |value| (zeros must be ~zero too)."""
    theirs = np.asarray(theirs, dtype=np.float64)
    scale = np.max(np.abs(theirs)) if theirs.size else 0.0
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale)


def field_maps(n, size, seed, lognormal=True, dtype=np.float64):
    """Convergence-like maps: a smoothed Gaussian field, optionally log-normal (skewed)."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    amp = np.exp(-(k * size / 8.0) ** 2)
    g = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((n, size, size))) * amp, s=(size, size))
    g /= g.std(axis=(1, 2), keepdims=True)
    if lognormal:
        g = np.exp(0.5 * g) - 1.0
    return (0.02 * g).astype(dtype)


def reference_derivatives(m):
    """LensTools' stencils written with np.roll (x = column index, axis 1)."""
    f = lambda dy, dx: np.roll(m, (-dy, -dx), axis=(0, 1))    # f[y+dy, x+dx]
    gx = (f(0, 1) - f(0, -1)) / 2.0
    gy = (f(1, 0) - f(-1, 0)) / 2.0
    hxx = (f(0, 2) + f(0, -2) - 2 * m) / 4.0
    hyy = (f(2, 0) + f(-2, 0) - 2 * m) / 4.0
    hxy = (f(1, 1) + f(-1, -1) - f(1, -1) - f(-1, 1)) / 4.0
    return gx, gy, hxx, hyy, hxy


def reference_minkowski(m, t, norm):
    """LensTools' minkowski.c, bin by bin."""
    gx, gy, hxx, hyy, hxy = reference_derivatives(m)
    s = m.std() if norm else 1.0
    g2 = gx ** 2 + gy ** 2
    i1 = 0.25 * np.sqrt(g2)
    with np.errstate(divide="ignore", invalid="ignore"):
        i2 = np.where(g2 == 0, (2 * hxy - hxx - hyy) / (4 * math.pi),
                      ((2 * gx * gy * hxy - gx ** 2 * hyy - gy ** 2 * hxx) / g2) / (2 * math.pi))
    npix = m.size
    v0, v1, v2 = [], [], []
    for i in range(t.size - 1):
        v0.append((m >= (t[i] + t[i + 1]) * s / 2).sum() / npix)
        sel = (m >= t[i] * s) & (m < t[i + 1] * s)
        v1.append(i1[sel].sum() / (npix * (t[i + 1] - t[i])))
        v2.append(i2[sel].sum() / (npix * (t[i + 1] - t[i])))
    return np.array(v0), np.array(v1), np.array(v2)


def reference_power_spectrum(m, angle, edges):
    """LensTools' azimuthal_rfft2, with an explicit loop over bins."""
    n = m.shape[0]
    ft = np.fft.rfft2(m)
    lpix = 360.0 / angle
    i = np.arange(n)[:, None]
    j = np.arange(n // 2 + 1)[None, :]
    ell = np.sqrt((np.minimum(i, n - i) * lpix) ** 2 + (j * lpix) ** 2)
    p = np.zeros(edges.size - 1)
    for k in range(edges.size - 1):
        sel = (ell > edges[k]) & (ell <= edges[k + 1])
        if sel.any():
            p[k] = (np.abs(ft[sel]) ** 2).mean()
    return p * ((angle * math.pi / 180.0) / n ** 2) ** 2


#: hypothesis strategy: one convergence-like map of 16 to 40 pixels, Gaussian or log-normal
map_strategy = st.builds(lambda seed, size: field_maps(1, size, seed, lognormal=bool(seed % 2))[0],
                         st.integers(0, 10 ** 6), st.sampled_from([16, 24, 32, 40]))
