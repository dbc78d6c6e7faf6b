"""Spectral regularisation of the generator: match the 2D Fourier power of the real maps.

Generators built of stride-2 transposed convolutions leave a fixed pattern on their upsampling grid,
seen as excess power at single Fourier modes (Odena et al. 2016; Durall et al. 2020, CVPR, who add
a spectral term to the generator's loss). On the cpu64 runs here it is the one failure that long
training does not remove (MODEL_CARD.md: modes such as (16, 32) at 3x the simulator's power). This
term is not in the paper (whose generator loss is purely adversarial), so it is off (weight 0) in
every preset that reproduces the paper.

The term, per training step: the mean over all 2D Fourier modes but k = 0 of the squared
difference between log(batch-mean |FFT(G(z))|^2) and its expectation for real batches of the same
size, estimated once from the training set (``target_log_power``). Comparing like estimators (log of
a batch mean, for both) leaves no bias from log's curvature.

The averaged term (``spectral_decay`` > 0; :func:`averaged_spectral_loss`): a batch of 64 gives each
mode's power to about 12%, while the errors left after training are single modes 10-15% off, so the
batch term's gradient is mostly noise. Its averaged form aims at the population objective, the mean
over modes of (log mu_G - log mu_real)^2 with mu the mean power, and estimates mu_G in the
gradient's factor by a running (exponential, bias-corrected) mean over past batches, leaving only
d(batch power)/d(weights) to the batch: the same expected pull at the same weight, with far less
noise. Its target is log mu_real (``target_log_power(..., mean=True)``), which is above the batch
term's by about 1 / (2 B).
"""
from __future__ import annotations

import numpy as np

from ..errors import PaperReproError
from .batches import read_batch, symmetry_augment

_EPS = 1e-12


def batch_log_power(maps: np.ndarray) -> np.ndarray:
    """log of the batch-mean power |rfft2|^2 of maps (B, H, W) or (B, H, W, 1): an (H, W // 2 + 1)
    array; unnormalised FFT, so it is in (map units)^2 times H * W."""
    x = np.asarray(maps, np.float64)
    if x.ndim == 4:
        x = x[..., 0]
    if x.ndim != 3 or len(x) == 0:
        raise PaperReproError(f"batch_log_power needs maps (B, H, W), got shape {np.shape(maps)}")
    p = np.abs(np.fft.rfft2(x)) ** 2
    return np.log(p.mean(axis=0) + _EPS)


def target_log_power(maps: np.ndarray, batch_size: int, *, scale: float = 1.0, seed: int = 0,
                     n_batches: int = 1600, augment: bool = True, mean: bool = False) -> np.ndarray:
    """E[log(batch-mean power)] of real batches of ``batch_size`` maps (times ``scale``, as they enter
    the discriminator), averaged over ``n_batches`` batches drawn from ``maps`` (N, H, W) with the
    seed (with ``augment``, each map turned by a random symmetry of the square, as in training);
    with ``mean``, log of the mean power over the same batches instead (the averaged term's target)."""
    n = len(maps)
    if n < batch_size:
        raise PaperReproError(f"the spectral target needs at least one batch of {batch_size} maps, got {n}")
    if n_batches < 1:
        raise PaperReproError(f"n_batches must be >= 1, got {n_batches}")
    rng = np.random.default_rng([seed, 11])
    acc = None
    per_perm = n // batch_size
    perm = None
    for b in range(n_batches):
        if b % per_perm == 0:
            perm = rng.permutation(n)
        idx = perm[(b % per_perm) * batch_size:(b % per_perm + 1) * batch_size]
        batch = read_batch(maps, idx, scale)
        if augment:
            batch = symmetry_augment(batch, seed, 1_000_000 + b // per_perm, b % per_perm)
        lp = np.exp(batch_log_power(batch)) if mean else batch_log_power(batch)
        acc = lp if acc is None else acc + lp
    acc = acc / n_batches
    return (np.log(acc + _EPS) if mean else acc).astype(np.float32)


def spectral_loss(fake, target):
    """The spectral term for a generated batch ``fake`` (B, H, W, 1), a TensorFlow tensor, against
    ``target`` (H, W // 2 + 1): mean over modes k != 0 of (log batch-mean power - target)^2."""
    import tensorflow as tf

    p = _batch_power(fake)
    d = tf.math.log(p + _EPS) - target
    mask = np.ones(target.shape, np.float32)
    mask[0, 0] = 0.0
    return tf.reduce_sum(tf.square(d) * mask) / float(mask.sum())


def _batch_power(fake):
    import tensorflow as tf

    x = tf.cast(fake[..., 0], tf.float32)
    return tf.reduce_mean(tf.square(tf.abs(tf.signal.rfft2d(x))), axis=0)


def averaged_spectral_loss(fake, target, mean_power):
    """The averaged term for a generated batch ``fake`` (B, H, W, 1): (surrogate, value).

    ``mean_power`` (H, W // 2 + 1) is the running mean of the generated batch-mean power (this
    batch included, no gradient); ``target`` is log mu_real. ``value`` = mean over modes k != 0 of
    (log mean_power - target)^2, the objective, for the log; the gradient of ``surrogate`` is that
    objective's, with d mu_G taken from this batch's power."""
    import tensorflow as tf

    p = _batch_power(fake)
    mu = tf.stop_gradient(tf.cast(mean_power, tf.float32)) + _EPS
    d = tf.math.log(mu) - target
    mask = np.ones(target.shape, np.float32)
    mask[0, 0] = 0.0
    n = float(mask.sum())
    surrogate = tf.reduce_sum(tf.stop_gradient(2.0 * d / mu) * p * mask) / n
    value = tf.reduce_sum(tf.square(d) * mask) / n
    return surrogate, value
