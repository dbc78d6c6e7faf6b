"""The adversarial train_step: label swap semantics, metrics, GAN dynamics."""
import numpy as np
import pytest
from scipy import stats

from tests.helpers import smooth_maps
from paper_repro.gan.cosmogan import CosmoGAN


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
