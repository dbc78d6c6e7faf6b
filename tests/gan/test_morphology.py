"""The Minkowski term (paper_repro.gan.morphology): the smooth estimator, its target, loss and training."""
import numpy as np
import pytest
import tensorflow as tf

from paper_repro.gan import morphology

from paper_repro.gan import runs
from paper_repro.config import get_preset
from paper_repro.errors import PaperReproError
from paper_repro.stats.summaries import minkowski_functionals
from paper_repro.gan.training import _StopForTest, train

from tests.helpers import smooth_maps


def test_smooth_functionals_follow_the_certified_ones():
    """The smooth V0, V1, V2 are the certified ones (LensTools' estimator) with V1 and V2 divided by
    the map's sigma: they track them per map, and they move with them when the field's shape changes.
    They do not depend on the map's amplitude."""
    maps = smooth_maps(300, 32, seed=3)
    soft = np.asarray(morphology.soft_minkowski(maps))
    assert soft.shape == (300, morphology.N_COMPONENTS) == (300, 57)
    np.testing.assert_allclose(np.asarray(morphology.soft_minkowski(7.0 * maps)), soft, rtol=1e-4, atol=1e-6)
    assert np.all(np.diff(soft[:, :19], axis=1) < 0)         # area above a rising threshold falls
    sd = maps.std(axis=(1, 2))[:, None]
    _, h0, h1, h2 = minkowski_functionals(maps)
    hard = (h0, h1 / sd, h2 / sd)
    for k in range(3):
        for i in range(0, 19, 3):
            assert np.corrcoef(hard[k][:, i], soft[:, 19 * k + i])[0, 1] > 0.85, (k, i)
    for a in (0.5, 1.2):                                       # zero-mean log-normal fields: other shapes
        e = np.exp(a * maps / maps.std())
        skewed = (e - e.mean()).astype(np.float32)
        sd2 = skewed.std(axis=(1, 2))[:, None]
        _, k0, k1, k2 = minkowski_functionals(skewed)
        soft2 = np.asarray(morphology.soft_minkowski(skewed))
        for k, other in enumerate((k0, k1 / sd2, k2 / sd2)):
            cols = slice(19 * k, 19 * (k + 1))
            d_hard = other.mean(0) - hard[k].mean(0)
            d_soft = soft2[:, cols].mean(0) - soft[:, cols].mean(0)
            assert np.corrcoef(d_hard, d_soft)[0, 1] > 0.9, (a, k)


def test_target_is_reproducible_and_checked():
    maps = smooth_maps(200, 32, seed=4)
    m1, s1 = morphology.minkowski_target(maps, n_maps=100, seed=1)
    m2, s2 = morphology.minkowski_target(maps, n_maps=100, seed=1)
    m3, _ = morphology.minkowski_target(maps, n_maps=100, seed=2)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(m1, m3) and m1.shape == s1.shape == (57,) and np.all(s1 > 0)
    bad = maps.copy()
    bad[5, 3, 3] = np.nan
    with pytest.raises(PaperReproError, match="NaN"):
        morphology.minkowski_target(bad)
    with pytest.raises(PaperReproError, match="at least 2"):
        morphology.minkowski_target(maps[:1])


def test_averaged_loss_has_the_objectives_gradient_and_vanishes_when_matched():
    """With the running mean equal to this batch's mean, the surrogate's gradient is that of the
    squared standardised difference of the batch means; matched, value and gradient are 0."""
    maps = smooth_maps(16, 32, seed=5)[..., None]
    target_mean, target_sd = morphology.minkowski_target(smooth_maps(64, 32, seed=6), seed=0)
    x = tf.Variable(maps)
    with tf.GradientTape(persistent=True) as tape:
        m = morphology.batch_means(x)
        surrogate, value = morphology.averaged_minkowski_loss(x, target_mean, target_sd, tf.stop_gradient(m))
        direct = tf.reduce_mean(tf.square((m - target_mean) / target_sd))
    np.testing.assert_allclose(float(value), float(direct), rtol=1e-5)
    g1, g2 = tape.gradient(surrogate, x).numpy(), tape.gradient(direct, x).numpy()
    np.testing.assert_allclose(g1, g2, rtol=1e-3, atol=1e-6 * np.abs(g2).max())
    assert np.abs(g1).max() > 0
    with tf.GradientTape() as tape:
        s, v = morphology.averaged_minkowski_loss(x, m.numpy(), target_sd, m)
    assert float(v) == pytest.approx(0.0, abs=1e-12)
    assert np.abs(tape.gradient(s, x).numpy()).max() < 1e-6


def test_gradient_step_lowers_the_objective():
    """One small step of the batch along the surrogate's gradient moves its means toward the target."""
    maps = smooth_maps(16, 32, seed=7)[..., None]
    target_mean, target_sd = morphology.minkowski_target(smooth_maps(200, 32, seed=8, amplitude=0.05) ** 3
                                                         * 400, seed=0)   # a skewed field: other shapes
    x = tf.Variable(maps)
    values = []
    for _ in range(20):
        with tf.GradientTape() as tape:
            m = morphology.batch_means(x)
            s, v = morphology.averaged_minkowski_loss(x, target_mean, target_sd, m)
        values.append(float(v))
        g = tape.gradient(s, x)
        x.assign_sub(0.02 * g / (tf.reduce_max(tf.abs(g)) + 1e-12) * float(tf.math.reduce_std(x)))
    assert values[-1] < 0.7 * values[0]


def test_config_checks_and_schedule():
    t = get_preset("tiny").replace(minkowski_weight=4.0, minkowski_from_epoch=3).training
    assert [t.minkowski_weight_at(e) for e in range(4)] == [0.0, 0.0, 4.0, 4.0]
    assert get_preset("paper").training.minkowski_weight == 0 == get_preset("cpu64").training.minkowski_weight
    for bad in ({"minkowski_weight": -1.0}, {"minkowski_weight": float("nan")},
                {"minkowski_from_epoch": 0}, {"minkowski_decay": 1.0}, {"minkowski_decay": 0.0}):
        with pytest.raises(PaperReproError, match="minkowski_"):
            get_preset("tiny").replace(**bad)


def test_training_with_the_term_logs_it_keeps_its_mean_and_resumes_exactly(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(checkpoint_every=4, minkowski_weight=5.0, minkowski_from_epoch=2,
                                        minkowski_decay=0.9)
    full = train(tmp_path / "full", preset, tiny_data, seed=7, progress=False)
    rows = [r.split(",") for r in (full / "minkowski.csv").read_text().splitlines()]
    assert rows[0] == ["global_step", "epoch", "weight", "minkowski"] and len(rows) == 1 + 6
    assert {r[1] for r in rows[1:]} == {"2"} and all(float(r[3]) > 0 for r in rows[1:])
    state, _ = runs.load_checkpoint(runs.latest_checkpoint(full))
    np.testing.assert_allclose(float(state[-1]), 1 - 0.9 ** 6, rtol=1e-5)
    assert state[-2].shape == (57,)
    plain = train(tmp_path / "plain", get_preset("tiny").replace(checkpoint_every=4), tiny_data, seed=7,
                  progress=False)
    a, _ = runs.load_checkpoint(runs.latest_checkpoint(plain))
    assert any(not np.array_equal(x, y) for x, y in zip(a[:4], state[:4]))   # the term changed G
    run = tmp_path / "run"
    with pytest.raises(_StopForTest):
        train(run, preset, tiny_data, seed=7, progress=False, _stop_after=10)
    train(run, resume=True, progress=False)
    b, _ = runs.load_checkpoint(runs.latest_checkpoint(run))
    for x, y in zip(b, state):
        np.testing.assert_array_equal(x, y)
    assert (run / "minkowski.csv").read_text() == (full / "minkowski.csv").read_text()
    # a run saved without the term continues with it (as runs/cpu64-minkowski): the mean starts empty
    short = train(tmp_path / "short", get_preset("tiny").replace(checkpoint_every=4), tiny_data, seed=7,
                  progress=False, epochs=1)
    train(short, resume=True, progress=False, epochs=2, minkowski_weight=5.0, minkowski_from_epoch=2)
    assert runs.read_run_info(short).preset.training.minkowski_weight == 5.0
    s, _ = runs.load_checkpoint(runs.latest_checkpoint(short))
    np.testing.assert_allclose(float(s[-1]), 1 - 0.98 ** 6, rtol=1e-5)
