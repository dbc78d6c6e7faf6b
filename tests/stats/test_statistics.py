"""paper_repro.stats.summaries: the LensTools oracle fixture, independent references, known answers, properties."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from paper_repro.stats import summaries as S
from paper_repro.errors import PaperReproError

RTOL = 1e-10


def close(ours, theirs, rtol=RTOL):
    """Agreement to rtol relative to the largest |value| (zeros must be ~zero too)."""
    theirs = np.asarray(theirs, dtype=np.float64)
    scale = np.max(np.abs(theirs)) if theirs.size else 0.0
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale)


def smooth_maps(n, size, seed, lognormal=True, dtype=np.float64):
    """Convergence-like maps: a smoothed Gaussian field, optionally log-normal (skewed)."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    amp = np.exp(-(k * size / 8.0) ** 2)
    g = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((n, size, size))) * amp, s=(size, size))
    g /= g.std(axis=(1, 2), keepdims=True)
    if lognormal:
        g = np.exp(0.5 * g) - 1.0
    return (0.02 * g).astype(dtype)


# --- the LensTools 1.2 oracle fixture ---------------------------------------------------------------

def test_fixture_settings_are_the_defaults(lenstools_fixture):
    f = lenstools_fixture
    np.testing.assert_array_equal(S.DEFAULT_L_EDGES, f["l_edges"])
    np.testing.assert_array_equal(S.DEFAULT_MF_THRESHOLDS, f["thresholds"])
    np.testing.assert_array_equal(S.DEFAULT_PEAK_THRESHOLDS, f["peak_thresholds"])
    assert S.DEFAULT_L_EDGES.size == 249 and S.DEFAULT_MF_THRESHOLDS.size == 20


def test_power_spectrum_matches_lenstools(lenstools_fixture):
    f = lenstools_fixture
    ell, p = S.power_spectrum(f["maps"], float(f["angle_deg"]))
    np.testing.assert_array_equal(ell, f["ell"])
    assert p.shape == (4, 248)
    for ours, theirs in zip(p, f["P"]):
        close(ours, theirs)
        np.testing.assert_array_equal(ours == 0, theirs == 0)
    assert np.all(p[:, [0, 2]] == 0)                           # (200, 400] and (600, 800] hold no mode


def test_minkowski_functionals_match_lenstools(lenstools_fixture):
    f = lenstools_fixture
    nu, v0, v1, v2 = S.minkowski_functionals(f["maps"])
    np.testing.assert_allclose(nu, f["nu"], rtol=0, atol=1e-15)
    for ours, key in ((v0, "V0"), (v1, "V1"), (v2, "V2")):
        assert ours.shape == (4, 19)
        for o, t in zip(ours, f[key]):
            close(o, t)


def test_peaks_and_moments_match_lenstools(lenstools_fixture):
    f = lenstools_fixture
    nu, pk = S.peak_counts(f["maps"])
    np.testing.assert_array_equal(pk, f["peaks"])              # dN/dnu: counts / bin width
    mo = S.moments(f["maps"], connected=True)                  # the fixture's convention
    for o, t in zip(mo, f["moments"]):
        np.testing.assert_allclose(o, t, rtol=1e-9, atol=1e-12 * np.abs(t).max())
    assert not np.allclose(S.moments(f["maps"], connected=False)[:, 5:], f["moments"][:, 5:], rtol=1e-6)


def test_float32_equals_float64_promotion(lenstools_fixture):
    m32 = lenstools_fixture["maps"][:2]
    assert m32.dtype == np.float32
    m64 = m32.astype(np.float64)
    for fn in (lambda m: S.power_spectrum(m)[1], lambda m: np.stack(S.minkowski_functionals(m)[1:]),
               lambda m: S.peak_counts(m)[1], S.moments):
        np.testing.assert_array_equal(fn(m32), fn(m64))


def test_single_map_and_batch_agree():
    maps = smooth_maps(3, 48, seed=1)
    for fn in (lambda m: S.power_spectrum(m, 0.5)[1], lambda m: S.minkowski_functionals(m)[2],
               lambda m: S.peak_counts(m)[1], S.moments,
               lambda m: S.pixel_histogram(m, np.linspace(-0.05, 0.1, 11))[1]):
        batch = fn(maps)
        assert batch.ndim == 2 and batch.shape[0] == 3
        np.testing.assert_array_equal(fn(maps[1]), batch[1])


# --- independent straightforward references (np.roll, loops over bins) ---------------------------------

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


@pytest.mark.parametrize("size,angle", [(64, 0.216), (50, 1.3), (33, 2.0)])
def test_power_spectrum_matches_reference(size, angle):
    maps = smooth_maps(2, size, seed=size)
    edges = np.geomspace(100.0, 360.0 / angle * size, 25)
    _, p = S.power_spectrum(maps, angle, edges)
    for row, m in zip(p, maps):
        close(row, reference_power_spectrum(m, angle, edges), rtol=1e-12)


@pytest.mark.parametrize("norm,thresholds", [
    (True, S.DEFAULT_MF_THRESHOLDS),
    (True, np.array([-3.0, -1.0, -0.5, 0.0, 0.1, 0.7, 2.5, 4.0])),     # unequal bins: exact path
    (False, np.linspace(-0.03, 0.06, 16)),
])
def test_minkowski_matches_reference(norm, thresholds):
    maps = smooth_maps(3, 40, seed=7)
    maps[2, 10:20, 10:20] = 0.01                              # a plateau: |grad| == 0 pixels
    _, v0, v1, v2 = S.minkowski_functionals(maps, thresholds, norm=norm)
    for j, m in enumerate(maps):
        r0, r1, r2 = reference_minkowski(m, thresholds, norm)
        close(v0[j], r0, 1e-12)
        close(v1[j], r1, 1e-12)
        close(v2[j], r2, 1e-12)


def test_gradient_hessian_match_roll_reference():
    maps = smooth_maps(2, 24, seed=3)
    ours = S.gradient_hessian(maps)
    for j, m in enumerate(maps):
        for o, r in zip(ours, reference_derivatives(m)):
            np.testing.assert_array_equal(o[j], r)


def test_levels_on_exact_threshold_values():
    """Pixels exactly on t_i * sigma or a midpoint go where LensTools' comparisons put them."""
    rng = np.random.default_rng(5)
    m = rng.normal(size=(32, 32))
    t = S.DEFAULT_MF_THRESHOLDS
    s = m.std()
    m.flat[:19] = (t[:-1] + t[1:]) * s / 2                   # on the midpoints ...
    m.flat[19:39] = t * s                                     # ... and on the edges
    s2 = m.std()                                              # sigma changed: put them there again
    m.flat[:19] = (t[:-1] + t[1:]) * s2 / 2
    m.flat[19:39] = t * s2
    if m.std() == s2:                                         # (a fixed point is usual; check anyway)
        _, v0, v1, v2 = S.minkowski_functionals(m)
        r0, r1, r2 = reference_minkowski(m, t, True)
        np.testing.assert_array_equal(v0, r0)
        close(v1, r1, 1e-12)
        close(v2, r2, 1e-12)


def test_pixel_histogram_is_numpy_histogram():
    maps = smooth_maps(3, 32, seed=2).astype(np.float32)
    edges = np.linspace(-0.03, 0.05, 17)
    maps[0, 0, :3] = edges[[0, 5, -1]]                        # values exactly on edges (last: closed)
    centres, counts = S.pixel_histogram(maps, edges)
    for j, m in enumerate(maps):
        np.testing.assert_array_equal(counts[j], np.histogram(m.astype(np.float64), edges)[0])
    irregular = np.array([-0.1, -0.01, 0.0, 0.003, 0.2])
    np.testing.assert_array_equal(S.pixel_histogram(maps[1], irregular)[1],
                                  np.histogram(maps[1].astype(np.float64), irregular)[0])
    _, dens = S.pixel_histogram(maps, edges, density=True)
    np.testing.assert_allclose((dens * np.diff(edges)).sum(axis=1), counts.sum(axis=1) / 32 ** 2)
    c10, h10 = S.pixel_histogram(maps, 10)                     # over the set's range: every pixel counted
    assert h10.sum() == maps.size and c10.size == 10


def test_correlation_matrix():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    x[:, 1] += x[:, 0]
    x[:, 3] = 2.0                                             # constant component: undefined
    c = S.correlation_matrix(x)
    keep = [0, 1, 2, 4]
    np.testing.assert_allclose(c[np.ix_(keep, keep)], np.corrcoef(x[:, keep], rowvar=False), atol=1e-12)
    assert np.isnan(c[3]).all() and np.isnan(c[:, 3]).all()
    d = S.correlation_difference(x, x[::-1])
    assert np.nanmax(np.abs(d)) < 1e-12
    assert S.offdiagonal(c).size == 6                          # pairs of the 4 defined components


def test_count_modes_paper_settings():
    hits = S.count_modes(256, 0.866)
    assert hits.size == 248 and hits[0] == 0 and hits[2] == 0 and np.all(hits[3:] > 0)
    lpix = 360.0 / 0.866
    i = np.arange(256)[:, None]
    j = np.arange(129)[None, :]
    ell = np.hypot(np.minimum(i, 256 - i) * lpix, j * lpix)
    assert hits.sum() == ((ell > 200) & (ell <= S.DEFAULT_L_EDGES[-1])).sum()


# --- known answers -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [3, 10, 57])
def test_cosine_lands_in_its_bin(k):
    n, angle, amp = 256, 0.866, 0.03
    x = np.arange(n)
    m = np.tile(amp * np.cos(2 * np.pi * k * x / n), (n, 1))   # along x (columns)
    ell, p = S.power_spectrum(m, angle)
    ell_k = k * 360.0 / angle
    b = np.searchsorted(S.DEFAULT_L_EDGES, ell_k, side="left") - 1
    hits = S.count_modes(n, angle)[b]
    theta = angle * math.pi / 180.0
    # one half-plane mode (0, k) with |F|^2 = (amp N^2 / 2)^2, averaged over the bin's modes
    np.testing.assert_allclose(p[b], theta ** 2 * amp ** 2 / (4 * hits), rtol=1e-10)
    assert np.max(np.abs(np.delete(p, b))) < 1e-12 * p[b]
    assert S.DEFAULT_L_EDGES[b] < ell_k <= S.DEFAULT_L_EDGES[b + 1]


def test_constant_map():
    m = np.full((64, 64), 0.013)
    _, p = S.power_spectrum(m, 0.5)
    assert np.all(p == 0)
    for norm, t in ((True, None), (False, np.linspace(-0.02, 0.02, 9))):
        _, v0, v1, v2 = S.minkowski_functionals(m, t, norm=norm)
        assert np.all(v1 == 0) and np.all(v2 == 0)
        assert set(np.unique(v0)) <= {0.0, 1.0}
    _, v0, _, _ = S.minkowski_functionals(m, np.linspace(-0.02, 0.02, 9), norm=False)
    np.testing.assert_array_equal(v0, (0.013 >= (np.linspace(-0.02, 0.02, 9)[:-1] + 0.005 / 2)).astype(float))
    assert np.all(S.peak_counts(m)[1] == 0)


def test_single_peak():
    m = np.zeros((32, 32))
    m[5, 7] = 1.0
    m[20, 20] = m[20, 21] = 0.5                               # a plateau is no peak (strict >)
    nu, pk = S.peak_counts(m, np.array([0.0, 0.25, 2.0]), norm=False)
    np.testing.assert_array_equal(pk, [0.0, 1.0 / 1.75])


# --- properties (hypothesis) -------------------------------------------------------------------------------

map_strategy = st.builds(lambda seed, size: smooth_maps(1, size, seed, lognormal=bool(seed % 2))[0],
                         st.integers(0, 10 ** 6), st.sampled_from([16, 24, 32, 40]))


@settings(max_examples=25, deadline=None)
@given(m=map_strategy, dy=st.integers(-40, 40), dx=st.integers(-40, 40))
def test_periodic_shift_invariance(m, dy, dx):
    shifted = np.roll(m, (dy, dx), axis=(0, 1))
    edges = np.linspace(50, 360 / 0.3 * m.shape[0], 12)
    close(S.power_spectrum(shifted, 0.3, edges)[1], S.power_spectrum(m, 0.3, edges)[1], 1e-9)
    for a, b in zip(S.minkowski_functionals(shifted)[1:], S.minkowski_functionals(m)[1:]):
        close(a, b, 1e-9)
    np.testing.assert_array_equal(S.peak_counts(shifted)[1], S.peak_counts(m)[1])


def axis_mode_sums(m, angle, edges):
    """Per bin: sums of |FFT|^2 over full-plane modes on the j in {0, N/2} rows and i in {0, N/2} columns."""
    n = m.shape[0]
    f2 = np.abs(np.fft.fft2(m)) ** 2
    lpix = 360.0 / angle
    q = np.minimum(np.arange(n), n - np.arange(n))
    ell = np.hypot(q[:, None] * lpix, q[None, :] * lpix)
    ax_j = np.zeros((n, n), bool)
    ax_j[:, 0] = True
    ax_i = np.zeros((n, n), bool)
    ax_i[0, :] = True
    if n % 2 == 0:
        ax_j[:, n // 2] = True
        ax_i[n // 2, :] = True
    out = []
    for k in range(edges.size - 1):
        b = (ell > edges[k]) & (ell <= edges[k + 1])
        out.append((f2[b & ax_j].sum(), f2[b & ax_i].sum()))
    return np.array(out)


@settings(max_examples=25, deadline=None)
@given(m=map_strategy, turns=st.integers(1, 3))
def test_rotation_by_90_degrees(m, turns):
    """LensTools averages over the rfft half plane, which holds both +-k only on the axis rows.

    So P is rotation invariant in every bin without axis modes, and elsewhere differs by exactly
    norm (A_cols - A_rows) / (2 hits) (one quarter turn), A the |F|^2 summed over the axis modes.
    """
    angle = 0.3
    edges = np.linspace(50, 360 / angle * m.shape[0] * 0.75, 15)
    rot = np.rot90(m, turns)
    p, pr = S.power_spectrum(m, angle, edges)[1], S.power_spectrum(rot, angle, edges)[1]
    hits = S.count_modes(m.shape[0], angle, edges)
    sums = axis_mode_sums(m, angle, edges)
    norm = ((angle * math.pi / 180.0) / m.shape[0] ** 2) ** 2
    expected = p if turns == 2 else p + norm * (sums[:, 1] - sums[:, 0]) / (2 * np.maximum(hits, 1))
    close(pr, expected, 1e-9)
    no_axis = (sums == 0).all(axis=1) | (hits == 0)
    close(pr[no_axis], p[no_axis], 1e-9)
    # Minkowski functionals and peaks are exactly rotation invariant (symmetric stencils)
    for a, b in zip(S.minkowski_functionals(rot)[1:], S.minkowski_functionals(m)[1:]):
        close(a, b, 1e-9)
    np.testing.assert_array_equal(S.peak_counts(rot)[1], S.peak_counts(m)[1])


@settings(max_examples=25, deadline=None)
@given(m=map_strategy, c=st.floats(0.01, 100.0), e=st.sampled_from([-2, -1, 1, 3]))
def test_scaling(m, c, e):
    """P scales by c^2; with c a power of two (exact), V0 and peaks are unchanged and V1, V2 scale by c."""
    close(S.power_spectrum(c * m, 0.4)[1], c ** 2 * S.power_spectrum(m, 0.4)[1], 1e-9)
    c2 = 2.0 ** e
    a = S.minkowski_functionals(c2 * m)
    b = S.minkowski_functionals(m)
    np.testing.assert_array_equal(a[1], b[1])
    close(a[2], c2 * b[2], 1e-12)
    close(a[3], c2 * b[3], 1e-12)
    np.testing.assert_array_equal(S.peak_counts(c2 * m)[1], S.peak_counts(m)[1])


# --- batching, memory maps, threads, bad input ----------------------------------------------------------------

def test_chunks_threads_and_memmap_do_not_change_results(tmp_path):
    maps = smooth_maps(7, 32, seed=11).astype(np.float32)
    path = tmp_path / "maps.npy"
    np.save(path, maps)
    mm = np.load(path, mmap_mode="r")
    ref = (S.power_spectrum(maps, 0.2)[1], np.stack(S.minkowski_functionals(maps)[1:]),
           S.peak_counts(maps)[1], S.moments(maps))
    for kw in ({"chunk_maps": 1}, {"chunk_maps": 3, "workers": 2}, {"workers": 3}):
        got = (S.power_spectrum(mm, 0.2, **kw)[1], np.stack(S.minkowski_functionals(mm, **kw)[1:]),
               S.peak_counts(mm, **kw)[1], S.moments(mm, **kw))
        for g, r in zip(got, ref):
            np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((3, 16, 20)), "square"),
    (np.zeros((16, 16), dtype=np.int32), "float32 or float64"),
    (np.zeros((2, 3, 16, 16)), "shape"),
    (np.zeros((0, 16, 16)), "at least one map"),
])
def test_bad_maps(bad, match):
    for fn in (S.power_spectrum, S.minkowski_functionals, S.peak_counts, S.moments):
        with pytest.raises(PaperReproError, match=match):
            fn(bad)


def test_nan_is_reported_with_its_map():
    maps = np.zeros((6, 16, 16))
    maps[4, 3, 3] = np.nan
    with pytest.raises(PaperReproError, match="map 4 contains NaN"):
        S.minkowski_functionals(maps, chunk_maps=2)
    with pytest.raises(PaperReproError, match="map 4 contains NaN"):
        S.power_spectrum(maps, workers=2)


def test_bad_settings():
    m = np.zeros((16, 16))
    with pytest.raises(PaperReproError, match="angle_deg"):
        S.power_spectrum(m, -1.0)
    with pytest.raises(PaperReproError, match="increasing"):
        S.power_spectrum(m, 1.0, [100.0, 50.0, 200.0])
    with pytest.raises(PaperReproError, match="increasing"):
        S.minkowski_functionals(m, [0.0, 0.0, 1.0])
    with pytest.raises(PaperReproError, match="workers"):
        S.moments(m, workers=0)


def test_paper_statistics_bundle(lenstools_fixture):
    f = lenstools_fixture
    out = S.paper_statistics(f["maps"], float(f["angle_deg"]), pixel_edges=np.linspace(-0.1, 0.2, 31))
    labels, p = out["power_spectrum"]
    assert p.shape == (4, 248) and labels[0] == 300.0
    labels, mf = out["minkowski_functionals"]
    assert mf.shape == (4, 57) and labels[0] == "V0@-1.9" and labels[19].startswith("V1@")
    close(mf[:, 38:], f["V2"])
    assert out["pixel_histogram"][1].shape == (4, 30)


def test_many_irregular_bins():
    """More levels than the fast counter holds (> 255) and irregular spacing: still exact."""
    maps = smooth_maps(2, 24, seed=4)
    t = np.sort(np.random.default_rng(0).uniform(-3, 3, 200))
    _, v0, v1, v2 = S.minkowski_functionals(maps, t)
    for j, m in enumerate(maps):
        r0, r1, r2 = reference_minkowski(m, t, True)
        close(v0[j], r0, 1e-12)
        close(v1[j], r1, 1e-12)
        close(v2[j], r2, 1e-12)
    edges = np.quantile(maps[0], np.linspace(0, 1, 300))
    np.testing.assert_array_equal(S.pixel_histogram(maps[0], edges)[1], np.histogram(maps[0], edges)[0])


def test_fourier_mode_power_parseval_and_a_plane_wave():
    from paper_repro.stats.summaries import fourier_mode_power
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((6, 16, 16))
    x = np.arange(16)
    maps[:, :, :] += np.cos(2 * np.pi * (3 * x[:, None] - 2 * x[None, :]) / 16)
    out = fourier_mode_power(maps)
    # orthonormal: the mean power over modes is the mean squared pixel, map by map on average
    assert out["mean"].mean() == pytest.approx(np.mean(maps ** 2), rel=1e-12)
    assert out["kx"].min() == -7 and out["kx"].max() == 8 and out["kx"][8, 0] == 8
    i, j = np.unravel_index(np.argmax(out["mean"]), out["mean"].shape)
    assert {(out["kx"][i, j], out["ky"][i, j])} <= {(3, -2), (-3, 2)}
    np.testing.assert_allclose(out["mean_map"], maps.mean(axis=0))
    one = np.abs(np.fft.fft2(maps, norm="ortho")) ** 2
    np.testing.assert_allclose(out["sem"], one.std(axis=0, ddof=1) / np.sqrt(6), rtol=1e-9, atol=1e-12)
    with pytest.raises(PaperReproError, match="at least 2 maps"):
        fourier_mode_power(maps[0])
