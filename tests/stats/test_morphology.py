"""paper_repro.stats.morphology: LensTools' Minkowski functionals, peaks, moments and finite
differences (oracle fixture, np.roll references, known answers, symmetries), pixel histograms."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_repro.stats import morphology
from tests.stats.references import (
    close,
    field_maps,
    map_strategy,
    reference_derivatives,
    reference_minkowski,
)


def test_minkowski_functionals_match_lenstools(lenstools_fixture):
    f = lenstools_fixture
    nu, v0, v1, v2 = morphology.minkowski_functionals(f["maps"])
    np.testing.assert_allclose(nu, f["nu"], rtol=0, atol=1e-15)
    for ours, key in ((v0, "V0"), (v1, "V1"), (v2, "V2")):
        assert ours.shape == (4, 19)
        for o, t in zip(ours, f[key]):
            close(o, t)


def test_peaks_and_moments_match_lenstools(lenstools_fixture):
    f = lenstools_fixture
    nu, pk = morphology.peak_counts(f["maps"])
    np.testing.assert_array_equal(pk, f["peaks"])              # dN/dnu: counts / bin width
    mo = morphology.moments(f["maps"], connected=True)                  # the fixture's convention
    for o, t in zip(mo, f["moments"]):
        np.testing.assert_allclose(o, t, rtol=1e-9, atol=1e-12 * np.abs(t).max())
    assert not np.allclose(morphology.moments(f["maps"], connected=False)[:, 5:], f["moments"][:, 5:], rtol=1e-6)


@pytest.mark.parametrize("norm,thresholds", [
    (True, morphology.DEFAULT_MF_THRESHOLDS),
    (True, np.array([-3.0, -1.0, -0.5, 0.0, 0.1, 0.7, 2.5, 4.0])),     # unequal bins: exact path
    (False, np.linspace(-0.03, 0.06, 16)),
])
def test_minkowski_matches_reference(norm, thresholds):
    maps = field_maps(3, 40, seed=7)
    maps[2, 10:20, 10:20] = 0.01                              # a plateau: |grad| == 0 pixels
    _, v0, v1, v2 = morphology.minkowski_functionals(maps, thresholds, norm=norm)
    for j, m in enumerate(maps):
        r0, r1, r2 = reference_minkowski(m, thresholds, norm)
        close(v0[j], r0, 1e-12)
        close(v1[j], r1, 1e-12)
        close(v2[j], r2, 1e-12)


def test_gradient_hessian_match_roll_reference():
    maps = field_maps(2, 24, seed=3)
    ours = morphology.gradient_hessian(maps)
    for j, m in enumerate(maps):
        for o, r in zip(ours, reference_derivatives(m)):
            np.testing.assert_array_equal(o[j], r)


def test_levels_on_exact_threshold_values():
    """Pixels exactly on t_i * sigma or a midpoint go where LensTools' comparisons put them."""
    rng = np.random.default_rng(5)
    m = rng.normal(size=(32, 32))
    t = morphology.DEFAULT_MF_THRESHOLDS
    s = m.std()
    m.flat[:19] = (t[:-1] + t[1:]) * s / 2                   # on the midpoints ...
    m.flat[19:39] = t * s                                     # ... and on the edges
    s2 = m.std()                                              # sigma changed: put them there again
    m.flat[:19] = (t[:-1] + t[1:]) * s2 / 2
    m.flat[19:39] = t * s2
    if m.std() == s2:                                         # (a fixed point is usual; check anyway)
        _, v0, v1, v2 = morphology.minkowski_functionals(m)
        r0, r1, r2 = reference_minkowski(m, t, True)
        np.testing.assert_array_equal(v0, r0)
        close(v1, r1, 1e-12)
        close(v2, r2, 1e-12)


def test_pixel_histogram_is_numpy_histogram():
    maps = field_maps(3, 32, seed=2).astype(np.float32)
    edges = np.linspace(-0.03, 0.05, 17)
    maps[0, 0, :3] = edges[[0, 5, -1]]                        # values exactly on edges (last: closed)
    centres, counts = morphology.pixel_histogram(maps, edges)
    for j, m in enumerate(maps):
        np.testing.assert_array_equal(counts[j], np.histogram(m.astype(np.float64), edges)[0])
    irregular = np.array([-0.1, -0.01, 0.0, 0.003, 0.2])
    np.testing.assert_array_equal(morphology.pixel_histogram(maps[1], irregular)[1],
                                  np.histogram(maps[1].astype(np.float64), irregular)[0])
    _, dens = morphology.pixel_histogram(maps, edges, density=True)
    np.testing.assert_allclose((dens * np.diff(edges)).sum(axis=1), counts.sum(axis=1) / 32 ** 2)
    c10, h10 = morphology.pixel_histogram(maps, 10)                     # over the set's range: every pixel counted
    assert h10.sum() == maps.size and c10.size == 10


def test_constant_map():
    m = np.full((64, 64), 0.013)
    for norm, t in ((True, None), (False, np.linspace(-0.02, 0.02, 9))):
        _, v0, v1, v2 = morphology.minkowski_functionals(m, t, norm=norm)
        assert np.all(v1 == 0) and np.all(v2 == 0)
        assert set(np.unique(v0)) <= {0.0, 1.0}
    _, v0, _, _ = morphology.minkowski_functionals(m, np.linspace(-0.02, 0.02, 9), norm=False)
    np.testing.assert_array_equal(v0, (0.013 >= (np.linspace(-0.02, 0.02, 9)[:-1] + 0.005 / 2)).astype(float))
    assert np.all(morphology.peak_counts(m)[1] == 0)


def test_single_peak():
    m = np.zeros((32, 32))
    m[5, 7] = 1.0
    m[20, 20] = m[20, 21] = 0.5                               # a plateau is no peak (strict >)
    nu, pk = morphology.peak_counts(m, np.array([0.0, 0.25, 2.0]), norm=False)
    np.testing.assert_array_equal(pk, [0.0, 1.0 / 1.75])


@settings(max_examples=25, deadline=None)
@given(m=map_strategy, dy=st.integers(-40, 40), dx=st.integers(-40, 40))
def test_periodic_shift_invariance(m, dy, dx):
    shifted = np.roll(m, (dy, dx), axis=(0, 1))
    for a, b in zip(morphology.minkowski_functionals(shifted)[1:], morphology.minkowski_functionals(m)[1:]):
        close(a, b, 1e-9)
    np.testing.assert_array_equal(morphology.peak_counts(shifted)[1], morphology.peak_counts(m)[1])


@settings(max_examples=25, deadline=None)
@given(m=map_strategy, e=st.sampled_from([-2, -1, 1, 3]))
def test_scaling(m, e):
    """With c a power of two (exact), V0 and peaks are unchanged and V1, V2 scale by c."""
    c2 = 2.0 ** e
    a = morphology.minkowski_functionals(c2 * m)
    b = morphology.minkowski_functionals(m)
    np.testing.assert_array_equal(a[1], b[1])
    close(a[2], c2 * b[2], 1e-12)
    close(a[3], c2 * b[3], 1e-12)
    np.testing.assert_array_equal(morphology.peak_counts(c2 * m)[1], morphology.peak_counts(m)[1])


def test_many_irregular_bins():
    """More levels than the fast counter holds (> 255) and irregular spacing: still exact."""
    maps = field_maps(2, 24, seed=4)
    t = np.sort(np.random.default_rng(0).uniform(-3, 3, 200))
    _, v0, v1, v2 = morphology.minkowski_functionals(maps, t)
    for j, m in enumerate(maps):
        r0, r1, r2 = reference_minkowski(m, t, True)
        close(v0[j], r0, 1e-12)
        close(v1[j], r1, 1e-12)
        close(v2[j], r2, 1e-12)
    edges = np.quantile(maps[0], np.linspace(0, 1, 300))
    np.testing.assert_array_equal(morphology.pixel_histogram(maps[0], edges)[1], np.histogram(maps[0], edges)[0])


def test_fixture_thresholds_are_the_defaults(lenstools_fixture):
    np.testing.assert_array_equal(morphology.DEFAULT_MF_THRESHOLDS, lenstools_fixture["thresholds"])
    np.testing.assert_array_equal(morphology.DEFAULT_PEAK_THRESHOLDS, lenstools_fixture["peak_thresholds"])
    assert morphology.DEFAULT_MF_THRESHOLDS.size == 20


@settings(max_examples=25, deadline=None)
@given(m=map_strategy, turns=st.integers(1, 3))
def test_rotation_by_90_degrees(m, turns):
    """Minkowski functionals and peaks are exactly rotation invariant (symmetric stencils)."""
    rot = np.rot90(m, turns)
    for a, b in zip(morphology.minkowski_functionals(rot)[1:], morphology.minkowski_functionals(m)[1:]):
        close(a, b, 1e-9)
    np.testing.assert_array_equal(morphology.peak_counts(rot)[1], morphology.peak_counts(m)[1])
