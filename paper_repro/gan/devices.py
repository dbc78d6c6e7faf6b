"""Where a run computes: one device or data-parallel over several, at float32 or mixed bfloat16.

Data parallelism keeps the paper's step: the batch of 64 is the *global* batch, split over the
devices; latents and the label-swap draw are drawn once per step for the whole batch; batch-norm
statistics are taken over each global half-batch (D sees the real and the fake halves separately, as
on one device). On JAX that is ``keras.distribution.DataParallel``: every array holds the global
batch split over the devices' batch axis and XLA reduces the means across them, so N devices take
the single-device step. Several processes (one per host) join with ``keras.distribution.initialize``,
which reads ``KERAS_DISTRIBUTION_JOB_ADDRESSES``, ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and
``KERAS_DISTRIBUTION_PROCESS_ID`` (README, "Many devices"). On TensorFlow it is
``tf.distribute.MirroredStrategy`` (:mod:`paper_repro.gan.mirrored`), or with ``TF_CONFIG`` set
``MultiWorkerMirroredStrategy``.
"""
from __future__ import annotations

import contextlib
import os

import keras

from ..errors import PaperReproError

#: environment variables that make a run one process of a multi-process JAX job
MULTI_PROCESS_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                     "KERAS_DISTRIBUTION_PROCESS_ID")


def available_devices() -> list:
    """The backend's devices that data parallelism may use (accelerators if any, else CPUs)."""
    if keras.backend.backend() == "jax":
        import jax

        return list(jax.devices())
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    raise PaperReproError(f"data parallelism needs the jax or tensorflow backend, not {keras.backend.backend()}")


def choose_devices(n: int | str | None) -> list | None:
    """The devices for ``n`` (an int, or "all"; None or 1: one device, no distribution)."""
    if n is None or n == 1:
        return None
    devices = available_devices()
    count = len(devices) if n == "all" else n
    if not isinstance(count, int) or count < 1:
        raise PaperReproError(f"--devices must be a positive integer or 'all', got {n!r}")
    if count > len(devices):
        raise PaperReproError(f"--devices {count}: only {len(devices)} {keras.backend.backend()} device(s) "
                              "are visible")
    return devices[:count] if count > 1 else None


@contextlib.contextmanager
def compute_on(devices: int | str | None = None, precision: str = "float32"):
    """Within the block, models are built and trained at ``precision`` and, with several
    ``devices``, data-parallel (yields the TF strategy, the JAX distribution or None)."""
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        if keras.backend.backend() == "jax" and any(k in os.environ for k in MULTI_PROCESS_ENV):
            keras.distribution.initialize()
        chosen = choose_devices(devices)
        if chosen is None:
            yield None
        elif keras.backend.backend() == "jax":
            previous = keras.distribution.distribution()
            dist = keras.distribution.DataParallel(devices=chosen)
            keras.distribution.set_distribution(dist)
            try:
                yield dist
            finally:
                keras.distribution.set_distribution(previous)
        else:
            import tensorflow as tf

            if "TF_CONFIG" in os.environ:     # one worker of several hosts (not run in the tests)
                strategy = tf.distribute.MultiWorkerMirroredStrategy()
            else:
                strategy = tf.distribute.MirroredStrategy([d.name for d in chosen])
            with strategy.scope():
                yield strategy
    finally:
        keras.config.set_dtype_policy(previous_policy)

