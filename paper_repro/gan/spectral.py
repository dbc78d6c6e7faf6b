"""Spectral regularisation of the generator: match the 2D Fourier power of the real maps.

Generators built of stride-2 transposed convolutions leave a fixed pattern on their upsampling grid,
seen as excess power at single Fourier modes (Odena et al. 2016; Durall et al. 2020, CVPR, who add
a spectral term to the generator's loss). On the cpu64 runs here it is the one failure that long
training does not remove (docs/history.md: modes such as (16, 32) at 3x the simulator's power). This
term is not in the paper (whose generator loss is purely adversarial), so it is off (weight 0) in
every preset that reproduces the paper.

The term, per training step: the mean over all 2D Fourier modes but k = 0 of the squared
difference between log(batch-mean |FFT(G(z))|^2) and its expectation for real batches of the same
size, estimated once from the training set (:func:`target_log_power`). Comparing like estimators
(log of a batch mean, for both) leaves no bias from log's curvature. :class:`SpectralTerm` is the
loss term :class:`~paper_repro.gan.cosmogan.CosmoGAN` adds to G's loss.
"""
from __future__ import annotations

import keras
import numpy as np

from ..errors import PaperReproError
from .batches import read_batch, symmetry_augment

#: added to the power before its log (map units^2 times H * W)
EPS = 1e-12


def batch_log_power(maps: np.ndarray) -> np.ndarray:
    """log of the batch-mean power |rfft2|^2 of maps (B, H, W) or (B, H, W, 1): an (H, W // 2 + 1)
    array; unnormalised FFT, so it is in (map units)^2 times H * W."""
    x = np.asarray(maps, np.float64)
    if x.ndim == 4:
        x = x[..., 0]
    if x.ndim != 3 or len(x) == 0:
        raise PaperReproError(f"batch_log_power needs maps (B, H, W), got shape {np.shape(maps)}")
    p = np.abs(np.fft.rfft2(x)) ** 2
    return np.log(p.mean(axis=0) + EPS)


def target_log_power(maps: np.ndarray, batch_size: int, *, scale: float = 1.0, seed: int = 0,
                     n_batches: int = 1600, augment: bool = True) -> np.ndarray:
    """E[log(batch-mean power)] of real batches of ``batch_size`` maps (times ``scale``, as they enter
    the discriminator), averaged over ``n_batches`` batches drawn from ``maps`` (N, H, W) with the
    seed (with ``augment``, each map turned by a random symmetry of the square, as in training)."""
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
        lp = batch_log_power(batch)
        acc = lp if acc is None else acc + lp
    return (acc / n_batches).astype(np.float32)


def spectral_loss(fake, target):
    """The spectral term for a generated batch ``fake`` (B, H, W, 1), a backend tensor, against
    ``target`` (H, W // 2 + 1): mean over modes k != 0 of (log batch-mean power - target)^2.
    Written with ``keras.ops`` (a real FFT along W, then a complex FFT along H), so it is the same
    term on every Keras backend."""
    from keras import ops

    x = ops.cast(fake[..., 0], "float32")
    re, im = ops.rfft(x)                                      # along W: (B, H, W // 2 + 1)
    re, im = ops.fft((ops.swapaxes(re, 1, 2), ops.swapaxes(im, 1, 2)))   # along H
    p = ops.swapaxes(ops.mean(ops.square(re) + ops.square(im), axis=0), 0, 1)
    d = ops.log(p + EPS) - target
    mask = np.ones(tuple(target.shape), np.float32)
    mask[0, 0] = 0.0
    return ops.sum(ops.square(d) * mask) / float(mask.sum())


class SpectralTerm:
    """The spectral term as a loss term of G (``CosmoGAN(loss_terms=[...])``): its value for a
    generated batch is :func:`spectral_loss` against the real maps' ``target``; G's loss adds
    ``weight`` times it. It keeps no state of its own, so a checkpoint holds nothing extra."""

    name = "spectral"

    def __init__(self, target: np.ndarray, image_size: int, weight: float = 0.0):
        expect = (image_size, image_size // 2 + 1)
        if tuple(np.shape(target)) != expect:
            raise PaperReproError(f"spectral target has shape {np.shape(target)}, "
                                  f"{image_size}^2 maps need {expect}")
        self.target = keras.ops.convert_to_tensor(np.asarray(target, np.float32))
        self.weight = keras.Variable(float(weight), trainable=False, dtype="float32", name="spectral_weight")
        self.state_variables: list = []

    @classmethod
    def from_maps(cls, maps: np.ndarray, training, seed: int) -> "SpectralTerm":
        """The term for training on ``maps`` (N, H, W) with a :class:`~paper_repro.config.TrainingConfig`:
        its target from batches as the discriminator sees them (scaled, turned if augmented)."""
        target = target_log_power(maps, training.batch_size, scale=training.data_scale, seed=seed,
                                  augment=bool(training.augment_from_epoch))
        return cls(target, int(np.shape(maps)[1]))

    def __call__(self, fake):
        return spectral_loss(fake, self.target)
