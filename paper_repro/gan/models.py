"""The generator and discriminator of Tables 1 and 2 (Mustafa et al. 2019), as Keras models.

Channels-last: the generator maps z (latent_dim,) to maps (H, W, 1) through tanh; the discriminator
maps (H, W, 1) to one logit (the sigmoid lives in the loss). Every conv keeps its bias even before
batch norm, as the authors' code does; initialisers N(0, 0.02) for dense and transposed-conv kernels,
truncated normal (0.02) for conv kernels, zero biases.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

from ..config import ModelConfig, Preset, get_preset


def _model_config(preset: str | Preset | ModelConfig) -> ModelConfig:
    if isinstance(preset, ModelConfig):
        return preset
    return get_preset(preset).model


def _seed(seed: int | None, k: int) -> int | None:
    return None if seed is None else int(seed) * 101 + k


@keras.saving.register_keras_serializable(package="paper_repro", name="ConditionalAffine")
class ConditionalAffine(layers.Layer):
    """[x (B, H, W, C), u (B, P)] -> x * (1 + u A) + u B: a per-map scale and shift of each channel,
    linear in the normalised parameters u (conditional batch norm, de Vries et al. 2017; FiLM, Perez
    et al. 2018). A and B (P, C) start at zero, so the layer starts as the identity."""

    def build(self, input_shape):
        (*_, channels), (_, n_params) = input_shape
        self.scale = self.add_weight(name="scale", shape=(n_params, channels), initializer="zeros")
        self.shift = self.add_weight(name="shift", shape=(n_params, channels), initializer="zeros")

    def call(self, inputs):
        x, u = inputs
        u = keras.ops.cast(u, x.dtype)
        gain = 1.0 + keras.ops.matmul(u, keras.ops.cast(self.scale, x.dtype))
        offset = keras.ops.matmul(u, keras.ops.cast(self.shift, x.dtype))
        return x * gain[:, None, None, :] + offset[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def build_generator(preset: str | Preset | ModelConfig = "paper", seed: int | None = None,
                    n_params: int = 0, film: bool = False) -> keras.Model:
    """Table 1: Dense -> reshape -> [BN, ReLU, ConvT 5x5/2] x 4 -> tanh, z (latent,) -> (H, W, 1).

    ``n_params`` > 0: a conditional generator (:mod:`paper_repro.gan.conditional`) with inputs
    [z, params], the (normalised) parameters concatenated to z before the dense layer; ``film``: and
    every batch norm followed by a :class:`ConditionalAffine` of the parameters (``film0``, ...)."""
    if film and not n_params:
        raise ValueError("film conditioning needs parameters (n_params > 0)")
    cfg = _model_config(preset)
    s, f0 = cfg.start_size, cfg.base_filters * 2 ** (cfg.n_strided - 1)

    def normal(k):
        return keras.initializers.RandomNormal(stddev=cfg.init_stddev, seed=_seed(seed, k))

    def bn(name):
        return layers.BatchNormalization(momentum=cfg.bn_momentum, epsilon=cfg.bn_epsilon, name=name)

    z = keras.Input((cfg.latent_dim,), name="z")
    inputs, x = z, z
    if n_params:
        params = keras.Input((n_params,), name="params")
        inputs, x = [z, params], layers.Concatenate(name="z_params")([z, params])
    x = layers.Dense(s * s * f0, kernel_initializer=normal(0), bias_initializer="zeros", name="dense")(x)
    x = layers.Reshape((s, s, f0), name="reshape")(x)
    x = bn("bn0")(x)
    if film:
        x = ConditionalAffine(name="film0")([x, params])
    x = layers.ReLU(name="relu0")(x)
    for i in range(1, cfg.n_strided):
        x = layers.Conv2DTranspose(f0 // 2 ** i, cfg.kernel_size, strides=2, padding="same",
                                   kernel_initializer=normal(i), bias_initializer="zeros",
                                   name=f"deconv{i}")(x)
        x = bn(f"bn{i}")(x)
        if film:
            x = ConditionalAffine(name=f"film{i}")([x, params])
        x = layers.ReLU(name=f"relu{i}")(x)
    x = layers.Conv2DTranspose(1, cfg.kernel_size, strides=2, padding="same",
                               kernel_initializer=normal(cfg.n_strided), bias_initializer="zeros",
                               name=f"deconv{cfg.n_strided}")(x)
    out = layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return keras.Model(inputs, out, name="generator")


def build_discriminator(preset: str | Preset | ModelConfig = "paper", seed: int | None = None,
                        n_params: int = 0) -> keras.Model:
    """Table 2: Conv 5x5/2 + LReLU, [Conv 5x5/2 + BN + LReLU] x 3, flatten, dense -> logit.

    ``n_params`` > 0: a projection discriminator (Miyato & Koyama 2018) with inputs [map, params]:
    logit + <V params, features>, V a bias-free dense map of the (normalised) parameters to the
    flattened features (:mod:`paper_repro.gan.conditional`)."""
    cfg = _model_config(preset)

    def tnormal(k):
        return keras.initializers.TruncatedNormal(stddev=cfg.init_stddev, seed=_seed(seed, 50 + k))

    x_in = keras.Input((cfg.image_size, cfg.image_size, 1), name="map")
    x = x_in
    for i in range(cfg.n_strided):
        x = layers.Conv2D(cfg.base_filters * 2 ** i, cfg.kernel_size, strides=2, padding="same",
                          kernel_initializer=tnormal(i), bias_initializer="zeros", name=f"conv{i}")(x)
        if i > 0:
            x = layers.BatchNormalization(momentum=cfg.bn_momentum, epsilon=cfg.bn_epsilon,
                                          name=f"bn{i}")(x)
        x = layers.LeakyReLU(negative_slope=cfg.leaky_slope, name=f"lrelu{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    logit = layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(
        stddev=cfg.init_stddev, seed=_seed(seed, 99)), bias_initializer="zeros",
        name="logit", dtype="float32")(x)
    if not n_params:
        return keras.Model(x_in, logit, name="discriminator")
    params = keras.Input((n_params,), name="params")
    embed = layers.Dense(int(x.shape[-1]), use_bias=False, kernel_initializer=keras.initializers.RandomNormal(
        stddev=cfg.init_stddev, seed=_seed(seed, 98)), name="embed")(params)
    projection = layers.Dot(axes=1, name="projection", dtype="float32")([x, embed])
    logit = layers.Add(name="logit_projected", dtype="float32")([logit, projection])
    return keras.Model([x_in, params], logit, name="discriminator")


def recalibrate_batch_norm(model: keras.Model, batches: int = 100, batch_size: int = 64,
                           seed: int = 0, params: np.ndarray | None = None) -> keras.Model:
    """Set every batch norm's moving mean and variance to its batch statistics averaged over
    ``batches`` training-mode passes of seeded N(0, 1) latents ("precise BN", Wu & Johnson 2021).

    Training normalises each layer by the statistics of the current batch; the moving averages
    (momentum 0.9) only follow the last ~10 batches of fast-changing weights, so inference mode
    can drift from what the discriminator saw (in the cpu64 model: pixel mean +0.0058 vs +0.0014
    after recalibration, against 0 in the data). Only the moving statistics change; trainable
    weights are untouched. Returns ``model`` (changed in place). Deterministic for a seed on CPU.
    A conditional generator (inputs [z, params]) needs ``params``, the normalised parameters of the
    training maps (N, P): each batch takes ``batch_size`` rows of it at random, as training batches do.
    """
    if not isinstance(batches, int) or batches < 1:
        raise ValueError(f"batches must be a positive integer, got {batches!r}")
    if not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer >= 2, got {batch_size!r}")
    bns = [l for l in model.layers if isinstance(l, layers.BatchNormalization)]
    if not bns:
        return model
    latent = int(model.inputs[0].shape[-1])
    if (len(model.inputs) > 1) != (params is not None):
        raise ValueError("a conditional generator's batch norms are recalibrated with the training "
                         "parameters (params), an unconditional one's without")
    rng = np.random.default_rng(seed)
    sums = {id(l): [0.0, 0.0] for l in bns}
    momenta = {id(l): l.momentum for l in bns}
    try:
        for l in bns:
            l.momentum = 0.0      # a training-mode call then leaves the batch statistics in moving_*
        for _ in range(batches):
            z = rng.standard_normal((batch_size, latent), dtype=np.float32)
            model(z if params is None else [z, params[rng.integers(0, len(params), batch_size)]], training=True)
            for l in bns:
                sums[id(l)][0] = sums[id(l)][0] + np.asarray(l.moving_mean, dtype=np.float64)
                sums[id(l)][1] = sums[id(l)][1] + np.asarray(l.moving_variance, dtype=np.float64)
    finally:
        for l in bns:
            l.momentum = momenta[id(l)]
    for l in bns:
        l.moving_mean.assign((sums[id(l)][0] / batches).astype(np.float32))
        l.moving_variance.assign((sums[id(l)][1] / batches).astype(np.float32))
    return model


def recalibrated_copy(model: keras.Model, batches: int = 100, batch_size: int = 64,
                      seed: int = 0, params: np.ndarray | None = None) -> keras.Model:
    """A copy of ``model`` with recalibrated batch norms (:func:`recalibrate_batch_norm`); the
    original, e.g. the generator being trained, is left as it is."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return recalibrate_batch_norm(copy, batches, batch_size, seed, params)


def inference_copy(model: keras.Model, training, seed: int, params: np.ndarray | None = None) -> keras.Model:
    """The generator as it is scored and saved: a :func:`recalibrated_copy` when the training
    config asks for precise batch norm (``bn_recalibration > 0``), else ``model`` itself
    (``params``: a conditional generator's training parameters)."""
    if not training.bn_recalibration:
        return model
    return recalibrated_copy(model, training.bn_recalibration, training.batch_size, seed=seed, params=params)


def feature_extractor(discriminator: keras.Model) -> keras.Model:
    """The discriminator's last convolutional activations (for the birthday-paradox search)."""
    last = [l for l in discriminator.layers if l.name.startswith("lrelu")][-1]
    return keras.Model(discriminator.inputs, last.output, name="discriminator_features")


def layer_table(model: keras.Model) -> list[tuple[str, tuple, int]]:
    """(layer name, output shape without batch, trainable parameter count) for each layer."""
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = tuple(layer.output.shape[1:])
        n = sum(int(w.numpy().size) for w in layer.trainable_weights)
        rows.append((layer.name, shape, n))
    return rows


def count_params(model: keras.Model) -> tuple[int, int]:
    """(trainable, non-trainable) parameter counts."""
    tr = sum(int(w.numpy().size) for w in model.trainable_weights)
    nt = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    return tr, nt


def flops_per_map(cfg: ModelConfig) -> dict[str, float]:
    """Multiply-adds x 2 of one forward pass of G and of D for one map (dense and conv layers only)."""
    k2 = cfg.kernel_size ** 2
    s, f0 = cfg.start_size, cfg.base_filters * 2 ** (cfg.n_strided - 1)
    g = 2.0 * cfg.latent_dim * s * s * f0
    size, cin = s, f0
    for i in range(1, cfg.n_strided + 1):
        cout = 1 if i == cfg.n_strided else f0 // 2 ** i
        # a transposed conv does k^2 * cin * cout MACs per *input* pixel
        g += 2.0 * k2 * cin * cout * size * size
        size, cin = size * 2, cout
    d = 0.0
    size, cin = cfg.image_size, 1
    for i in range(cfg.n_strided):
        cout = cfg.base_filters * 2 ** i
        size //= 2
        d += 2.0 * k2 * cin * cout * size * size
        cin = cout
    d += 2.0 * size * size * cin
    return {"generator": g, "discriminator": d}
