"""The paper's step data-parallel on TensorFlow (``tf.distribute.MirroredStrategy``).

Keras' own TF trainer hands every replica the whole batch; here each step takes the global batch
and its draws (latents for the whole batch, one swap uniform) and replica r trains on its slice r of
both. Batch norms run synchronised (moments all-reduced over the replicas, so over the global half
batch), losses are the replica's mean divided by the number of replicas (Keras' losses scale so
under a strategy; the optimizers sum the replicas' gradients), and the logs are means over replicas. N replicas then take the single-device
step. Loss terms need the whole batch's statistics and are refused here (train them on JAX, where
data parallelism covers them).
"""
from __future__ import annotations

import contextlib

import keras

from ..errors import PaperReproError


def active_strategy():
    """The TF distribution strategy in scope when it has several replicas, else None."""
    import tensorflow as tf

    if not tf.distribute.has_strategy():
        return None
    strategy = tf.distribute.get_strategy()
    return strategy if strategy.num_replicas_in_sync > 1 else None


@contextlib.contextmanager
def synchronized_batch_norm(*models):
    """Within the block (while the step is traced) the models' batch norms all-reduce their
    moments; their saved configuration stays unsynchronised, so saved models load on any backend."""
    bns = [layer for m in models for layer in m.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in bns:
        layer.synchronized = True
    try:
        yield
    finally:
        for layer in bns:
            layer.synchronized = False


def mirrored_step(gan, strategy):
    """A ``tf.function`` (real, z, u) -> logs taking one data-parallel step of ``gan`` (cached)."""
    import tensorflow as tf

    key = ("mirrored", gan.active_terms(), id(strategy))
    cache = gan.__dict__.setdefault("_tf_functions", {})
    if key in cache:
        return cache[key]
    if gan.active_terms():
        raise PaperReproError(f"loss terms ({', '.join(gan.active_terms())}) are not supported with "
                              "several TensorFlow devices; use one device or KERAS_BACKEND=jax")

    def replica(real, z, u):
        ctx = tf.distribute.get_replica_context()
        n, r = ctx.num_replicas_in_sync, ctx.replica_id_in_sync_group
        b = tf.shape(real)[0] // n
        real, z = real[r * b:(r + 1) * b], z[r * b:(r + 1) * b]
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = gan.generator(z, training=True)
            d_real = gan.discriminator(real, training=True)
            d_fake = gan.discriminator(fake, training=True)
            # Keras losses under a strategy already return the replica's mean / n (their share)
            d_loss, g_total, logs = gan.paper_losses(real, fake, d_real, d_fake, u, {})
        d_grads = d_tape.gradient(d_loss, gan.discriminator.trainable_weights)
        g_grads = g_tape.gradient(g_total, gan.generator.trainable_weights)
        for k in ("d_loss", "g_loss"):                 # logged: the replica's mean itself
            logs[k] = logs[k] * tf.cast(n, logs[k].dtype)
        gan.d_optimizer.apply_gradients(zip(d_grads, gan.discriminator.trainable_weights))
        gan.g_optimizer.apply_gradients(zip(g_grads, gan.generator.trainable_weights))
        return {k: ctx.all_reduce(tf.distribute.ReduceOp.MEAN, v) for k, v in logs.items()}

    @tf.function
    def step(real, z, u):
        if z is None:
            z = keras.random.normal((tf.shape(real)[0], gan.latent_dim), seed=gan.seed_generator)
        if u is None:
            u = keras.random.uniform((), seed=gan.seed_generator)
        logs = strategy.run(replica, args=(real, z, u))
        return {k: strategy.experimental_local_results(v)[0] for k, v in logs.items()}

    def call(real, z=None, u=None):
        if real.shape[0] % strategy.num_replicas_in_sync:
            raise PaperReproError(f"a batch of {real.shape[0]} maps does not split evenly over "
                                  f"{strategy.num_replicas_in_sync} devices")
        with synchronized_batch_norm(gan.generator, gan.discriminator):
            return step(tf.convert_to_tensor(real, tf.float32),
                        None if z is None else tf.convert_to_tensor(z, tf.float32),
                        None if u is None else tf.reshape(tf.convert_to_tensor(u, tf.float32), ()))

    cache[key] = call
    return call


def train_on_batch(gan, strategy, data) -> dict[str, float]:
    """One data-parallel step on ``data`` (maps, or (maps, z[, u])); the logs as Python floats."""
    import numpy as np

    parts = tuple(data) if isinstance(data, (tuple, list)) else (data,)
    real, z, u = (parts + (None, None))[:3]
    logs = {k: float(v) for k, v in mirrored_step(gan, strategy)(np.asarray(real, np.float32), z, u).items()}
    gan.hold(logs)
    return logs
