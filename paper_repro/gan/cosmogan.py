"""CosmoGAN as a ``keras.Model``: the adversarial ``train_step`` of Sect. 2.2-2.3 and the authors' code.

One step: z ~ N(0, 1); one forward pass G(z), D(real), D(fake) (D on the two halves separately, so
batch-norm statistics are per half); D loss = BCE(D(real), 1) + BCE(D(fake), 0); non-saturating G loss
BCE(D(fake), 1) on the same fake batch; with probability ``flip_prob`` (one draw per step) the real
and fake labels of the whole batch are swapped. Both optimizers step from that one forward pass.

Extra generator loss terms (not in the paper; e.g. ``paper_repro.gan.spectral.SpectralTerm``) are
injected objects, as keras-io's WGAN-GP example injects its gradient penalty: G's loss adds each
term's ``weight`` times its value on the same fake batch. A term at weight 0 is left out of the
traced step, so such steps are exactly the paper's.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import keras
import numpy as np
from keras import ops

from ..config import Preset, get_preset
from ..errors import PaperReproError
from .models import build_discriminator, build_generator


class LossTerm(Protocol):
    """What CosmoGAN needs of an extra generator loss term."""

    name: str                  # its key in the step's logs (and its log file's name)
    weight: keras.Variable     # scalar; G's loss adds weight * value; 0: left out of the step
    state_variables: list      # variables a resumed run needs (saved in checkpoints), often none

    def __call__(self, fake):
        """The term's value (a scalar tensor) for the generated batch ``fake`` (B, H, W, 1); a term with
        ``conditional = True`` is called with ``real=`` and ``params=`` of the step as well."""


class CosmoGAN(keras.Model):
    """Generator + discriminator trained as in the paper; metrics: d_loss, g_loss, d_real, d_fake,
    flipped; plus each active loss term's value at this step, under its name."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *, latent_dim: int,
                 flip_prob: float = 0.01, seed: int | None = None,
                 loss_terms: Sequence[LossTerm] = (), **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.flip_prob = float(flip_prob)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.flip_tracker = keras.metrics.Mean(name="flipped")
        names = [t.name for t in loss_terms]
        if len(set(names)) != len(names) or set(names) & {m.name for m in self.metrics}:
            raise PaperReproError(f"loss terms need distinct names other than the metrics', got {names}")
        self.loss_terms = list(loss_terms)
        self._traced_terms = self.active_terms()   # the terms in the traced step (read when traced)

    def active_terms(self) -> tuple[str, ...]:
        """Names of the loss terms with a weight above 0."""
        return tuple(t.name for t in self.loss_terms if float(t.weight.numpy()) > 0)

    def set_term_weight(self, name: str, weight: float) -> None:
        """Set loss term ``name``'s weight; when a term turns on or off, the step is traced again
        on its next call (at weight 0 a term is out of the graph: the paper's step)."""
        term = {t.name: t for t in self.loss_terms}.get(name)
        if term is None:
            raise PaperReproError(f"no loss term {name!r}; this model has {[t.name for t in self.loss_terms]}")
        term.weight.assign(float(weight))
        if self.active_terms() != self._traced_terms:
            self._traced_terms = self.active_terms()
            self.train_function = None   # Keras traces train_step again on the next call

    @classmethod
    def from_preset(cls, preset: str | Preset, seed: int | None = None,
                    loss_terms: Sequence[LossTerm] = ()) -> "CosmoGAN":
        """Build G and D of a preset with seeded initialisers, and compile with Adam as in the paper."""
        p = get_preset(preset)
        gan = cls(build_generator(p, seed=seed), build_discriminator(p, seed=seed),
                  latent_dim=p.model.latent_dim, flip_prob=p.training.flip_prob, seed=seed,
                  loss_terms=loss_terms)
        t = p.training
        gan.compile(
            d_optimizer=keras.optimizers.Adam(learning_rate=t.d_learning_rate_at(0), beta_1=t.beta_1),
            g_optimizer=keras.optimizers.Adam(learning_rate=t.learning_rate, beta_1=t.beta_1),
        )
        return gan

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        # No XLA: on 2 AVX2 cores a cpu64 step took 2.50 s with jit_compile=True, 0.65 s without.
        super().compile(jit_compile=False, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker,
                self.d_fake_tracker, self.flip_tracker]

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def draw_labels(self, batch, u=None):
        """(flipped, real labels, fake labels): one uniform draw ``u`` per step (drawn from the
        model's seed generator unless given); with probability flip_prob (u < flip_prob) the labels
        of the whole batch are swapped (real -> 0, fake -> 1)."""
        if u is None:
            u = keras.random.uniform((), seed=self.seed_generator)
        flipped = ops.cast(ops.reshape(u, ()) < self.flip_prob, "float32")
        ones = ops.ones((batch, 1), "float32")
        return flipped, ones * (1.0 - flipped), ones * flipped

    def step_draws(self, data):
        """(real, z, u) of one step from ``data``: a batch of maps, or (maps, z) or (maps, z, u) where
        the caller supplies the latents z (B, latent_dim) and the swap uniform u; what is not supplied
        is drawn from the model's seed generator (z first, then u), as in every training run."""
        parts = tuple(data) if isinstance(data, (tuple, list)) else (data,)
        real, z, u = (parts + (None, None))[:3]
        if z is None:
            z = keras.random.normal((ops.shape(real)[0], self.latent_dim), seed=self.seed_generator)
        return real, z, u

    def paper_losses(self, real, fake, d_real, d_fake, u, term_weights, context=None):
        """The step's losses from its one forward pass: (d_loss, g_total, logs), where G's total adds
        each active term's weight times its value on the same fake batch (``term_weights``: name ->
        weight, the traced terms only; a term marked ``conditional`` is also given ``context``, the
        conditional step's real maps and parameters)."""
        batch = ops.shape(real)[0]
        flipped, real_labels, fake_labels = self.draw_labels(batch, u)
        d_real = ops.cast(d_real, "float32")
        d_fake = ops.cast(d_fake, "float32")
        d_loss = self.bce(real_labels, d_real) + self.bce(fake_labels, d_fake)
        g_loss = self.bce(ops.ones((batch, 1), "float32"), d_fake)
        g_total, values = g_loss, {}
        for term in self.loss_terms:
            if term.name in term_weights:
                extra = context if getattr(term, "conditional", False) else {}
                values[term.name] = ops.cast(term(ops.cast(fake, "float32"), **extra), "float32")
                g_total = g_total + term_weights[term.name] * values[term.name]
        logs = {"d_loss": d_loss, "g_loss": g_loss, "d_real": ops.mean(ops.sigmoid(d_real)),
                "d_fake": ops.mean(ops.sigmoid(d_fake)), "flipped": flipped}
        logs.update(values)   # each active term's value at this step
        return d_loss, g_total, logs

    def train_step(self, data):
        """The paper's step on the TensorFlow backend (two gradient tapes over one forward pass)."""
        import tensorflow as tf  # the TensorFlow backend's GradientTape

        real, z, u = self.step_draws(data)
        weights = {t.name: t.weight for t in self.loss_terms if t.name in self._traced_terms}
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = self.generator(z, training=True)
            d_real = self.discriminator(real, training=True)
            d_fake = self.discriminator(fake, training=True)
            d_loss, g_total, logs = self.paper_losses(real, fake, d_real, d_fake, u, weights)
        self.apply_tapes(d_tape, g_tape, d_loss, g_total)
        return self.track(logs)

    def apply_tapes(self, d_tape, g_tape, d_loss, g_total) -> None:
        """Both optimizers' updates from the two tapes of one forward pass (TensorFlow)."""
        d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_weights)
        g_grads = g_tape.gradient(g_total, self.generator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_weights))
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_weights))

    def track(self, logs: dict) -> dict:
        """Update the metric trackers from a step's logs; return the logs with the trackers' results."""
        for m in self.metrics:
            m.update_state(logs[m.name])
        out = {m.name: m.result() for m in self.metrics}
        out.update({k: v for k, v in logs.items() if k not in out})
        return out

    def hold(self, logs: dict) -> None:
        """Set the metric trackers to one step's logs (as Keras' ``train_on_batch``, which resets them
        before each step), for the steps that run outside Keras' trainer."""
        for m in self.metrics:
            m.reset_state()
            m.update_state(logs[m.name])

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One training step on batch ``x`` (or (maps, z[, u]), see :meth:`step_draws`): Keras' own on
        TensorFlow (data-parallel: :mod:`paper_repro.gan.mirrored`); on JAX the stateless step of
        :mod:`paper_repro.gan.jax_step` (data-parallel under a ``keras.distribution``)."""
        if keras.backend.backend() == "tensorflow":
            from .mirrored import active_strategy
            from .mirrored import train_on_batch as mirrored_train_on_batch

            strategy = active_strategy()
            if strategy is not None:    # several devices: paper_repro.gan.mirrored
                logs = mirrored_train_on_batch(self, strategy, x)
                return logs if return_dict else [logs[m.name] for m in self.metrics]
        if keras.backend.backend() != "jax":
            if isinstance(x, (tuple, list)):   # Keras hands (x, y, sample_weight) to train_step
                x, y, sample_weight = (tuple(x) + (None, None))[:3]
                sample_weight = None if sample_weight is None else np.reshape(sample_weight, (1,))
            return super().train_on_batch(x, y, sample_weight, class_weight, return_dict)
        from .jax_step import train_on_batch
        logs = train_on_batch(self, x)
        return logs if return_dict else [logs[m.name] for m in self.metrics]

    # ---- full training state, for checkpoints -------------------------------------------------
    def state_variables(self) -> list:
        """Every variable whose value a resumed run needs: weights, both optimizers, RNG, metrics."""
        out = list(self.generator.weights) + list(self.discriminator.weights)
        out += list(self.d_optimizer.variables) + list(self.g_optimizer.variables)
        out += [self.seed_generator.state]
        for m in self.metrics:
            out += list(m.variables)
        for t in self.loss_terms:
            out += list(t.state_variables)
        return out

    def get_state(self) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in self.state_variables()]

    def set_state(self, values: list[np.ndarray]) -> None:
        variables = self.state_variables()
        if len(values) != len(variables):
            raise PaperReproError(
                f"checkpoint holds {len(values)} arrays, the model needs {len(variables)}: "
                "it was written for a different configuration")
        for v, x in zip(variables, values):
            if tuple(v.shape) != tuple(x.shape):
                raise PaperReproError(f"checkpoint array for {v.path} has shape {x.shape}, expected {tuple(v.shape)}")
            v.assign(x)
