"""paper_repro.gan.conditional_pdf: the one-point-distribution term equals its formula, vanishes when the
generated quantiles follow the real ones at every parameter, sees a wrong trend in the parameters
that a matched mean hides, and enters a conditional run's step, logs and resume; on standardised
quantiles it sees the distribution's shape and not its amplitude."""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from paper_repro.config import Preset, get_preset
from paper_repro.errors import PaperReproError
from paper_repro.gan.conditional import ConditionalCosmoGAN, normalise_parameters
from paper_repro.gan.conditional_pdf import (
    LEVELS,
    ConditionalPDFTerm,
    conditional_quantile_loss,
    map_quantiles,
    standardised_quantiles,
)
from tests.helpers import killed_and_resumed

PRESET = get_preset("tiny-pdf")
SIZE, LATENT = PRESET.model.image_size, PRESET.model.latent_dim


def lognormal_batch(sigma, seed):
    """Maps whose skewness grows with ``sigma`` (B,), shape (B, 16, 16, 1)."""
    g = np.random.default_rng(seed).standard_normal((len(sigma), 16, 16, 1))
    return (np.exp(sigma[:, None, None, None] * g) - np.exp(sigma[:, None, None, None] ** 2 / 2)).astype(np.float32)


def reference(real, fake, params, standardise=False):
    """The module docstring's formula in NumPy."""
    def q(m):
        flat = np.sort(m.reshape(len(m), -1), axis=1)
        out = flat[:, np.minimum((np.asarray(LEVELS) * flat.shape[1]).astype(int), flat.shape[1] - 1)]
        if standardise:
            out = (out - flat.mean(axis=1, keepdims=True)) / flat.std(axis=1, keepdims=True)
        return out
    f = np.concatenate([np.ones((len(params), 1)), params], axis=1)
    m = f.T @ (q(fake) - q(real)) / len(params)
    return np.mean((m / (q(real).std(axis=0) + 1e-6)) ** 2)


def test_quantiles_and_the_formula():
    maps = np.random.default_rng(0).normal(size=(3, 10, 10, 1)).astype(np.float32)
    q = np.asarray(map_quantiles(maps))
    assert q.shape == (3, len(LEVELS)) and np.all(np.diff(q, axis=1) >= 0)
    np.testing.assert_array_equal(q[:, 7], np.sort(maps.reshape(3, -1), axis=1)[:, 50])   # the median level
    u = np.random.default_rng(1).uniform(-1, 1, (32, 2)).astype(np.float32)
    real = lognormal_batch(0.3 + 0.2 * u[:, 1], seed=2)
    fake = lognormal_batch(0.4 + 0.05 * u[:, 1], seed=3)
    np.testing.assert_allclose(float(conditional_quantile_loss(real, fake, u)), reference(real, fake, u), rtol=1e-5)
    np.testing.assert_allclose(float(conditional_quantile_loss(real, fake, u, standardise=True)),
                               reference(real, fake, u, standardise=True), rtol=1e-4)


def test_standardised_quantiles_see_the_shape_not_the_amplitude():
    rng = np.random.default_rng(10)
    maps = lognormal_batch(np.full(4, 0.5), seed=11)
    scaled = maps * np.float32([[[[0.5]]], [[[2.0]]], [[[3.0]]], [[[7.0]]]]) + np.float32(0.3)
    np.testing.assert_allclose(np.asarray(standardised_quantiles(scaled)), np.asarray(standardised_quantiles(maps)),
                               rtol=1e-4, atol=1e-5)
    # the same shape at every parameter, with an amplitude that follows the parameter the real one does not
    u = np.repeat(np.array([[0.0, -1.0], [0.0, 1.0]], np.float32), 256, axis=0)
    real = lognormal_batch(0.4 + 0.2 * u[:, 1], seed=12)
    louder = lognormal_batch(0.4 + 0.2 * u[:, 1], seed=13) * (1.0 + 0.5 * u[:, 1])[:, None, None, None]
    flat = lognormal_batch((0.4 + 0.2 * u[:, 1])[rng.permutation(len(u))], seed=14)   # no trend in the shape
    amplitude, shape = (float(conditional_quantile_loss(real, x, u, standardise=True)) for x in (louder, flat))
    assert amplitude < 0.01 and shape > 10 * amplitude
    assert float(conditional_quantile_loss(real, louder, u)) > 10 * amplitude          # the raw term sees it


def test_the_term_sees_the_trend_in_the_parameters():
    rng = np.random.default_rng(4)
    u = np.repeat(np.array([[0.0, -1.0], [0.0, 1.0]], np.float32), 256, axis=0)
    sigma = 0.4 + 0.2 * u[:, 1]                         # skewer maps at higher "sigma_8"
    real = lognormal_batch(sigma, seed=5)
    same = lognormal_batch(sigma, seed=6)              # the same law at each parameter, other draws
    flat = lognormal_batch(sigma[rng.permutation(len(sigma))], seed=7)   # the same mixture, no trend
    matched, wrong = float(conditional_quantile_loss(real, same, u)), float(conditional_quantile_loss(real, flat, u))
    assert matched < 0.01 and wrong > 10 * matched
    # the gradient reaches the generated maps
    import tensorflow as tf

    x = tf.Variable(flat)
    with tf.GradientTape() as tape:
        loss = conditional_quantile_loss(real, x, u)
    assert float(tf.reduce_sum(tf.abs(tape.gradient(loss, x)))) > 0


def test_presets_and_refusals():
    assert PRESET.pdf_weight == 10.0 and PRESET.conditioning == "film"
    assert get_preset("cpu64-pdf").pdf_weight == 10.0 and get_preset("cpu64-film").pdf_weight == 0.0
    shape = get_preset("cpu64-shape")
    assert shape.pdf_quantiles == "standardised" and PRESET.pdf_quantiles == "raw"
    assert dataclasses.replace(shape, name="cpu64-pdf", pdf_quantiles="raw") == get_preset("cpu64-pdf")
    for preset in (PRESET, get_preset("tiny-shape"), shape):
        assert Preset.from_dict(preset.to_dict()) == preset
    recorded = {k: v for k, v in PRESET.to_dict().items() if k != "pdf_quantiles"}   # a run from before the field
    assert Preset.from_dict(recorded).pdf_quantiles == "raw"
    for bad in (-1.0, float("nan"), "10"):
        with pytest.raises(PaperReproError, match="pdf_weight must be a finite number >= 0"):
            dataclasses.replace(PRESET, pdf_weight=bad)
    with pytest.raises(PaperReproError, match="pdf_quantiles must be one of raw, standardised, got 'sorted'"):
        dataclasses.replace(PRESET, pdf_quantiles="sorted")


def test_the_step_adds_the_weighted_term_to_g_alone():
    rng = np.random.default_rng(8)
    maps = rng.normal(0, 0.05, (16, SIZE, SIZE, 1)).astype(np.float32)
    params = normalise_parameters(rng.uniform(PRESET.parameters.low, PRESET.parameters.high, (16, 2)),
                                  PRESET.parameters)
    z = rng.standard_normal((16, LATENT)).astype(np.float32)
    u = np.float32(0.5)
    logs, grads = {}, {}
    for w in (0.0, 10.0):
        gan = ConditionalCosmoGAN.from_preset(PRESET, seed=2, loss_terms=[ConditionalPDFTerm(w)])
        fake = gan.generator([z, params], training=True)
        want = float(conditional_quantile_loss(maps * 1.0, fake, params))
        logs[w] = gan.train_on_batch((maps, params, z, u), return_dict=True)
        grads[w] = [v.numpy().copy() for v in gan.generator.trainable_weights]
        if w:
            np.testing.assert_allclose(logs[w]["pdf"], want, rtol=1e-4)
    assert "pdf" not in logs[0.0]                                   # weight 0: the paper's step
    np.testing.assert_allclose(logs[10.0]["d_loss"], logs[0.0]["d_loss"], rtol=1e-6)   # D's loss unchanged
    assert any(not np.allclose(a, b) for a, b in zip(grads[0.0], grads[10.0]))        # G's update changed


def test_a_pdf_run_logs_the_term_and_resumes_exactly(tmp_path, tiny_cosmo_grid):
    run = killed_and_resumed(tmp_path, "tiny-pdf", tiny_cosmo_grid)
    rows = (run / "pdf.csv").read_text().splitlines()
    assert rows[0].split(",") == ["global_step", "epoch", "weight", "pdf"] and len(rows) == 9
    assert all(float(r.split(",")[2]) == 10.0 and float(r.split(",")[3]) >= 0 for r in rows[1:])
    assert keras.backend.backend() == "tensorflow"


def test_a_shape_run_trains_on_the_standardised_term(tmp_path, tiny_cosmo_grid, monkeypatch):
    from paper_repro.gan import conditional_pdf, training

    made = []

    class Recording(conditional_pdf.ConditionalPDFTerm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self.standardise)

    monkeypatch.setattr(training, "ConditionalPDFTerm", Recording)
    training.train(tmp_path / "run", "tiny-shape", tiny_cosmo_grid, seed=3, epochs=1, progress=False)
    assert made == [True]
    rows = (tmp_path / "run" / "pdf.csv").read_text().splitlines()[1:]
    assert rows and all(float(r.split(",")[3]) >= 0 for r in rows)
