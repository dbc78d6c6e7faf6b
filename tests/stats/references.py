"""Independent references for the statistics tests: LensTools' C code as straightforward np.roll and
bin-by-bin loops, brute-force neighbour searches, a tolerance check, convergence-like maps and copies."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from paper_repro.stats.neighbours import dihedral_transform

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
    def f(dy, dx):
        return np.roll(m, (-dy, -dx), axis=(0, 1))    # f[y+dy, x+dx]
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


#: side angle (deg) of the tiny preset's 32^2 maps at the paper's pixel scale
ANGLE = 32 * 3.464 / 1024


def brute_knn(q, r, k):
    """Exact k nearest rows (L2, float64) by the full distance matrix: (indices, distances)."""
    d = np.sqrt(((q.reshape(len(q), 1, -1).astype(np.float64) - r.reshape(1, len(r), -1)) ** 2).sum(-1))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, 1)


def brute_invariant(q, r):
    """min over 8 dihedral transforms and all periodic shifts, by explicit np.roll."""
    out = np.empty((len(q), len(r)))
    n = q.shape[1]
    for i, a in enumerate(q.astype(np.float64)):
        tr = [dihedral_transform(a, t) for t in range(8)]
        for j, b in enumerate(r.astype(np.float64)):
            out[i, j] = min(np.sum((np.roll(g, (dy, dx), axis=(0, 1)) - b) ** 2)
                            for g in tr for dy in range(n) for dx in range(n))
    return np.sqrt(out)


def copies_of(train, n, seed, noise=0.0):
    """Shifted and flipped/rotated copies of random training maps: (maps, source index, transform, shift)."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, len(train), n)
    ts = rng.integers(0, 8, n)
    sh = rng.integers(0, train.shape[1], (n, 2))
    maps = np.stack([np.roll(dihedral_transform(train[s], t), tuple(x), axis=(0, 1))
                     for s, t, x in zip(src, ts, sh)])
    if noise:
        maps = maps + noise * rng.standard_normal(maps.shape).astype(np.float32)
    return maps.astype(np.float32), src


#: kinds of copy planted by :func:`plant_copies`
COPY_KINDS = ("exact", "turned", "noisy")
#: rms of the white noise added to a "noisy" copy, as a fraction of the copied map's rms
COPY_NOISE = 0.1


def plant_copies(queries, train, rate, kind, seed, noise=COPY_NOISE):
    """Replace the first ``round(rate x N)`` queries by training maps (distinct sources): ``exact``
    copies; ``turned``: rolled by a random periodic shift and turned by a random symmetry of the square
    other than the identity; ``noisy``: turned, plus white noise of ``noise`` x the map's rms.
    Returns (maps, indices of the copies, their training sources)."""
    rng = np.random.default_rng(seed)
    q = np.array(queries, dtype=np.float32, copy=True)
    n = int(round(rate * len(q)))
    src = np.sort(rng.choice(len(train), n, replace=False))
    for a, s in enumerate(src):
        x = np.asarray(train[s], dtype=np.float64)
        if kind != "exact":
            x = np.roll(dihedral_transform(x, int(rng.integers(1, 8))), tuple(rng.integers(0, x.shape[0], 2)),
                        axis=(0, 1))
        if kind == "noisy":
            x = x + noise * x.std() * rng.standard_normal(x.shape)
        q[a] = x
    return q, np.arange(n), src
