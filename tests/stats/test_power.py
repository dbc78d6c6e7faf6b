"""paper_repro.stats.power: LensTools' power spectrum (oracle fixture, loop reference, known answers,
symmetries), Fourier-mode power and correlation matrices."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_repro.errors import PaperReproError
from paper_repro.stats import power
from paper_repro.stats.power import fourier_mode_power
from tests.stats.references import close, field_maps, map_strategy, reference_power_spectrum


def test_power_spectrum_matches_lenstools(lenstools_fixture):
    f = lenstools_fixture
    ell, p = power.power_spectrum(f["maps"], float(f["angle_deg"]))
    np.testing.assert_array_equal(ell, f["ell"])
    assert p.shape == (4, 248)
    for ours, theirs in zip(p, f["P"]):
        close(ours, theirs)
        np.testing.assert_array_equal(ours == 0, theirs == 0)
    assert np.all(p[:, [0, 2]] == 0)                           # (200, 400] and (600, 800] hold no mode


@pytest.mark.parametrize("size,angle", [(64, 0.216), (50, 1.3), (33, 2.0)])
def test_power_spectrum_matches_reference(size, angle):
    maps = field_maps(2, size, seed=size)
    edges = np.geomspace(100.0, 360.0 / angle * size, 25)
    _, p = power.power_spectrum(maps, angle, edges)
    for row, m in zip(p, maps):
        close(row, reference_power_spectrum(m, angle, edges), rtol=1e-12)


def test_correlation_matrix():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    x[:, 1] += x[:, 0]
    x[:, 3] = 2.0                                             # constant component: undefined
    c = power.correlation_matrix(x)
    keep = [0, 1, 2, 4]
    np.testing.assert_allclose(c[np.ix_(keep, keep)], np.corrcoef(x[:, keep], rowvar=False), atol=1e-12)
    assert np.isnan(c[3]).all() and np.isnan(c[:, 3]).all()
    d = power.correlation_difference(x, x[::-1])
    assert np.nanmax(np.abs(d)) < 1e-12
    assert power.offdiagonal(c).size == 6                          # pairs of the 4 defined components


def test_count_modes_paper_settings():
    hits = power.count_modes(256, 0.866)
    assert hits.size == 248 and hits[0] == 0 and hits[2] == 0 and np.all(hits[3:] > 0)
    lpix = 360.0 / 0.866
    i = np.arange(256)[:, None]
    j = np.arange(129)[None, :]
    ell = np.hypot(np.minimum(i, 256 - i) * lpix, j * lpix)
    assert hits.sum() == ((ell > 200) & (ell <= power.DEFAULT_L_EDGES[-1])).sum()


@pytest.mark.parametrize("k", [3, 10, 57])
def test_cosine_lands_in_its_bin(k):
    n, angle, amp = 256, 0.866, 0.03
    x = np.arange(n)
    m = np.tile(amp * np.cos(2 * np.pi * k * x / n), (n, 1))   # along x (columns)
    ell, p = power.power_spectrum(m, angle)
    ell_k = k * 360.0 / angle
    b = np.searchsorted(power.DEFAULT_L_EDGES, ell_k, side="left") - 1
    hits = power.count_modes(n, angle)[b]
    theta = angle * math.pi / 180.0
    # one half-plane mode (0, k) with |F|^2 = (amp N^2 / 2)^2, averaged over the bin's modes
    np.testing.assert_allclose(p[b], theta ** 2 * amp ** 2 / (4 * hits), rtol=1e-10)
    assert np.max(np.abs(np.delete(p, b))) < 1e-12 * p[b]
    assert power.DEFAULT_L_EDGES[b] < ell_k <= power.DEFAULT_L_EDGES[b + 1]


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
    p, pr = power.power_spectrum(m, angle, edges)[1], power.power_spectrum(rot, angle, edges)[1]
    hits = power.count_modes(m.shape[0], angle, edges)
    sums = axis_mode_sums(m, angle, edges)
    norm = ((angle * math.pi / 180.0) / m.shape[0] ** 2) ** 2
    expected = p if turns == 2 else p + norm * (sums[:, 1] - sums[:, 0]) / (2 * np.maximum(hits, 1))
    close(pr, expected, 1e-9)
    no_axis = (sums == 0).all(axis=1) | (hits == 0)
    close(pr[no_axis], p[no_axis], 1e-9)


def test_fourier_mode_power_parseval_and_a_plane_wave():
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


def test_fixture_binning_is_the_default(lenstools_fixture):
    np.testing.assert_array_equal(power.DEFAULT_L_EDGES, lenstools_fixture["l_edges"])
    assert power.DEFAULT_L_EDGES.size == 249


def test_constant_map_has_no_power():
    _, p = power.power_spectrum(np.full((64, 64), 0.013), 0.5)
    assert np.all(p == 0)


@settings(max_examples=25, deadline=None)
@given(m=map_strategy, dy=st.integers(-40, 40), dx=st.integers(-40, 40))
def test_power_is_invariant_under_periodic_shifts(m, dy, dx):
    shifted = np.roll(m, (dy, dx), axis=(0, 1))
    edges = np.linspace(50, 360 / 0.3 * m.shape[0], 12)
    close(power.power_spectrum(shifted, 0.3, edges)[1], power.power_spectrum(m, 0.3, edges)[1], 1e-9)


@settings(max_examples=25, deadline=None)
@given(m=map_strategy, c=st.floats(0.01, 100.0))
def test_power_scales_as_the_square(m, c):
    close(power.power_spectrum(c * m, 0.4)[1], c ** 2 * power.power_spectrum(m, 0.4)[1], 1e-9)
