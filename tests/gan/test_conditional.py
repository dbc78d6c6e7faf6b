"""paper_repro.gan.conditional: the parameters reach G and D, bad parameters are refused, and the
conditional step is the paper's step at the real batch's parameters."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.config import ConditionalPreset, Preset, get_preset
from paper_repro.errors import PaperReproError
from paper_repro.gan import runs
from paper_repro.gan.conditional import (
    ConditionalCosmoGAN,
    build_conditional_discriminator,
    build_conditional_generator,
    normalise_parameters,
)
from paper_repro.gan.models import build_discriminator, build_generator, count_params, recalibrated_copy
from paper_repro.gan.training import train
from tests.helpers import KillAfter, Killed

PRESET = get_preset("tiny-cond")
SPACE = PRESET.parameters
SIZE, LATENT = PRESET.model.image_size, PRESET.model.latent_dim


def batch(n=16, seed=0):
    """Maps, normalised parameters and latents of one seeded batch."""
    rng = np.random.default_rng(seed)
    maps = rng.normal(0, 0.05, (n, SIZE, SIZE, 1)).astype(np.float32)
    params = normalise_parameters(rng.uniform(SPACE.low, SPACE.high, (n, 2)), SPACE)
    z = rng.standard_normal((n, LATENT)).astype(np.float32)
    return maps, params, z


def test_normalisation_maps_the_box_to_unit_range_and_refuses_bad_parameters():
    np.testing.assert_allclose(normalise_parameters([SPACE.low, SPACE.high], SPACE), [[-1, -1], [1, 1]], atol=1e-6)
    assert normalise_parameters((0.27, 0.8), SPACE).shape == (1, 2)
    with pytest.raises(PaperReproError, match="must be finite"):
        normalise_parameters((float("nan"), 0.8), SPACE)
    with pytest.raises(PaperReproError, match="expected 2 parameters per map"):
        normalise_parameters((0.3, 0.8, 0.96), SPACE)
    with pytest.raises(PaperReproError, match="must be numbers"):
        normalise_parameters(("a", 0.8), SPACE)
    outside = (SPACE.high[0] + 0.05, 0.8)
    assert normalise_parameters(outside, SPACE)[0, 0] > 1          # extrapolation allowed by default
    with pytest.raises(PaperReproError, match=r"Omega_m = 0.37 lies outside the trained range .*strict"):
        normalise_parameters(outside, SPACE, strict=True)


def test_presets_and_topology():
    assert isinstance(PRESET, ConditionalPreset) and PRESET.model == get_preset("tiny").model
    assert Preset.from_dict(PRESET.to_dict()) == PRESET                     # run configs round-trip
    assert not isinstance(Preset.from_dict(get_preset("tiny").to_dict()), ConditionalPreset)
    with pytest.raises(PaperReproError, match="not conditional"):
        build_conditional_generator("tiny")
    # Tables 1-2 plus the parameters' weights only: G's dense layer gains 2 x its width, D one V
    cond = get_preset("cpu64-cond")
    g0, d0 = count_params(build_generator("cpu64"))[0], count_params(build_discriminator("cpu64"))[0]
    g1 = count_params(build_conditional_generator(cond))[0]
    d1 = count_params(build_conditional_discriminator(cond))[0]
    features = 4 * 4 * 256
    assert (g1 - g0, d1 - d0) == (2 * features, 2 * features)


def test_parameters_reach_the_generator_and_the_discriminator():
    g, d = build_conditional_generator(PRESET, seed=3), build_conditional_discriminator(PRESET, seed=3)
    maps, params, z = batch()
    one = np.repeat(params[:1], len(z), axis=0)
    other = np.repeat(params[1:2], len(z), axis=0)
    a, b = np.asarray(g([z, one])), np.asarray(g([z, other]))
    assert np.abs(a - b).max() > 1e-3 * np.abs(a).max()                 # same z, other cosmology
    np.testing.assert_array_equal(a, np.asarray(g([z, one])))           # deterministic in inference
    sa, sb = np.asarray(d([maps, one])), np.asarray(d([maps, other]))
    assert np.abs(sa - sb).min() > 0 and sa.shape == (len(maps), 1)
    # the projection term is what moves D's score: with V = 0 the score ignores the parameters
    d.get_layer("embed").kernel.assign(np.zeros_like(d.get_layer("embed").kernel.numpy()))
    np.testing.assert_array_equal(np.asarray(d([maps, one])), np.asarray(d([maps, other])))


def test_step_is_the_paper_step_at_the_real_batch_parameters():
    maps, params, z = batch(seed=1)
    u = np.float32(0.5)                                # no label swap (flip_prob 0.01)
    gan = ConditionalCosmoGAN.from_preset(PRESET, seed=2)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    ones, zeros = np.ones((len(maps), 1), np.float32), np.zeros((len(maps), 1), np.float32)

    def losses(fake_params):
        real_params = keras.ops.convert_to_tensor(params)
        fake = gan.generator([z, fake_params], training=True)
        d_real = gan.discriminator([keras.ops.convert_to_tensor(maps), real_params], training=True)
        d_fake = gan.discriminator([fake, real_params], training=True)
        return float(bce(ones, d_real) + bce(zeros, d_fake)), float(bce(ones, d_fake))

    expected = losses(params)
    shuffled = losses(params[::-1])
    before = gan.generator.get_weights()[0].copy()
    logs = gan.train_on_batch((maps, params, z, u), return_dict=True)
    np.testing.assert_allclose((logs["d_loss"], logs["g_loss"]), expected, rtol=1e-5)
    assert all(np.isfinite(v) for v in logs.values()) and logs["flipped"] == 0
    assert not np.array_equal(gan.generator.get_weights()[0], before)   # the step trained G
    assert abs(shuffled[1] - expected[1]) > 1e-6      # G at other parameters would give other losses


def test_precise_batch_norm_draws_the_training_parameters():
    g = build_conditional_generator(PRESET, seed=6)
    _, params, _ = batch(n=64, seed=2)
    a = recalibrated_copy(g, batches=2, batch_size=16, seed=1, params=params)
    b = recalibrated_copy(g, batches=2, batch_size=16, seed=1, params=params)
    c = recalibrated_copy(g, batches=2, batch_size=16, seed=1, params=np.ones_like(params))
    stats = [np.asarray(m.get_layer("bn0").moving_mean) for m in (g, a, b, c)]
    assert not np.array_equal(stats[0], stats[1])                 # recalibrated
    np.testing.assert_array_equal(stats[1], stats[2])              # seeded
    assert not np.array_equal(stats[1], stats[3])                  # the parameters matter
    with pytest.raises(ValueError, match="conditional"):
        recalibrated_copy(g, batches=1, batch_size=4)


def test_refusals_of_the_step(monkeypatch):
    gan = ConditionalCosmoGAN.from_preset(PRESET, seed=4)
    with pytest.raises(PaperReproError, match=r"\(maps, params\)"):
        gan.train_on_batch(batch()[0])
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(PaperReproError, match="TensorFlow only"):
        gan.train_on_batch(batch()[:2])


@pytest.fixture(scope="module")
def grid(tiny_cosmo_grid):
    return tiny_cosmo_grid


def test_train_resume_and_generate_through_the_cli(tmp_path, grid, capsys):
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert main(["train", "--preset", "tiny-cond", "--data", str(grid), "--out", str(ref), "--seed", "7"]) == 0
    with pytest.raises(Killed):      # killed in epoch 2 (4 steps an epoch): last checkpoint at step 4
        train(run, "tiny-cond", grid, seed=7, progress=False, callbacks=[KillAfter(5)])
    assert runs.load_checkpoint(runs.latest_checkpoint(run))[1]["global_step"] == 4
    assert main(["train", "--out", str(run), "--resume"]) == 0
    (got, meta), (want, _) = (runs.load_checkpoint(runs.latest_checkpoint(r)) for r in (run, ref))
    assert meta["global_step"] == 8
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)
    out = {}
    for s8 in ("0.8", "0.85"):
        path = tmp_path / f"maps-{s8}.npy"
        assert main(["generate", "--run", str(run), "--n", "6", "--seed", "1", "--out", str(path),
                     "--omega-m", "0.3", "--sigma-8", s8]) == 0
        out[s8] = np.load(path)
    assert out["0.8"].shape == (6, SIZE, SIZE) and np.isfinite(out["0.8"]).all()
    assert not np.array_equal(out["0.8"], out["0.85"])       # same latents, other sigma_8
    np.testing.assert_allclose(out["0.8"], runs.generate_maps(run, 6, 1, params=(0.3, 0.8)), rtol=1e-6)
    capsys.readouterr()
    bad = tmp_path / "bad.npy"
    for extra, message in ((["--omega-m", "0.3"], "both --omega-m and --sigma-8"),
                           ([], "is conditional: give the parameters"),
                           (["--omega-m", "0.3", "--sigma-8", "0.95", "--strict"], "outside the trained range"),
                           (["--omega-m", "nan", "--sigma-8", "0.8"], "must be finite")):
        assert main(["generate", "--run", str(run), "--n", "2", "--seed", "1", "--out", str(bad), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not bad.exists()
