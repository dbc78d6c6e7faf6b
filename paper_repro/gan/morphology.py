"""A Minkowski term for the generator's loss: match the mean Minkowski functionals of the real maps.

After the output calibration (``paper_repro.calibration``) the shipped model's second-order
statistics pass. What fails is non-Gaussian: the V2 (genus-like) means just below the mean
convergence (MODEL_CARD.md, Limits). V0, V1 and V2 count pixels, so they have no gradient. This
module computes a smooth form of the same estimator, and the generator's loss can match it.

The smooth form, per map: u = map / its standard deviation (the certification's thresholds are in
units of each map's sigma). The derivatives are central differences on the interior pixels. Each
threshold nu_i's bin is replaced by a Gaussian kernel of width ``KERNEL_WIDTH`` in u. Then V0_i is
the mean of sigmoid((u - nu_i) / width), V1_i the kernel-weighted mean of |grad u|, and V2_i the
kernel-weighted mean of (2 u_x u_y u_xy - u_x^2 u_yy - u_y^2 u_xx) / (|grad u|^2 + eps). These
are LensTools' integrands up to constant factors, on u rather than on the map: V1 and V2 are
LensTools' divided by the map's sigma, the functionals' shape free of the amplitude, which the pixel
and power-spectrum statistics already fix (for the shipped model the generated and simulated sigma
agree to 0.4%). The generated and the real maps go through the same function, so the factors and
the smoothing cancel.

The term is the averaged form of ``spectral.averaged_spectral_loss``: the mean over the 57
components of ((running mean of the generated batch means - real mean) / real per-map sd)^2. Its
gradient takes the running mean's factor and this batch's derivative. Not in the paper: off
(weight 0) in every preset that reproduces it.
"""
from __future__ import annotations

import numpy as np

from ..errors import PaperReproError
from ..stats.summaries import DEFAULT_MF_THRESHOLDS

#: threshold midpoints (units of each map's sigma): the certification's 19
NU = (0.5 * (DEFAULT_MF_THRESHOLDS[:-1] + DEFAULT_MF_THRESHOLDS[1:])).astype(np.float32)
#: Gaussian kernel width in u, half the certification's bin width of 0.2
KERNEL_WIDTH = 0.1
#: regulariser of |grad u|^2 in V2's integrand (u units per pixel, squared)
EPS = 1e-2
N_COMPONENTS = 3 * len(NU)


def soft_minkowski(maps):
    """(B, 57) smooth V0, V1, V2 at the 19 thresholds of maps (B, H, W) or (B, H, W, 1), a tensor."""
    import tensorflow as tf

    x = tf.convert_to_tensor(maps, tf.float32)
    if x.shape.rank == 4:
        x = x[..., 0]
    mean = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
    sd = tf.sqrt(tf.reduce_mean(tf.square(x - mean), axis=(1, 2), keepdims=True) + 1e-12)
    u = x / sd
    c = u[:, 1:-1, 1:-1]
    gx = 0.5 * (u[:, 1:-1, 2:] - u[:, 1:-1, :-2])
    gy = 0.5 * (u[:, 2:, 1:-1] - u[:, :-2, 1:-1])
    hxx = u[:, 1:-1, 2:] - 2.0 * c + u[:, 1:-1, :-2]
    hyy = u[:, 2:, 1:-1] - 2.0 * c + u[:, :-2, 1:-1]
    hxy = 0.25 * (u[:, 2:, 2:] - u[:, 2:, :-2] - u[:, :-2, 2:] + u[:, :-2, :-2])
    g2 = gx * gx + gy * gy
    i1 = tf.sqrt(g2 + 1e-12)
    i2 = (2.0 * gx * gy * hxy - gx * gx * hyy - gy * gy * hxx) / (g2 + EPS)
    nu = tf.constant(NU)[None, None, None, :]
    d = (c[..., None] - nu) / KERNEL_WIDTH
    kernel = tf.exp(-0.5 * tf.square(d)) / (np.sqrt(2.0 * np.pi) * KERNEL_WIDTH)
    v0 = tf.reduce_mean(tf.sigmoid(d), axis=(1, 2))
    v1 = tf.reduce_mean(kernel * i1[..., None], axis=(1, 2))
    v2 = tf.reduce_mean(kernel * i2[..., None], axis=(1, 2))
    return tf.concat([v0, v1, v2], axis=1)


def minkowski_target(maps: np.ndarray, *, n_maps: int = 8192, seed: int = 0,
                     batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(mean (57,), per-map sd (57,)) of :func:`soft_minkowski` over ``n_maps`` real maps (N, H, W)
    drawn without replacement with the seed (all of them if fewer)."""
    x = np.asarray(maps) if not isinstance(maps, np.ndarray) else maps
    if x.ndim != 3 or len(x) < 2:
        raise PaperReproError(f"the Minkowski target needs at least 2 maps (N, H, W), got shape {np.shape(maps)}")
    n = min(int(n_maps), len(x))
    idx = np.sort(np.random.default_rng([seed, 13]).choice(len(x), n, replace=False))
    acc = np.zeros(N_COMPONENTS)
    sq = np.zeros(N_COMPONENTS)
    for s in range(0, n, batch):
        block = np.asarray(x[idx[s:s + batch]], np.float32)
        if not np.isfinite(block).all():
            raise PaperReproError("the Minkowski target's maps hold NaN or inf")
        v = np.asarray(soft_minkowski(block), np.float64)
        acc += v.sum(axis=0)
        sq += (v ** 2).sum(axis=0)
    mean = acc / n
    sd = np.sqrt(np.maximum(sq / n - mean ** 2, 0.0))
    if not (sd > 0).all():
        raise PaperReproError("the real maps' Minkowski functionals do not vary; cannot scale the term")
    return mean.astype(np.float32), sd.astype(np.float32)


def averaged_minkowski_loss(fake, target_mean, target_sd, running_mean):
    """(surrogate, value) for a generated batch ``fake`` (B, H, W, 1). ``running_mean`` (57,) is the
    running mean of the generated batch means, this batch included, with no gradient. ``value`` is
    the objective, mean over components of ((running_mean - target) / sd)^2. The gradient of
    ``surrogate`` is that objective's, with d(mean) taken from this batch."""
    import tensorflow as tf

    m = tf.reduce_mean(soft_minkowski(fake), axis=0)
    t = tf.constant(np.asarray(target_mean, np.float32))
    inv = tf.constant(1.0 / np.asarray(target_sd, np.float32))
    d = (tf.stop_gradient(tf.cast(running_mean, tf.float32)) - t) * inv
    surrogate = tf.reduce_mean(tf.stop_gradient(2.0 * d * inv) * m)
    value = tf.reduce_mean(tf.square(d))
    return surrogate, value


def batch_means(fake):
    """Mean over the batch of :func:`soft_minkowski`, (57,)."""
    import tensorflow as tf
    return tf.reduce_mean(soft_minkowski(fake), axis=0)
