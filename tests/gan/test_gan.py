"""The adversarial train_step: label swap semantics, metrics, GAN dynamics."""
import numpy as np
import pytest
from scipy import stats

from paper_repro.gan.cosmogan import CosmoGAN
from tests.helpers import smooth_maps


def test_label_swap_is_whole_batch_at_the_configured_rate():
    gan = CosmoGAN.from_preset("tiny", seed=11)
    gan.flip_prob = 0.2
    draws = []
    for _ in range(2000):
        flipped, real, fake = (x.numpy() for x in gan.draw_labels(16))
        # the whole batch is swapped or none of it
        assert np.unique(real).size == 1 and np.unique(fake).size == 1
        assert real[0, 0] == 1 - flipped and fake[0, 0] == flipped
        draws.append(flipped)
    k = int(np.sum(draws))
    # binomial two-sided test at the 1e-4 level: the rate is 0.2
    assert stats.binomtest(k, 2000, 0.2).pvalue > 1e-4, k


def test_label_swap_rate_paper_value():
    gan = CosmoGAN.from_preset("tiny", seed=3)
    assert gan.flip_prob == 0.01
    k = sum(float(gan.draw_labels(4)[0]) for _ in range(5000))
    assert stats.binomtest(int(k), 5000, 0.01).pvalue > 1e-4, k


def _run(flip_prob, steps=25, seed=0):
    gan = CosmoGAN.from_preset("tiny", seed=seed)
    gan.flip_prob = flip_prob
    real = smooth_maps(16, 32, seed=1)[..., None] * 2.5
    hist = []
    for _ in range(steps):
        gan.reset_metrics()
        hist.append(gan.train_on_batch(real, return_dict=True))
    return hist


def test_discriminator_learns_then_game_moves():
    hist = _run(0.0, steps=40)
    d_loss = np.array([h["d_loss"] for h in hist])
    gap = np.array([h["d_real"] - h["d_fake"] for h in hist])
    g_loss = np.array([h["g_loss"] for h in hist])
    assert np.all(np.isfinite(d_loss)) and np.all(np.isfinite(g_loss))
    assert d_loss[0] == pytest.approx(2 * np.log(2), abs=0.15)   # D starts at chance
    assert d_loss[:20].min() < d_loss[0] - 0.2                      # then learns to tell them apart
    assert gap[:20].max() > 0.1                                     # D(real) > D(fake)
    assert g_loss[:20].max() > np.log(2) + 0.1                      # so G's loss rises
    assert all(h["flipped"] == 0 for h in hist)


def test_always_swapped_labels_teach_the_opposite():
    hist = _run(1.0, steps=15)
    gap = np.array([h["d_real"] - h["d_fake"] for h in hist])
    assert all(h["flipped"] == 1 for h in hist)
    assert gap[5:].mean() < -0.05  # D calls real maps fake


def test_state_round_trip_restores_everything():
    gan = CosmoGAN.from_preset("tiny", seed=2)
    real = smooth_maps(16, 32, seed=1)[..., None]
    gan.train_on_batch(real)
    state = gan.get_state()
    a = gan.train_on_batch(real, return_dict=True)
    gan.set_state(state)
    b = gan.train_on_batch(real, return_dict=True)
    assert a == b


class MeanPixelTerm:
    """A loss term with state, for the tests: (mean generated pixel - target)^2; counts its calls."""

    name = "mean_pixel"

    def __init__(self, target: float):
        import keras
        self.target = target
        self.weight = keras.Variable(0.0, trainable=False, dtype="float32", name="mean_pixel_weight")
        self.calls = keras.Variable(0.0, trainable=False, dtype="float32", name="mean_pixel_calls")
        self.state_variables = [self.calls]

    def __call__(self, fake):
        from keras import ops
        self.calls.assign_add(1.0)
        return ops.square(ops.mean(fake) - self.target)


def test_a_loss_term_at_weight_0_is_the_papers_step_and_on_it_pulls_and_keeps_its_state():
    from paper_repro.errors import PaperReproError
    real = smooth_maps(16, 32, seed=1)[..., None] * 2.5
    plain = CosmoGAN.from_preset("tiny", seed=5)
    term = MeanPixelTerm(0.5)
    gan = CosmoGAN.from_preset("tiny", seed=5, loss_terms=[term])
    assert gan.active_terms() == ()
    for _ in range(3):
        a, b = plain.train_on_batch(real, return_dict=True), gan.train_on_batch(real, return_dict=True)
        assert a == b                                    # no "mean_pixel" in the logs either
    for x, y in zip(plain.get_state(), gan.get_state()[:-1]):
        np.testing.assert_array_equal(x, y)
    assert float(term.calls.numpy()) == 0.0              # out of the traced step
    # on: the step is traced again with the term, which is logged and pulls the mean pixel up
    gan.set_term_weight("mean_pixel", 50.0)
    assert gan.active_terms() == ("mean_pixel",)
    logs = [gan.train_on_batch(real, return_dict=True) for _ in range(5)]
    for _ in range(5):
        plain.train_on_batch(real)
    assert all(log["mean_pixel"] > 0 for log in logs) and float(term.calls.numpy()) == 5.0
    z = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    pulled, free = (float(np.mean(g.generator(z, training=False))) for g in (gan, plain))
    assert pulled > free + 1e-4         # 5 Adam steps of 2e-4 moved the mean by about 4e-4 more
    # its state is the last of the checkpoint's arrays, and a restored state steps identically
    assert gan.state_variables()[-1] is term.calls
    state = gan.get_state()
    a = gan.train_on_batch(real, return_dict=True)
    gan.set_state(state)
    assert float(term.calls.numpy()) == 5.0 and gan.train_on_batch(real, return_dict=True) == a
    # off again: out of the step
    gan.set_term_weight("mean_pixel", 0.0)
    assert "mean_pixel" not in gan.train_on_batch(real, return_dict=True) and float(term.calls.numpy()) == 6.0
    with pytest.raises(PaperReproError, match="no loss term 'banana'"):
        gan.set_term_weight("banana", 1.0)
    with pytest.raises(PaperReproError, match="distinct names"):
        CosmoGAN.from_preset("tiny", seed=5, loss_terms=[MeanPixelTerm(0.0), MeanPixelTerm(1.0)])
