"""CosmoGAN as a ``keras.Model``: the adversarial ``train_step`` of Sect. 2.2-2.3 and the authors' code.

One step: z ~ N(0, 1); one forward pass G(z), D(real), D(fake) (D on the two halves separately, so
batch-norm statistics are per half); D loss = BCE(D(real), 1) + BCE(D(fake), 0); non-saturating G loss
BCE(D(fake), 1) on the same fake batch; with probability ``flip_prob`` (one draw per step) the real
and fake labels of the whole batch are swapped. Both optimizers step from that one forward pass.
With a spectral target (not in the paper; ``paper_repro.spectral``), G's loss adds
``spectral_weight`` times the spectral term of the same fake batch (with ``spectral_decay`` > 0 its
averaged form, whose running mean of the generated power is part of the training state).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ..config import Preset, get_preset
from .models import build_discriminator, build_generator


class CosmoGAN(keras.Model):
    """Generator + discriminator trained as in the paper; metrics: d_loss, g_loss, d_real, d_fake, flipped."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *, latent_dim: int,
                 flip_prob: float = 0.01, seed: int | None = None, **kwargs):
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
        self.spectral_target = None
        self.spectral_weight = None
        self.spectral_active = False   # Python flag read when train_step is traced
        self.spectral_decay = 0.0
        self.spectral_mean = None      # averaged term: running sum of generated power, and its weight
        self.spectral_norm = None
        self.spectral_tracker = keras.metrics.Mean(name="spectral")
        self.minkowski_target = None   # (mean, sd) of the real maps' smooth Minkowski functionals
        self.minkowski_weight = None
        self.minkowski_active = False
        self.minkowski_decay = 0.98
        self.minkowski_mean = None
        self.minkowski_norm = None
        self.minkowski_tracker = keras.metrics.Mean(name="minkowski")

    def set_spectral_target(self, target: np.ndarray, weight: float = 0.0, decay: float = 0.0) -> None:
        """Give G's loss a spectral term of ``weight`` (see :meth:`set_spectral_weight`); ``target``
        is ``spectral.target_log_power`` of the real maps, (H, W // 2 + 1), with ``mean=True`` for
        the averaged term (``decay`` in (0, 1): the running mean's decay per step)."""
        size = self.generator.output_shape[1:3]
        expect = (size[0], size[1] // 2 + 1)
        if tuple(np.shape(target)) != expect:
            from ..errors import PaperReproError
            raise PaperReproError(f"spectral target has shape {np.shape(target)}, the generator's maps need {expect}")
        if not 0.0 <= float(decay) < 1.0:
            from ..errors import PaperReproError
            raise PaperReproError(f"spectral decay must be in [0, 1), got {decay!r}")
        self.spectral_target = ops.convert_to_tensor(np.asarray(target, np.float32))
        self.spectral_weight = keras.Variable(0.0, trainable=False, dtype="float32", name="spectral_weight")
        self.spectral_decay = float(decay)
        if self.spectral_decay > 0:
            self.spectral_mean = keras.Variable(np.zeros(expect, np.float32), trainable=False,
                                                name="spectral_mean_power")
            self.spectral_norm = keras.Variable(0.0, trainable=False, dtype="float32", name="spectral_norm")
        self.set_spectral_weight(weight)

    def set_spectral_weight(self, weight: float) -> None:
        """Set the spectral term's weight; at 0 the term leaves the step's graph (retraced), so
        steps at weight 0 are exactly the paper's."""
        active = float(weight) > 0
        self.spectral_weight.assign(float(weight))
        if active != self.spectral_active:
            self.spectral_active = active
            self.train_function = None   # Keras traces train_step again on the next call

    def set_minkowski_target(self, mean: np.ndarray, sd: np.ndarray, weight: float = 0.0,
                             decay: float = 0.98) -> None:
        """Give G's loss the Minkowski term (``paper_repro.morphology``) of ``weight``, against the
        real maps' ``minkowski_target``; ``decay`` in (0, 1) is its running mean's decay per step."""
        from ..errors import PaperReproError
        from .morphology import N_COMPONENTS
        if np.shape(mean) != (N_COMPONENTS,) or np.shape(sd) != (N_COMPONENTS,):
            raise PaperReproError(f"Minkowski target must be two ({N_COMPONENTS},) arrays, got "
                                  f"{np.shape(mean)} and {np.shape(sd)}")
        if not 0.0 < float(decay) < 1.0:
            raise PaperReproError(f"Minkowski decay must be in (0, 1), got {decay!r}")
        self.minkowski_target = (np.asarray(mean, np.float32), np.asarray(sd, np.float32))
        self.minkowski_weight = keras.Variable(0.0, trainable=False, dtype="float32", name="minkowski_weight")
        self.minkowski_decay = float(decay)
        self.minkowski_mean = keras.Variable(np.zeros(N_COMPONENTS, np.float32), trainable=False,
                                             name="minkowski_mean")
        self.minkowski_norm = keras.Variable(0.0, trainable=False, dtype="float32", name="minkowski_norm")
        self.set_minkowski_weight(weight)

    def set_minkowski_weight(self, weight: float) -> None:
        """Set the Minkowski term's weight; at 0 the term leaves the step's graph (retraced)."""
        active = float(weight) > 0
        self.minkowski_weight.assign(float(weight))
        if active != self.minkowski_active:
            self.minkowski_active = active
            self.train_function = None

    @classmethod
    def from_preset(cls, preset: str | Preset, seed: int | None = None) -> "CosmoGAN":
        """Build G and D of a preset with seeded initialisers, and compile with Adam as in the paper."""
        p = get_preset(preset)
        gan = cls(build_generator(p, seed=seed), build_discriminator(p, seed=seed),
                  latent_dim=p.model.latent_dim, flip_prob=p.training.flip_prob, seed=seed)
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

    def draw_labels(self, batch):
        """(flipped, real labels, fake labels): one uniform draw per step; with probability
        flip_prob the labels of the whole batch are swapped (real -> 0, fake -> 1)."""
        flipped = ops.cast(keras.random.uniform((), seed=self.seed_generator) < self.flip_prob, "float32")
        ones = ops.ones((batch, 1), "float32")
        return flipped, ones * (1.0 - flipped), ones * flipped

    def train_step(self, data):
        import tensorflow as tf  # the TensorFlow backend's GradientTape

        real = data[0] if isinstance(data, (tuple, list)) else data
        batch = ops.shape(real)[0]
        z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        flipped, real_labels, fake_labels = self.draw_labels(batch)
        ones = ops.ones((batch, 1), "float32")

        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = self.generator(z, training=True)
            d_real = self.discriminator(real, training=True)
            d_fake = self.discriminator(fake, training=True)
            d_loss = self.bce(real_labels, d_real) + self.bce(fake_labels, d_fake)
            g_loss = self.bce(ones, d_fake)
            g_total = g_loss
            if self.spectral_active and self.spectral_decay > 0:
                from .spectral import _batch_power, averaged_spectral_loss
                a = self.spectral_decay   # bias-corrected running mean, this batch included
                self.spectral_mean.assign(a * self.spectral_mean + (1 - a) * tf.stop_gradient(_batch_power(fake)))
                self.spectral_norm.assign(a * self.spectral_norm + (1 - a))
                surrogate, spec = averaged_spectral_loss(fake, self.spectral_target,
                                                         self.spectral_mean / self.spectral_norm)
                g_total = g_loss + self.spectral_weight * surrogate
            elif self.spectral_active:
                from .spectral import spectral_loss
                spec = spectral_loss(fake, self.spectral_target)
                g_total = g_loss + self.spectral_weight * spec
            if self.minkowski_active:
                from .morphology import averaged_minkowski_loss, batch_means
                a = self.minkowski_decay
                self.minkowski_mean.assign(a * self.minkowski_mean + (1 - a) * tf.stop_gradient(batch_means(fake)))
                self.minkowski_norm.assign(a * self.minkowski_norm + (1 - a))
                mink_surrogate, mink = averaged_minkowski_loss(fake, *self.minkowski_target,
                                                               self.minkowski_mean / self.minkowski_norm)
                g_total = g_total + self.minkowski_weight * mink_surrogate
        d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_weights)
        g_grads = g_tape.gradient(g_total, self.generator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_weights))
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_weights))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(ops.mean(ops.sigmoid(d_real)))
        self.d_fake_tracker.update_state(ops.mean(ops.sigmoid(d_fake)))
        self.flip_tracker.update_state(flipped)
        out = {m.name: m.result() for m in self.metrics}
        if self.spectral_active:
            self.spectral_tracker.update_state(spec)
            out["spectral"] = self.spectral_tracker.result()   # the epoch's running mean
            out["spectral_step"] = spec                         # this step's value
        if self.minkowski_active:
            self.minkowski_tracker.update_state(mink)
            out["minkowski"] = self.minkowski_tracker.result()
            out["minkowski_step"] = mink
        return out

    # ---- full training state, for checkpoints -------------------------------------------------
    def state_variables(self) -> list:
        """Every variable whose value a resumed run needs: weights, both optimizers, RNG, metrics."""
        out = list(self.generator.weights) + list(self.discriminator.weights)
        out += list(self.d_optimizer.variables) + list(self.g_optimizer.variables)
        out += [self.seed_generator.state]
        for m in self.metrics:
            out += list(m.variables)
        if self.spectral_mean is not None:
            out += [self.spectral_mean, self.spectral_norm]
        if self.minkowski_mean is not None:
            out += [self.minkowski_mean, self.minkowski_norm]
        return out

    def get_state(self) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in self.state_variables()]

    def set_state(self, values: list[np.ndarray]) -> None:
        variables = self.state_variables()
        # a state saved without a running-mean term (a run continued with it): its mean starts empty
        for mean, norm in ((self.minkowski_mean, self.minkowski_norm), (self.spectral_mean, self.spectral_norm)):
            if (mean is not None and len(values) < len(variables)
                    and variables[-2] is mean and variables[-1] is norm):
                variables = variables[:-2]
                mean.assign(np.zeros(mean.shape, np.float32))
                norm.assign(0.0)
        if len(values) != len(variables):
            from ..errors import PaperReproError
            raise PaperReproError(
                f"checkpoint holds {len(values)} arrays, the model needs {len(variables)}: "
                "it was written for a different configuration")
        for v, x in zip(variables, values):
            if tuple(v.shape) != tuple(x.shape):
                from ..errors import PaperReproError
                raise PaperReproError(f"checkpoint array for {v.path} has shape {x.shape}, expected {tuple(v.shape)}")
            v.assign(x)
