"""Runs: checkpoints, resume equivalence, atomic writes, divergence, generation."""
import csv
import json

import numpy as np
import pytest

from paper_repro.errors import PaperReproError, TrainingDiverged
from paper_repro.gan import runs
from paper_repro.gan.batches import epoch_permutation, read_batch
from paper_repro.gan.training import train
from tests.helpers import KillAfter, Killed, epoch_weights, smooth_maps


def _final_state(run):
    state, meta = runs.load_checkpoint(runs.latest_checkpoint(run))
    return state, meta


def test_epoch_permutations_differ_and_are_seeded():
    a, b = epoch_permutation(1, 0, 100), epoch_permutation(1, 1, 100)
    assert sorted(a) == list(range(100)) and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, epoch_permutation(1, 0, 100))


def test_read_batch_keeps_permutation_order(tiny_data):
    maps = np.load(tiny_data, mmap_mode="r")
    idx = np.array([7, 2, 50, 3])
    b = read_batch(maps, idx, 2.0)
    assert b.shape == (4, 32, 32, 1) and b.dtype == np.float32
    np.testing.assert_array_equal(b[..., 0], 2.0 * maps[idx])


def test_run_directory_layout(tmp_path, tiny_data):
    run = train(tmp_path / "run", "tiny", tiny_data, seed=1, epochs=2, progress=False)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"]["name"] == "tiny" and cfg["seed"] == 1 and cfg["preset"]["training"]["epochs"] == 2
    assert (run / "generator.keras").exists()
    assert sorted(p.name for p in (run / "generators").iterdir()) == ["epoch-0001.weights.h5", "epoch-0002.weights.h5"]
    _, meta = _final_state(run)
    assert meta["epoch"] == 2 and meta["global_step"] == 2 * (96 // 16)
    rows = (run / "log.csv").read_text().splitlines()
    assert rows[0].startswith("global_step,epoch,d_loss,g_loss,d_real,d_fake")
    assert len(rows) == 1 + 12  # log_every = 1 for tiny


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, tiny_data):
    """An uninterrupted 2-epoch tiny run with a checkpoint every 4 steps."""
    from paper_repro.config import get_preset
    preset = get_preset("tiny").replace(checkpoint_every=4)
    return train(tmp_path_factory.mktemp("ref") / "run", preset, tiny_data, seed=7, progress=False)


def test_resume_mid_epoch_matches_uninterrupted(tmp_path, tiny_data, reference_run):
    from paper_repro.config import get_preset
    preset = get_preset("tiny").replace(checkpoint_every=4)
    run = tmp_path / "run"
    with pytest.raises(Killed):  # killed at step 7: last checkpoint at step 6 (epoch end)
        train(run, preset, tiny_data, seed=7, progress=False, callbacks=[KillAfter(7)])
    _, meta = _final_state(run)
    assert meta["global_step"] == 6
    with pytest.raises(Killed):  # killed again at step 10, after the step-8 checkpoint
        train(run, resume=True, progress=False, callbacks=[KillAfter(3)])
    assert _final_state(run)[1]["global_step"] == 8
    train(run, resume=True, progress=False)
    got, meta = _final_state(run)
    want, _ = _final_state(reference_run)
    assert meta["global_step"] == 12
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)
    # the log was truncated at the checkpoint and continued: each step once
    steps = [int(r.split(",")[0]) for r in (run / "log.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 13))
    # and the rows kept by the truncation end as the new ones do (one line ending in the file)
    assert b"\r" not in (run / "log.csv").read_bytes()


def test_half_written_checkpoint_is_ignored(tmp_path, tiny_data, reference_run):
    from paper_repro.config import get_preset
    preset = get_preset("tiny").replace(checkpoint_every=4)
    run = tmp_path / "run"
    with pytest.raises(Killed):
        train(run, preset, tiny_data, seed=7, progress=False, callbacks=[KillAfter(9)])
    # emulate a kill during the save of step 9: a temporary directory with a truncated file,
    # and a directory renamed without its meta.json
    good = runs.latest_checkpoint(run)
    tmp = run / "checkpoints" / ".tmp-killed"
    tmp.mkdir()
    (tmp / "state.npz").write_bytes((good / "state.npz").read_bytes()[:100])
    broken = run / "checkpoints" / "step-000000009"
    broken.mkdir()
    (broken / "state.npz").write_bytes(b"truncated")
    assert runs.latest_checkpoint(run) == good
    train(run, resume=True, progress=False)
    assert not tmp.exists()
    got, _ = _final_state(run)
    want, _ = _final_state(reference_run)
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)


def test_resume_extends_epochs(tmp_path, tiny_data, reference_run):
    from paper_repro.config import get_preset
    preset = get_preset("tiny").replace(checkpoint_every=4)
    run = train(tmp_path / "run", preset, tiny_data, seed=7, epochs=1, progress=False)
    train(run, resume=True, epochs=2, progress=False)
    got, _ = _final_state(run)
    want, _ = _final_state(reference_run)
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)


def _learning_rates(preset, state):
    """The two optimizers' learning rates stored in a checkpoint's state."""
    from paper_repro.gan.cosmogan import CosmoGAN
    paths = [v.path for v in CosmoGAN.from_preset(preset, seed=0).state_variables()]
    return [float(x) for x, p in zip(state, paths) if p.endswith("learning_rate")]


def test_annealed_epochs_run_at_the_lower_rate_and_resume_exactly(tmp_path, tiny_data, reference_run):
    from paper_repro.config import get_preset
    preset = get_preset("tiny").replace(checkpoint_every=4, anneal_epochs=1, anneal_factor=0.25)
    full = train(tmp_path / "full", preset, tiny_data, seed=7, progress=False)
    # epoch 1 is not annealed: the same weights as the constant-rate run's
    for x, y in zip(epoch_weights(full, 1), epoch_weights(reference_run, 1)):
        np.testing.assert_array_equal(x, y)
    state, _ = _final_state(full)
    want, _ = _final_state(reference_run)
    assert _learning_rates(preset, state) == pytest.approx([5e-5, 5e-5])
    assert _learning_rates(preset, want) == pytest.approx([2e-4, 2e-4])
    # epoch 2 at a quarter of the rate moved the generator less
    def moved(run):
        return sum(np.abs(b - a).sum() for a, b in zip(epoch_weights(run, 1), epoch_weights(run, 2)))
    assert moved(full) < 0.5 * moved(reference_run)
    # killed inside the annealed epoch and resumed: the same final state
    run = tmp_path / "run"
    with pytest.raises(Killed):
        train(run, preset, tiny_data, seed=7, progress=False, callbacks=[KillAfter(10)])
    assert _final_state(run)[1]["global_step"] == 8
    train(run, resume=True, progress=False)
    for x, y in zip(_final_state(run)[0], state):
        np.testing.assert_array_equal(x, y)


def test_non_finite_loss_stops_and_keeps_last_good(tmp_path, tiny_data, monkeypatch):
    from paper_repro.gan.cosmogan import CosmoGAN
    calls = {"n": 0}
    original = CosmoGAN.train_on_batch

    def poisoned(self, *a, **k):
        calls["n"] += 1
        logs = original(self, *a, **k)
        if calls["n"] == 8:
            logs = dict(logs, d_loss=float("nan"))
        return logs

    monkeypatch.setattr(CosmoGAN, "train_on_batch", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="non-finite loss at epoch 2 step 2.*step-000000006"):
        train(run, "tiny", tiny_data, seed=1, progress=False)
    assert runs.latest_checkpoint(run).name == "step-000000006"


def test_bad_training_inputs(tmp_path, tiny_data):
    with pytest.raises(PaperReproError, match="expected 64x64 maps, found 32x32"):
        train(tmp_path / "a", "cpu64", tiny_data, progress=False)
    with pytest.raises(PaperReproError, match="no such file"):
        train(tmp_path / "b", "tiny", tmp_path / "missing.npy", progress=False)
    few = tmp_path / "few.npy"
    np.save(few, np.zeros((3, 32, 32), np.float32))
    with pytest.raises(PaperReproError, match="fewer than one batch"):
        train(tmp_path / "c", "tiny", few, progress=False)
    with pytest.raises(PaperReproError, match="not a paper_repro run|no such run"):
        train(tmp_path / "d", resume=True, progress=False)
    run = train(tmp_path / "e", "tiny", tiny_data, seed=1, epochs=1, progress=False)
    with pytest.raises(PaperReproError, match="already holds a run"):
        train(run, "tiny", tiny_data, progress=False)


def test_generation_is_seeded_and_batch_independent(reference_run, tmp_path):
    a = runs.generate_maps(reference_run, 40, seed=3, batch_size=16)
    b = runs.generate_maps(reference_run, 40, seed=3, batch_size=40)
    c = runs.generate_maps(reference_run, 40, seed=4)
    assert a.shape == (40, 32, 32) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert not np.allclose(a, c)
    # outputs are in convergence units: tanh output divided by data_scale (2.5)
    assert np.abs(a).max() < 1 / 2.5
    out = runs.generate_to_file(reference_run, tmp_path / "g.npy", n=40, seed=3, batch_size=7)
    np.testing.assert_array_equal(np.load(out), runs.generate_maps(reference_run, 40, seed=3, batch_size=7))
    assert [p.name for p in tmp_path.iterdir()] == ["g.npy"]


def test_generator_selection_by_checkpoint(reference_run):
    e1 = runs.generate_maps(reference_run, 4, seed=0, checkpoint=1)
    e2 = runs.generate_maps(reference_run, 4, seed=0, checkpoint=2)
    last = runs.generate_maps(reference_run, 4, seed=0, checkpoint="last")
    np.testing.assert_allclose(e2, last, atol=1e-7)
    assert not np.allclose(e1, e2)
    with pytest.raises(PaperReproError, match="no such generator.*available epochs: 0001, 0002"):
        runs.generator_path(reference_run, 9)


def test_saved_generator_has_recalibrated_batch_norm_and_training_state_does_not(reference_run):
    """bn_recalibration (tiny: 2 batches) changes the saved generator's moving statistics only."""
    from paper_repro.gan.cosmogan import CosmoGAN
    from paper_repro.gan.models import recalibrated_copy

    info = runs.read_run_info(reference_run)
    assert info.preset.training.bn_recalibration == 2
    state, _ = runs.load_checkpoint(runs.latest_checkpoint(reference_run))
    gan = CosmoGAN.from_preset(info.preset, seed=0)
    gan.set_state(state)
    saved, _ = runs.load_generator(reference_run, "last")
    raw = gan.generator
    for a, b in zip(raw.trainable_weights, saved.trainable_weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    expected = recalibrated_copy(raw, 2, info.preset.training.batch_size, seed=info.seed)
    for name in ("bn0", "bn1"):
        got = np.asarray(saved.get_layer(name).moving_mean)
        np.testing.assert_array_equal(got, np.asarray(expected.get_layer(name).moving_mean))
        assert not np.array_equal(got, np.asarray(raw.get_layer(name).moving_mean))


def test_symmetry_augment_applies_one_of_the_eight_square_symmetries_per_map():
    from paper_repro.gan.batches import symmetry_augment
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((64, 8, 8, 1)).astype(np.float32)
    out = symmetry_augment(batch, seed=3, epoch=2, step=5)
    np.testing.assert_array_equal(out, symmetry_augment(batch, seed=3, epoch=2, step=5))
    assert not np.array_equal(out, symmetry_augment(batch, seed=3, epoch=2, step=6))
    seen = set()
    for x, y in zip(batch[..., 0], out[..., 0]):
        images = [np.rot90(x, k) for k in range(4)]
        images += [im[:, ::-1] for im in images]
        hits = [g for g, im in enumerate(images) if np.array_equal(im, y)]
        assert len(hits) == 1          # exactly one symmetry maps x to y (x has no symmetry itself)
        seen.add(hits[0])
    assert seen == set(range(8))       # 64 draws see every one of the 8
    # a symmetric field's statistics are unchanged: same multiset of pixel values per map
    np.testing.assert_array_equal(np.sort(out.reshape(64, -1), axis=1), np.sort(batch.reshape(64, -1), axis=1))


def test_augmented_epochs_change_training_and_resume_exactly(tmp_path, tiny_data, reference_run):
    from paper_repro.config import get_preset
    preset = get_preset("tiny").replace(checkpoint_every=4, augment_from_epoch=2)
    full = train(tmp_path / "full", preset, tiny_data, seed=7, progress=False)
    # epoch 1 is not augmented: the same weights as the reference run's; epoch 2 differs
    for x, y in zip(epoch_weights(full, 1), epoch_weights(reference_run, 1)):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(epoch_weights(full, 2), epoch_weights(reference_run, 2)))
    run = tmp_path / "run"
    with pytest.raises(Killed):
        train(run, preset, tiny_data, seed=7, progress=False, callbacks=[KillAfter(10)])
    train(run, resume=True, progress=False)
    for x, y in zip(_final_state(run)[0], _final_state(full)[0]):
        np.testing.assert_array_equal(x, y)


def test_augment_from_epoch_is_validated():
    from paper_repro.config import TrainingConfig
    with pytest.raises(PaperReproError, match="augment_from_epoch"):
        TrainingConfig(augment_from_epoch=-1)
    t = TrainingConfig(augment_from_epoch=3)
    assert [t.augments(e) for e in range(4)] == [False, False, True, True]
    assert not any(TrainingConfig().augments(e) for e in range(4))


def test_discriminator_overfitting_diagnostic(reference_run, tiny_data, tmp_path, capsys):
    from paper_repro.cli import main
    from paper_repro.gan.diagnostics import discriminator_overfitting
    maps = np.load(tiny_data)
    r = discriminator_overfitting(reference_run, tiny_data, n=len(maps), seed=1)
    assert set(r) == {"training", "training, rotated 90 deg", "held-out", "generated"}
    # the held-out set is the training set itself, whole: the verdicts are identical
    assert r["training"] == r["held-out"]
    assert r["training"]["n"] == len(maps) and r["generated"]["n"] == len(maps)
    assert all(0.0 <= v["real_fraction"] <= 1.0 and np.isfinite(v["mean_logit"]) for v in r.values())
    assert discriminator_overfitting(reference_run, tiny_data, n=len(maps), seed=1) == r   # seeded
    # a different held-out set gives different verdicts
    other = tmp_path / "other.npy"
    np.save(other, maps[:, ::-1, :] * 1.5)
    assert discriminator_overfitting(reference_run, other, n=len(maps), seed=1)["held-out"] != r["held-out"]
    assert main(["diagnose", "--run", str(reference_run), "--heldout", str(tiny_data), "--n", "16"]) == 0
    out = capsys.readouterr().out
    assert "training minus held-out" in out and "rotated" in out
    # bad input: no development set recorded and none given; a run without checkpoints
    assert main(["diagnose", "--run", str(reference_run)]) == 2
    assert "development set" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text((reference_run / "config.json").read_text())
    assert main(["diagnose", "--run", str(tmp_path / "empty"), "--heldout", str(tiny_data)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_discriminator_monitor_is_logged_each_epoch_and_resumes_exactly(tmp_path, tiny_data, reference_run):
    from paper_repro.config import get_preset
    dev = tmp_path / "dev.npy"
    np.save(dev, smooth_maps(40, 32, seed=1))
    preset = get_preset("tiny").replace(checkpoint_every=4)
    full = train(tmp_path / "full", preset, tiny_data, seed=7, development=dev, progress=False)
    rows = list(csv.DictReader(open(full / "discriminator.csv")))
    assert [(r["global_step"], r["epoch"]) for r in rows] == [("6", "1"), ("12", "2")]
    for r in rows:
        tr, de = float(r["training_real"]), float(r["development_real"])
        assert 0 <= tr <= 1 and 0 <= de <= 1
        assert round(tr * 96) == pytest.approx(tr * 96) and round(de * 40) == pytest.approx(de * 40)
        assert float(r["gap"]) == pytest.approx(tr - de, abs=1e-5)
    # the monitor changes no training state: the same weights as the run without a development set
    for x, y in zip(_final_state(full)[0], _final_state(reference_run)[0]):
        np.testing.assert_array_equal(x, y)
    no_dev = list(csv.DictReader(open(reference_run / "discriminator.csv")))
    assert len(no_dev) == 2 and all(np.isnan(float(r["development_real"])) for r in no_dev)
    assert [r["training_real"] for r in no_dev] == [r["training_real"] for r in rows]
    # killed mid-epoch 2 and resumed: the same log as the straight run
    run = tmp_path / "run"
    with pytest.raises(Killed):
        train(run, preset, tiny_data, seed=7, development=dev, progress=False, callbacks=[KillAfter(10)])
    train(run, resume=True, progress=False)
    assert (run / "discriminator.csv").read_text() == (full / "discriminator.csv").read_text()
    off = train(tmp_path / "off", preset.replace(monitor_maps=0, epochs=1), tiny_data, seed=7, progress=False)
    assert not (off / "discriminator.csv").exists()


def test_discriminator_rate_factor(tmp_path, tiny_data):
    """``d_lr_factor`` scales the discriminator's rate only, annealing included."""
    from paper_repro.config import get_preset
    from paper_repro.gan.cosmogan import CosmoGAN

    def first_step(factor):
        preset = get_preset("tiny").replace(checkpoint_every=1, d_lr_factor=factor)
        with pytest.raises(Killed):
            train(tmp_path / f"f{factor}", preset, tiny_data, seed=7, progress=False, callbacks=[KillAfter(2)])
        state, meta = _final_state(tmp_path / f"f{factor}")
        assert meta["global_step"] == 1
        gan = CosmoGAN.from_preset(preset, seed=7)
        gan.set_state(state)
        return preset, state, gan

    start = CosmoGAN.from_preset(get_preset("tiny"), seed=7)
    p1, s1, one = first_step(1.0)
    p3, s3, three = first_step(3.0)
    assert _learning_rates(p1, s1) == pytest.approx([2e-4, 2e-4])
    assert _learning_rates(p3, s3) == pytest.approx([6e-4, 2e-4])     # discriminator, generator
    # the first step starts from the same discriminator, so the generator moves the same
    for a, b in zip(one.generator.trainable_weights, three.generator.trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-9)
    # Adam's first step moves each weight by about its rate: 3 times as far
    d1 = np.concatenate([np.abs(a.numpy() - s.numpy()).ravel() for a, s in
                         zip(one.discriminator.trainable_weights, start.discriminator.trainable_weights)])
    d3 = np.concatenate([np.abs(a.numpy() - s.numpy()).ravel() for a, s in
                         zip(three.discriminator.trainable_weights, start.discriminator.trainable_weights)])
    moved = d1 > 1e-5
    assert np.median(d3[moved] / d1[moved]) == pytest.approx(3.0, rel=1e-3)
    # annealed epochs keep the factor
    annealed = get_preset("tiny").replace(anneal_epochs=2, anneal_factor=0.1, d_lr_factor=4.0)
    run = train(tmp_path / "annealed", annealed, tiny_data, seed=7, progress=False, epochs=1)
    assert _learning_rates(annealed, _final_state(run)[0]) == pytest.approx([8e-5, 2e-5])
    with pytest.raises(PaperReproError, match="d_lr_factor must be a finite number > 0"):
        get_preset("tiny").replace(d_lr_factor=0.0)


def test_discriminator_rate_factor_from_an_epoch(tmp_path, tiny_data, reference_run):
    """``d_lr_factor_from_epoch``: the paper's rates before it, the factor from it on; a run
    continued at that epoch boundary with the factor switched on is the same straight run."""
    from paper_repro.config import get_preset
    base = get_preset("tiny").replace(checkpoint_every=4)
    late = base.replace(d_lr_factor=4.0, d_lr_factor_from_epoch=2)
    assert [late.training.d_learning_rate_at(e) for e in (0, 1)] == pytest.approx([2e-4, 8e-4])
    straight = train(tmp_path / "straight", late, tiny_data, seed=7, progress=False)
    assert _learning_rates(late, _final_state(straight)[0]) == pytest.approx([8e-4, 2e-4])
    # epoch 1 ran at the paper's rates: the same generator as the run without the factor
    for x, y in zip(epoch_weights(straight, 1), epoch_weights(reference_run, 1)):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in
                   zip(epoch_weights(straight, 2), epoch_weights(reference_run, 2)))
    # the factor switched on by a resume at the end of epoch 1: bit-identical to the straight run
    cont = tmp_path / "continued"
    train(cont, base, tiny_data, seed=7, progress=False, epochs=1)
    info = runs.read_run_info(cont)
    runs.write_run_info(cont, runs.RunInfo(late, info.data, info.development, info.seed))
    train(cont, resume=True, progress=False)
    for x, y in zip(_final_state(cont)[0], _final_state(straight)[0]):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(PaperReproError, match="d_lr_factor_from_epoch must be an epoch >= 1"):
        base.replace(d_lr_factor_from_epoch=0)


def test_the_caller_gives_the_selection_scorer_and_training_imports_no_evaluation(tmp_path, tiny_data):
    import subprocess
    import sys

    from paper_repro.config import get_preset
    from tests.helpers import weights_scorer
    dev = tmp_path / "dev.npy"
    np.save(dev, smooth_maps(32, 32, seed=1))
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=3)
    made = []

    def factory(p, development):
        made.append((p.name, development))
        return weights_scorer

    run = train(tmp_path / "run", preset, tiny_data, seed=2, development=dev, scorer_factory=factory,
                progress=False)
    assert made == [("tiny", str(dev.resolve()))]
    rows = (run / "selection.csv").read_text().splitlines()
    assert rows[0] == "global_step,epoch,score" and [r.split(",")[0] for r in rows[1:]] == ["9", "12"]
    # without a factory a development set only feeds the discriminator monitor: no selection
    bare = train(tmp_path / "bare", preset, tiny_data, seed=2, development=dev, progress=False)
    assert not (bare / "selection.csv").exists() and not (bare / "best").exists()
    assert (bare / "discriminator.csv").exists()
    code = ("import sys, paper_repro.gan.training, paper_repro.gan.diagnostics; "
            "print(sorted(m for m in sys.modules if m.startswith('paper_repro.evaluation')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_run_that_used_a_retired_feature_is_refused_in_one_line(tmp_path, reference_run):
    run = tmp_path / "old"
    run.mkdir()
    cfg = json.loads((reference_run / "config.json").read_text())
    cfg["preset"]["training"].update(minkowski_weight=0.5, minkowski_from_epoch=2, minkowski_decay=0.98)
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(PaperReproError) as err:
        train(run, resume=True, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{run / 'config.json'}: this run used the Minkowski loss term")
    assert msg.endswith("it can be resumed with commit 3ae79eb")
    # off, the retired fields are dropped and the run loads as before
    cfg["preset"]["training"].update(minkowski_weight=0.0, spectral_decay=0.0, confirmation_maps=4096)
    (run / "config.json").write_text(json.dumps(cfg))
    assert runs.read_run_info(run).preset == runs.read_run_info(reference_run).preset
