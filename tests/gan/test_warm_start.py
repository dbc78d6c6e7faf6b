"""paper_repro.gan.warm_start: a conditional run starts as the unconditional model it is fine-tuned
from, a run killed before its first checkpoint starts over the same way, and bad sources are refused."""
from __future__ import annotations

import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.config import get_preset
from paper_repro.errors import PaperReproError
from paper_repro.gan import runs, warm_start
from paper_repro.gan.conditional import ConditionalCosmoGAN, normalise_parameters
from paper_repro.gan.cosmogan import CosmoGAN
from paper_repro.gan.training import train
from tests.helpers import KillAfter, Killed

PRESET = get_preset("tiny-cond")
SIZE, LATENT = PRESET.model.image_size, PRESET.model.latent_dim


@pytest.fixture(scope="module")
def source(tmp_path_factory, tiny_cosmo_grid):
    """A trained unconditional tiny run (one epoch) and a tiny cosmology grid."""
    tmp = tmp_path_factory.mktemp("warm")
    maps = np.random.default_rng(0).normal(0, 0.03, (64, SIZE, SIZE)).astype(np.float32)
    np.save(tmp / "maps.npy", maps)
    run = train(tmp / "base", "tiny", tmp / "maps.npy", epochs=1, seed=3, progress=False)
    return run, tiny_cosmo_grid


def unconditional(run):
    gan = CosmoGAN.from_preset(runs.read_run_info(run).preset, seed=0)
    gan.set_state(runs.load_checkpoint(runs.latest_checkpoint(run))[0])
    return gan


def test_the_conditional_model_starts_as_the_source(source):
    run, _ = source
    gan = ConditionalCosmoGAN.from_preset(PRESET, seed=5)
    record = warm_start.warm_start(gan, run, PRESET.model)
    assert record["source_preset"] == "tiny" and record["global_step"] == 4 and len(record["sha256"]) == 64
    base = unconditional(run)
    rng = np.random.default_rng(1)
    z = rng.standard_normal((8, LATENT)).astype(np.float32)
    for s8 in (0.70, 0.90):
        theta = normalise_parameters(np.tile([0.22, s8], (8, 1)), PRESET.parameters)
        np.testing.assert_array_equal(np.asarray(gan.generator([z, theta], training=False)),
                                      np.asarray(base.generator(z, training=False)))
        x = np.asarray(base.generator(z, training=False))
        np.testing.assert_allclose(np.asarray(gan.discriminator([x, theta], training=False)),
                                   np.asarray(base.discriminator(x, training=False)), rtol=1e-6, atol=1e-6)
    # the parameter weights are zero, and only they
    assert not np.asarray(gan.discriminator.get_layer("embed").kernel).any()
    kernel = np.asarray(gan.generator.get_layer("dense").kernel)
    assert not kernel[LATENT:].any() and kernel[:LATENT].any()


def test_a_run_killed_before_its_first_checkpoint_starts_over_from_the_source(source, tmp_path):
    run, grid = source
    ref, new = tmp_path / "ref", tmp_path / "new"
    train(ref, "tiny-cond", grid, epochs=1, seed=7, progress=False, init_from=run)
    with pytest.raises(Killed):          # 4 steps an epoch, first checkpoint at the epoch's end
        train(new, "tiny-cond", grid, epochs=1, seed=7, progress=False, init_from=run, callbacks=[KillAfter(2)])
    assert runs.latest_checkpoint(new) is None and warm_start.read_record(new)["source"] == str(run)
    train(new, resume=True, progress=False)
    (got, _), (want, _) = (runs.load_checkpoint(runs.latest_checkpoint(r)) for r in (new, ref))
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)
    # and it is not the run trained from scratch
    scratch = train(tmp_path / "scratch", "tiny-cond", grid, epochs=1, seed=7, progress=False)
    assert any(not np.array_equal(x, y) for x, y in
               zip(runs.load_checkpoint(runs.latest_checkpoint(scratch))[0], want))


def test_bad_sources_are_refused(source, tmp_path, capsys):
    run, grid = source
    other = get_preset("cpu64-cond")
    with pytest.raises(PaperReproError, match="another topology"):
        warm_start.warm_start(ConditionalCosmoGAN.from_preset(PRESET, seed=0), run, other.model)
    small = tmp_path / "small.npy"
    np.save(small, np.zeros((64, 64, 64), np.float32))
    for data, extra, message in (
            (grid, ["--init-from", str(tmp_path / "nope")], "neither a run directory nor a checkpoint"),
            (grid, ["--init-from", str(run), "--resume"], "starts a new run"),
            (small, ["--init-from", str(run), "--preset", "cpu64"], "another topology")):
        out = tmp_path / "out"
        preset = [] if "--preset" in extra else ["--preset", "tiny-cond"]
        assert main(["train", *preset, "--data", str(data), "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
        assert not (out / "config.json").exists()
