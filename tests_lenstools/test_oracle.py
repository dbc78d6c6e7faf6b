"""paper_repro.stats (power, morphology) against the real LensTools 1.2 on fresh random maps of several sizes and angles."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lenstools", reason="the LensTools 1.2 oracle runs in its own environment: tox -e lenstools")

from paper_repro.stats import morphology, power  # noqa: E402
from tests_lenstools.oracle import lt_map, random_maps  # noqa: E402

CASES = [  # (size, angle_deg, dtype)
    (256, 0.866, np.float32),     # the paper's maps
    (256, 3.5, np.float64),
    (128, 0.866, np.float32),
    (100, 1.7, np.float64),       # not a power of two
    (64, 0.216, np.float32),      # the cpu64 preset's maps
    (63, 2.0, np.float64),        # odd size
    (32, 0.108, np.float32),      # the tiny preset's maps
]
N_MAPS = 3
RTOL = 1e-10


def close(ours, theirs, rtol=RTOL):
    """Agreement to rtol relative to the largest |value| of the oracle's row (zeros stay zeros)."""
    theirs = np.asarray(theirs, dtype=np.float64)
    scale = np.max(np.abs(theirs)) if theirs.size else 0.0
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}px-{c[1]}deg-{np.dtype(c[2]).name}")
def case(request):
    size, angle, dtype = request.param
    maps = random_maps(N_MAPS, size, seed=1000 + size, dtype=dtype)
    return maps, angle, [lt_map(m, angle) for m in maps]


def edges_for(size, angle):
    """The paper's edges where they fit, and a log-spaced set up to the Nyquist ell."""
    lmax = 360.0 / angle * size / 2 * np.sqrt(2)
    return [power.DEFAULT_L_EDGES, np.geomspace(360.0 / angle, lmax * 1.01, 30)]


def test_power_spectrum(case):
    maps, angle, lts = case
    for edges in edges_for(maps.shape[1], angle):
        ell, p = power.power_spectrum(maps, angle, edges)
        for m, row in zip(lts, p):
            l_lt, p_lt = m.powerSpectrum(edges)
            np.testing.assert_array_equal(ell, l_lt)
            close(row, p_lt)
            assert np.array_equal(row == 0, p_lt == 0)             # the same empty bins


@pytest.mark.parametrize("norm", [True, False])
def test_minkowski_functionals(case, norm):
    maps, angle, lts = case
    thresholds = morphology.DEFAULT_MF_THRESHOLDS if norm else np.linspace(-0.05, 0.08, 27)
    nu, v0, v1, v2 = morphology.minkowski_functionals(maps, thresholds, norm=norm)
    for j, m in enumerate(lts):
        nu_lt, v0_lt, v1_lt, v2_lt = m.minkowskiFunctionals(thresholds, norm=norm)
        np.testing.assert_array_equal(nu, nu_lt)
        close(v0[j], v0_lt)
        close(v1[j], v1_lt)
        close(v2[j], v2_lt)


def test_peak_counts(case):
    maps, angle, lts = case
    for thresholds, norm in [(morphology.DEFAULT_PEAK_THRESHOLDS, True), (np.linspace(-0.04, 0.1, 15), False)]:
        nu, pk = morphology.peak_counts(maps, thresholds, norm=norm)
        for j, m in enumerate(lts):
            nu_lt, pk_lt = m.peakCount(thresholds, norm=norm)
            np.testing.assert_array_equal(nu, nu_lt)
            close(pk[j], pk_lt)


@pytest.mark.parametrize("connected", [True, False])
@pytest.mark.parametrize("dimensionless", [True, False])
def test_moments(case, connected, dimensionless):
    maps, angle, lts = case
    ours = morphology.moments(maps, connected=connected, dimensionless=dimensionless)
    for j, m in enumerate(lts):
        theirs = m.moments(connected=connected, dimensionless=dimensionless)
        np.testing.assert_allclose(ours[j], theirs, rtol=1e-9, atol=1e-12 * np.abs(theirs).max())


def test_gradient_hessian(case):
    maps, angle, lts = case
    ours = morphology.gradient_hessian(maps)
    for j, m in enumerate(lts):
        theirs = m.gradient() + m.hessian()
        for o, t in zip(ours, theirs):
            np.testing.assert_array_equal(o[j], t)


def test_pixel_pdf(case):
    """LensTools' pdf (np.histogram density x sigma) from our per-map pixel histogram."""
    maps, angle, lts = case
    thresholds = np.linspace(-3.0, 5.0, 41)
    for j, m in enumerate(lts):
        sigma = np.asarray(maps[j], dtype=np.float64).std()
        centres, counts = morphology.pixel_histogram(maps[j], thresholds * sigma)
        nu_lt, pdf_lt = m.pdf(thresholds, norm=True)
        ours = counts / (counts.sum() * np.diff(thresholds * sigma)) * sigma
        close(ours, pdf_lt)
