"""Conditioning "film" (paper_repro.gan.models.ConditionalAffine): the parameters reach every batch-
normalised channel of G, the layer starts as the identity so a warm start begins as the source, it
saves and loads with the model, and a film run trains, resumes and generates like a concat run."""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from paper_repro.config import ConditionalPreset, Preset, get_preset
from paper_repro.errors import PaperReproError
from paper_repro.gan import runs, warm_start
from paper_repro.gan.conditional import ConditionalCosmoGAN, build_conditional_generator, normalise_parameters
from paper_repro.gan.cosmogan import CosmoGAN
from paper_repro.gan.models import ConditionalAffine, build_generator, count_params
from paper_repro.gan.training import train
from tests.helpers import killed_and_resumed

PRESET = get_preset("tiny-film")
SIZE, LATENT = PRESET.model.image_size, PRESET.model.latent_dim


def films(g):
    return [layer for layer in g.layers if isinstance(layer, ConditionalAffine)]


def inputs(n=8, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, LATENT)).astype(np.float32)
    a = normalise_parameters(np.tile([0.24, 0.72], (n, 1)), PRESET.parameters)
    b = normalise_parameters(np.tile([0.30, 0.88], (n, 1)), PRESET.parameters)
    return z, a, b


def test_presets_config_and_parameter_count():
    assert isinstance(PRESET, ConditionalPreset) and PRESET.conditioning == "film"
    assert get_preset("tiny-cond").conditioning == "concat" == get_preset("cpu64-cond").conditioning
    assert Preset.from_dict(PRESET.to_dict()) == PRESET
    old = get_preset("cpu64-cond").to_dict()
    del old["conditioning"]                                  # a run recorded before the setting existed
    assert Preset.from_dict(old) == get_preset("cpu64-cond")
    with pytest.raises(PaperReproError, match="conditioning must be one of concat, film, got 'adain'"):
        dataclasses.replace(PRESET, conditioning="adain")
    with pytest.raises(ValueError, match="needs parameters"):
        build_generator("tiny", film=True)
    # a scale and a shift per parameter and channel of each of Table 1's batch norms: 2 x 2 x 480 in cpu64
    film, concat = (count_params(build_conditional_generator(p))[0] for p in ("cpu64-film", "cpu64-cond"))
    assert film - concat == 2 * 2 * (256 + 128 + 64 + 32)
    assert [layer.name for layer in films(build_conditional_generator("cpu64-film"))] == [f"film{i}" for i in range(4)]


def test_the_parameters_reach_g_through_the_normalised_channels_alone(tmp_path):
    g = build_conditional_generator(PRESET, seed=3)
    z, a, b = inputs()
    dense = g.get_layer("dense")
    kernel = dense.kernel.numpy()
    kernel[LATENT:] = 0.0                                   # the concatenation carries nothing
    dense.kernel.assign(kernel)
    np.testing.assert_array_equal(np.asarray(g([z, a])), np.asarray(g([z, b])))   # identity at zero
    rng = np.random.default_rng(1)
    for layer in films(g):
        layer.scale.assign(rng.normal(0, 0.2, layer.scale.shape).astype(np.float32))
        layer.shift.assign(rng.normal(0, 0.2, layer.shift.shape).astype(np.float32))
    ya, yb = np.asarray(g([z, a])), np.asarray(g([z, b]))
    assert np.abs(ya - yb).max() > 1e-3 * np.abs(ya).max()
    path = tmp_path / "g.keras"                             # the layer is saved with the model
    g.save(path)
    np.testing.assert_array_equal(np.asarray(keras.saving.load_model(path, compile=False)([z, a])), ya)


def test_the_affine_is_per_map_linear_in_the_parameters():
    layer = ConditionalAffine()
    x = np.random.default_rng(2).normal(size=(3, 4, 4, 5)).astype(np.float32)
    u = np.array([[0.5, -1.0], [0.0, 0.0], [1.0, 1.0]], np.float32)
    layer([x, u])
    A = np.arange(10, dtype=np.float32).reshape(2, 5) / 10
    B = -np.arange(10, dtype=np.float32).reshape(2, 5) / 20
    layer.scale.assign(A)
    layer.shift.assign(B)
    want = x * (1 + u @ A)[:, None, None, :] + (u @ B)[:, None, None, :]
    np.testing.assert_allclose(np.asarray(layer([x, u])), want, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def source(tmp_path_factory, tiny_cosmo_grid):
    tmp = tmp_path_factory.mktemp("film")
    maps = np.random.default_rng(0).normal(0, 0.03, (64, SIZE, SIZE)).astype(np.float32)
    np.save(tmp / "maps.npy", maps)
    return train(tmp / "base", "tiny", tmp / "maps.npy", epochs=1, seed=3, progress=False), tiny_cosmo_grid


def test_a_warm_start_begins_as_the_unconditional_source(source):
    run, _ = source
    gan = ConditionalCosmoGAN.from_preset(PRESET, seed=5)
    for layer in films(gan.generator):                     # whatever the new layers hold, they start at zero
        layer.scale.assign(np.ones(layer.scale.shape, np.float32))
    warm_start.warm_start(gan, run, PRESET.model)
    base = CosmoGAN.from_preset("tiny", seed=0)
    base.set_state(runs.load_checkpoint(runs.latest_checkpoint(run))[0])
    z, a, b = inputs(seed=4)
    want = np.asarray(base.generator(z, training=False))
    for theta in (a, b):
        np.testing.assert_array_equal(np.asarray(gan.generator([z, theta], training=False)), want)
    assert all(not layer.scale.numpy().any() and not layer.shift.numpy().any() for layer in films(gan.generator))


def test_a_film_run_trains_resumes_and_generates(source, tmp_path):
    _, grid = source
    run = killed_and_resumed(tmp_path, "tiny-film", grid)
    g, preset = runs.load_generator(run)
    assert preset == PRESET and any(layer.scale.numpy().any() for layer in films(g))   # trained
    lo, hi = (runs.generate_maps(run, 4, 1, params=(0.3, s8)) for s8 in (0.75, 0.85))
    assert lo.shape == (4, SIZE, SIZE) and np.isfinite(lo).all() and not np.array_equal(lo, hi)
