"""The output calibration (paper_repro.gan.calibration): the layer, the fit, the saved model (the CLI: tests/evaluation/test_pick.py)."""

import keras
import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.gan import calibration, latents

SIZE = 16


def _filter():
    """A real, k -> -k symmetric mode filter (SIZE, SIZE): 1 + 0.5 cos(2 pi kx / SIZE) + 0.2 cos(...ky)."""
    k = np.fft.fftfreq(SIZE) * SIZE
    return 1.0 + 0.5 * np.cos(2 * np.pi * k[None, :] / SIZE) + 0.2 * np.cos(4 * np.pi * k[:, None] / SIZE)


def _pattern():
    y, x = np.mgrid[:SIZE, :SIZE]
    return 0.3 + 0.5 * np.sin(2 * np.pi * x / 4) * np.cos(2 * np.pi * y / 8)


def linear_generator(filt=None, pattern=None):
    """z (SIZE^2,) -> the white latent map filtered by ``filt`` plus ``pattern``: a known generator."""
    filt = _filter() if filt is None else filt
    pattern = _pattern() if pattern is None else pattern
    basis = np.eye(SIZE * SIZE).reshape(-1, SIZE, SIZE)
    kernel = np.fft.ifft2(np.fft.fft2(basis) * filt).real.reshape(SIZE * SIZE, SIZE * SIZE)
    z = keras.Input((SIZE * SIZE,))
    dense = keras.layers.Dense(SIZE * SIZE)
    out = keras.layers.Reshape((SIZE, SIZE, 1))(dense(z))
    model = keras.Model(z, out, name="generator")
    dense.set_weights([kernel.astype(np.float32), pattern.ravel().astype(np.float32)])
    return model


def _maps(model, n, seed):
    return np.concatenate(list(latents.generate(model, n, seed)))


def test_identity_layer_changes_nothing():
    g = linear_generator()
    c = calibration.calibrated(g, np.zeros((SIZE, SIZE), np.float32), np.ones((SIZE, SIZE), np.float32))
    np.testing.assert_allclose(_maps(c, 8, 1), _maps(g, 8, 1), atol=1e-5)
    assert calibration.is_calibrated(c) and not calibration.is_calibrated(g)
    assert calibration.uncalibrated(g) is g
    np.testing.assert_array_equal(_maps(calibration.uncalibrated(c), 8, 1), _maps(g, 8, 1))


def test_layer_is_pattern_then_mode_gain():
    rng = np.random.default_rng(0)
    g = linear_generator()
    pattern = rng.normal(size=(SIZE, SIZE)).astype(np.float32)
    gain = _filter().astype(np.float32)
    c = calibration.calibrated(g, pattern, gain)
    x = _maps(g, 8, 2).astype(np.float64)
    want = np.fft.ifft2(np.fft.fft2(x - pattern) * gain).real
    np.testing.assert_allclose(_maps(c, 8, 2), want, atol=1e-5)


def test_fit_recovers_a_known_filter_and_pattern():
    """White real maps; a generator that filters white latents and adds a pattern: the fit finds
    gain = 1 / filter (but k = 0) and the pattern less its mean, and the calibrated maps have the
    real power at every mode."""
    real = np.random.default_rng(1).standard_normal((4096, SIZE, SIZE)).astype(np.float32)
    g = linear_generator()
    pattern, gain, info = calibration.fit(g, real, data_scale=1.0, n_maps=4096, seed=3)
    filt = _filter()
    ratio = (gain * filt)[~np.eye(1, SIZE * SIZE, 0, dtype=bool).reshape(SIZE, SIZE)]
    assert abs(ratio.mean() - 1) < 0.005 and np.abs(ratio - 1).max() < 0.06
    assert gain[0, 0] == 1.0
    truth = _pattern() - _pattern().mean()
    assert abs(pattern.mean()) < 1e-6 and np.abs(pattern - truth).max() < 0.1
    assert info.n_generated == 4096 and info.n_real == 4096 and info.seed == 3
    assert info.gain_min < 1 / 1.5 < info.gain_max         # the filter spans 0.3-1.7
    # calibrated maps from other latents: the real power at each mode, the pattern gone, the mean kept
    c = calibration.calibrated(g, pattern, gain)
    x = _maps(c, 4096, 9).astype(np.float64)
    p = np.abs(np.fft.fft2(x)).__pow__(2).mean(axis=0)
    rel = p / (SIZE * SIZE)                                   # white unit noise: SIZE^2 per mode
    rel[0, 0] = 1.0
    assert np.abs(rel - 1).max() < 0.12 and abs(rel.mean() - 1) < 0.01
    np.testing.assert_allclose(x.mean(axis=0), _pattern().mean(), atol=0.1)
    # without calibration the same check fails: the test can tell
    x0 = _maps(g, 4096, 9).astype(np.float64)
    rel0 = np.abs(np.fft.fft2(x0 - x0.mean(axis=0))).__pow__(2).mean(axis=0) / SIZE ** 2
    assert np.abs(rel0 - 1).max() > 0.5


def test_fit_is_reproducible_for_a_seed():
    real = np.random.default_rng(1).standard_normal((256, SIZE, SIZE)).astype(np.float32)
    g = linear_generator()
    a = calibration.fit(g, real, data_scale=1.0, n_maps=256, seed=3)
    b = calibration.fit(g, real, data_scale=1.0, n_maps=256, seed=3)
    c = calibration.fit(g, real, data_scale=1.0, n_maps=256, seed=4)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])


def test_real_power_is_averaged_over_the_symmetries_of_the_square():
    x = np.zeros((1, SIZE, SIZE))
    x[0] = np.cos(2 * np.pi * np.arange(SIZE) / SIZE)[None, :]   # a plane wave: power at (0, +-1)
    p = calibration.real_mode_power(x)
    assert p[0, 1] > 0 and p[0, 1] == pytest.approx(p[1, 0]) == pytest.approx(p[0, -1]) == pytest.approx(p[-1, 0])
    assert p[0, 1] == pytest.approx(np.abs(np.fft.fft2(x[0])).__pow__(2)[0, 1] / 2)   # half of it turned
    assert p.sum() == pytest.approx(np.abs(np.fft.fft2(x[0])).__pow__(2).sum())


def test_bad_inputs_are_one_line_errors():
    g = linear_generator()
    real = np.zeros((10, SIZE, SIZE), np.float32)
    with pytest.raises(PaperReproError, match="must be"):
        calibration.fit(g, np.zeros((10, 8, 8), np.float32), data_scale=1.0, n_maps=16)
    bad = np.random.default_rng(0).standard_normal((10, SIZE, SIZE)).astype(np.float32)
    bad[3, 2, 2] = np.nan
    with pytest.raises(PaperReproError, match="NaN"):
        calibration.fit(g, bad, data_scale=1.0, n_maps=16)
    with pytest.raises(PaperReproError, match="at least 2"):
        calibration.fit(g, real, data_scale=1.0, n_maps=1)
    with pytest.raises(PaperReproError, match="symmetric"):
        gain = np.ones((SIZE, SIZE), np.float32)
        gain[0, 1] = 2.0
        calibration.calibrated(g, np.zeros((SIZE, SIZE), np.float32), gain)
    with pytest.raises(PaperReproError, match="positive"):
        calibration.calibrated(g, np.zeros((SIZE, SIZE), np.float32), np.zeros((SIZE, SIZE), np.float32))
    c = calibration.calibrated(g, np.zeros((SIZE, SIZE), np.float32), np.ones((SIZE, SIZE), np.float32))
    with pytest.raises(PaperReproError, match="already calibrated"):
        calibration.calibrated(c, np.zeros((SIZE, SIZE), np.float32), np.ones((SIZE, SIZE), np.float32))
