"""A loss term of the conditional generator on the one-point distribution at the batch's parameters.

The adversarial loss alone taught ``cpu64-cond`` how the map amplitude depends on (Omega_m, sigma_8)
but not how the non-Gaussianity does (its pixel skewness responds to sigma_8 at 0.18 of the
simulator's rate). This term compares, in one training batch, each generated map's pixel quantiles
with those of the real map whose parameters it was generated at, and asks that their difference
have zero mean and zero linear trend in the normalised parameters u:

    m_jk = (1/B) sum_b f_j(u_b) (q_k(fake_b) - q_k(real_b)),   f(u) = (1, u_1, ..., u_P),
    loss = mean_jk (m_jk / s_k)^2,

q_k the pixel value at quantile level ``LEVELS[k]`` of a map, s_k the real maps' spread of q_k in the
batch (held constant). Only training maps enter it; the certification's validation, auxiliary and
held-out maps stay unseen.

Raw quantiles (``standardise=False``) move mostly with the map amplitude, which changes several-fold
over the grid, so s_k is dominated by it and the shape error is a small part of the term: trained this
way, ``cpu64-pdf`` scaled one shape with sigma_8. With ``standardise=True`` each map's quantiles are
taken in units of its own pixel std about its own mean, (q_k - mean) / std, so the term sees the shape
of the distribution (skewness, tails) alone and leaves the amplitude to the adversarial loss.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

#: quantile levels of a map's pixels: dense in the tails, where the skewness and the peaks live
LEVELS = (0.005, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.995)


def map_quantiles(maps, levels=LEVELS):
    """(B, K) pixel values of each map (B, H, W[, 1]) at the quantile ``levels`` (the sorted
    pixel nearest below each level; differentiable through the sort)."""
    b = ops.shape(maps)[0]
    flat = ops.reshape(ops.cast(maps, "float32"), (b, -1))
    n = int(np.prod(maps.shape[1:]))
    index = np.minimum((np.asarray(levels) * n).astype(np.int32), n - 1)
    return ops.take(ops.sort(flat, axis=1), index, axis=1)


def standardised_quantiles(maps, levels=LEVELS):
    """(B, K) quantiles of each map in units of its own pixel std about its own mean (dimensionless):
    the shape of its one-point distribution without its amplitude."""
    b = ops.shape(maps)[0]
    flat = ops.reshape(ops.cast(maps, "float32"), (b, -1))
    mean, std = ops.mean(flat, axis=1, keepdims=True), ops.std(flat, axis=1, keepdims=True)
    return (map_quantiles(maps, levels) - mean) / (std + 1e-12)


def conditional_quantile_loss(real, fake, params, levels=LEVELS, *, standardise: bool = False):
    """The term's value (a scalar; see the module docstring) for real and generated batches (B, H, W[, 1])
    paired row by row at the normalised parameters ``params`` (B, P); ``standardise`` compares the maps'
    standardised quantiles (:func:`standardised_quantiles`) instead of their raw pixel values."""
    quantiles = standardised_quantiles if standardise else map_quantiles
    qr, qf = quantiles(real, levels), quantiles(fake, levels)
    u = ops.cast(params, "float32")
    f = ops.concatenate([ops.ones_like(u[:, :1]), u], axis=1)
    m = ops.matmul(ops.transpose(f), qf - qr) / ops.cast(ops.shape(u)[0], "float32")
    scale = ops.stop_gradient(ops.std(qr, axis=0)) + 1e-6
    return ops.mean(ops.square(m / scale))


class ConditionalPDFTerm:
    """The term as a loss term of the conditional GAN (``ConditionalCosmoGAN(loss_terms=[...])``): it is
    called with the step's real maps and parameters besides the generated batch (``conditional``),
    and G's loss adds ``weight`` times it (on standardised quantiles with ``standardise``). It keeps no
    state, so a checkpoint holds nothing extra."""

    name = "pdf"
    conditional = True

    def __init__(self, weight: float = 0.0, *, standardise: bool = False):
        self.weight = keras.Variable(float(weight), trainable=False, dtype="float32", name="pdf_weight")
        self.standardise = bool(standardise)
        self.state_variables = []

    def __call__(self, fake, *, real, params):
        return conditional_quantile_loss(real, fake, params, standardise=self.standardise)
