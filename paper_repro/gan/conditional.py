"""The conditional emulator G(z | Omega_m, sigma_8), D(x | Omega_m, sigma_8), trained by the paper's step.

Topology: Tables 1-2 as the preset scales them (:mod:`paper_repro.gan.models`), with the parameters
mapped linearly to [-1, 1] over the training grid's box (:func:`normalise_parameters`) entering

- **G by concatenation to z** before Table 1's dense layer. It is the smallest change to Table 1
  (the dense layer gains 2 inputs, 2 x 4,096 weights in cpu64) and keeps every later layer as the
  paper's. The parameters set the dense layer's output per map; batch norm normalises over the
  batch, whose maps come from many nodes, so the parameters' effect survives it. Presets with
  ``conditioning="film"`` (``cpu64-film``) add conditional batch norm: after each of G's batch
  norms a :class:`~paper_repro.gan.models.ConditionalAffine` scales and shifts every channel by a
  linear function of the parameters, so they act at every resolution, where the concatenation
  reaches only the 4 x 4 start (1,920 weights more in cpu64, zero at a warm start).
- **D by projection** (Miyato & Koyama 2018): logit(x) + <V theta, phi(x)>, phi the flattened last
  convolutional features and V a bias-free linear map of the parameters. Concatenating theta to the
  input or the features lets D ignore it; the projection is the form a log-density ratio of
  conditional distributions takes, and is what conditional lensing GANs since have used.

The train step is CosmoGAN's (:mod:`paper_repro.gan.cosmogan`): z ~ N(0, 1), one forward pass, D on
the real and the fake halves separately, a whole-batch label swap with probability ``flip_prob``,
both optimizers from that pass; the fake half is generated at the real batch's parameters, so D
compares real and generated maps at the same cosmologies. Presets with ``pdf_weight`` > 0 add the
one-point term of :mod:`paper_repro.gan.conditional_pdf` to G's loss, given the step's real maps and
parameters. It runs on Keras' TensorFlow backend on
one device; the JAX and data-parallel steps are not written for it yet, and refuse it.
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from ..config import ConditionalPreset, ParameterSpace, get_preset
from ..errors import PaperReproError
from .cosmogan import CosmoGAN, LossTerm
from .models import build_discriminator, build_generator


def conditional_preset(preset) -> ConditionalPreset:
    """The :class:`~paper_repro.config.ConditionalPreset` called ``preset``; an unconditional one is
    a one-line error."""
    p = get_preset(preset)
    if not isinstance(p, ConditionalPreset):
        raise PaperReproError(f"preset {p.name!r} is not conditional; use a conditional preset such as "
                              f"cpu64-cond or tiny-cond")
    return p


def normalise_parameters(params, space: ParameterSpace, *, strict: bool = False) -> np.ndarray:
    """(N, P) float32 network inputs of physical parameters ``params`` ((P,) or (N, P), in the order of
    ``space.names``): each mapped linearly to [-1, 1] over the space's box. NaN or inf, a wrong
    number of parameters, and, with ``strict``, a value outside the box the model was trained over
    are one-line errors."""
    names = ", ".join(space.names)
    try:
        arr = np.array(params, dtype=np.float64)
    except (TypeError, ValueError):
        raise PaperReproError(f"parameters must be numbers ({names}), got {params!r}") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != len(space.names):
        raise PaperReproError(f"expected {len(space.names)} parameters per map ({names}), got shape "
                              f"{np.shape(params)}")
    if not np.isfinite(arr).all():
        raise PaperReproError(f"parameters ({names}) must be finite, got NaN or inf")
    low, high = np.asarray(space.low), np.asarray(space.high)
    if strict:
        bad = (arr < low) | (arr > high)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise PaperReproError(f"{space.names[col]} = {arr[row, col]:g} lies outside the trained range "
                                  f"[{low[col]:g}, {high[col]:g}] (strict mode)")
    return (2.0 * (arr - low) / (high - low) - 1.0).astype(np.float32)


def training_pairs(data, preset) -> tuple[np.ndarray, np.ndarray]:
    """(maps (N, c, c) memory map, normalised parameters (N, P) float32) of the combined train set of
    a cosmology-grid directory (:mod:`paper_repro.maps.cosmo_grid`), checked against a conditional
    preset: the maps' size, and every node inside the preset's parameter box."""
    from ..maps.cosmo_grid import load_cosmo_grid

    p = conditional_preset(preset)
    maps, params = load_cosmo_grid(data).training()
    if maps.shape[1:] != (p.model.image_size,) * 2:
        raise PaperReproError(f"{data}: maps of {maps.shape[1]}^2 px, preset {p.name!r} makes "
                              f"{p.model.image_size}^2")
    return maps, normalise_parameters(params, p.parameters, strict=True)


def build_conditional_generator(preset, seed: int | None = None) -> keras.Model:
    """G(z, params) of a conditional preset (inputs ``z`` (B, latent), ``params`` (B, P) normalised)."""
    p = conditional_preset(preset)
    return build_generator(p, seed=seed, n_params=len(p.parameters.names), film=p.conditioning == "film")


def build_conditional_discriminator(preset, seed: int | None = None) -> keras.Model:
    """D(map, params) of a conditional preset: a projection discriminator."""
    p = conditional_preset(preset)
    return build_discriminator(p, seed=seed, n_params=len(p.parameters.names))


class ConditionalCosmoGAN(CosmoGAN):
    """CosmoGAN conditioned on parameters. A batch is (maps, params) or (maps, params, z, u):
    ``params`` (B, P) normalised (:func:`normalise_parameters`), z and the swap uniform u drawn from
    the model's seed generator when not given. Metrics and state as :class:`CosmoGAN`; the training
    loop sets ``bn_params`` (the training maps' normalised parameters) for precise batch norm."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *, latent_dim: int,
                 space: ParameterSpace, flip_prob: float = 0.01, seed: int | None = None,
                 loss_terms: Sequence[LossTerm] = (), **kwargs):
        super().__init__(generator, discriminator, latent_dim=latent_dim, flip_prob=flip_prob, seed=seed,
                         loss_terms=loss_terms, **kwargs)
        self.space = space
        self.bn_params = None    # the training maps' normalised parameters, for precise batch norm

    @classmethod
    def from_preset(cls, preset, seed: int | None = None,
                    loss_terms: Sequence[LossTerm] = ()) -> "ConditionalCosmoGAN":
        """G and D of a conditional preset with seeded initialisers, compiled with Adam as CosmoGAN."""
        p = conditional_preset(preset)
        gan = cls(build_conditional_generator(p, seed), build_conditional_discriminator(p, seed),
                  latent_dim=p.model.latent_dim, space=p.parameters, flip_prob=p.training.flip_prob,
                  seed=seed, loss_terms=loss_terms)
        t = p.training
        gan.compile(
            d_optimizer=keras.optimizers.Adam(learning_rate=t.d_learning_rate_at(0), beta_1=t.beta_1),
            g_optimizer=keras.optimizers.Adam(learning_rate=t.learning_rate, beta_1=t.beta_1),
        )
        return gan

    def call(self, inputs, training=False):
        z, params = inputs
        return self.generator([z, params], training=training)

    def step_draws(self, data):
        """(real, params, z, u) of one step from (maps, params[, z[, u]]) (as Keras hands it over:
        inside (x, y, sample_weight))."""
        parts = tuple(data)
        if parts and isinstance(parts[0], (tuple, list)):
            parts = tuple(parts[0])
        real, params, z, u = (parts + (None, None))[:4]
        if z is None:
            z = keras.random.normal((keras.ops.shape(real)[0], self.latent_dim), seed=self.seed_generator)
        return real, params, z, u

    def train_step(self, data):
        """The paper's step (TensorFlow), with the fake half generated at the real batch's parameters."""
        import tensorflow as tf

        real, params, z, u = self.step_draws(data)
        weights = {t.name: t.weight for t in self.loss_terms if t.name in self._traced_terms}
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = self.generator([z, params], training=True)
            d_real = self.discriminator([real, params], training=True)
            d_fake = self.discriminator([fake, params], training=True)
            d_loss, g_total, logs = self.paper_losses(real, fake, d_real, d_fake, u, weights,
                                                      context={"real": real, "params": params})
        self.apply_tapes(d_tape, g_tape, d_loss, g_total)
        return self.track(logs)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One step on ``x`` = (maps (B, H, W, 1), params (B, P)[, z[, u]]), on TensorFlow, one device."""
        if keras.backend.backend() != "tensorflow":
            raise PaperReproError(f"the conditional train step runs on TensorFlow only (KERAS_BACKEND="
                                  f"{keras.backend.backend()}); set KERAS_BACKEND=tensorflow")
        from .mirrored import active_strategy

        if active_strategy() is not None:
            raise PaperReproError("the conditional train step runs on one device; drop --devices")
        if not (isinstance(x, (tuple, list)) and len(x) in (2, 3, 4)):
            raise PaperReproError("a conditional batch is (maps, params) or (maps, params, z[, u])")
        return keras.Model.train_on_batch(self, tuple(x), None, None, class_weight, return_dict)


def generation_inputs(preset, params, *, strict: bool = False) -> np.ndarray | None:
    """The normalised parameter row (P,) a run's generator is called with: None for an unconditional
    preset (where giving parameters is an error), else ``params`` checked (required)."""
    if not isinstance(preset, ConditionalPreset):
        if params is not None:
            raise PaperReproError(f"preset {preset.name!r} is not conditional: it takes no parameters")
        return None
    if params is None:
        raise PaperReproError(f"preset {preset.name!r} is conditional: give the parameters "
                              f"({', '.join(preset.parameters.names)}, e.g. --omega-m 0.3 --sigma-8 0.8)")
    y = normalise_parameters(params, preset.parameters, strict=strict)
    if len(y) != 1:
        raise PaperReproError(f"expected one set of parameters, got {len(y)}")
    return y[0]
