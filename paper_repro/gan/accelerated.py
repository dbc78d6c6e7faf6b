"""A training loop for accelerators (Keras' JAX backend): k steps per compiled call, crops cut on the device.

The host loop (:mod:`paper_repro.gan.training`) reads each batch from disk and reads the logs after
every step; on a GPU that round trip costs more than a step. Here the parent maps and the crop index
(:class:`~paper_repro.maps.crops.ParentCrops`) live on the device, each epoch's order (the same
seeded permutation as the host loop's) and symmetry draws are sent once, and ``k`` steps run in one
``jax.lax.scan`` (:func:`~paper_repro.gan.jax_step.multi_step`), so the host reads the logs every
``k`` steps. Batches equal the host loop's: the same crops, order, scale and symmetries.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..errors import PaperReproError, TrainingDiverged
from ..maps.crops import ParentCrops
from .batches import epoch_permutation
from .jax_step import multi_step


def symmetry_draws(seed: int, epoch: int, steps: int, batch: int) -> np.ndarray:
    """(steps, batch) symmetry indices 0..7 of an epoch, drawn as ``batches.symmetry_augment`` draws them."""
    return np.stack([np.random.default_rng([seed, epoch, s, 8]).integers(0, 8, batch) for s in range(steps)])


def turn(x, g):
    """Map ``x`` (H, W) turned by symmetry ``g`` (0..7: g % 4 quarter turns, then a left-right
    reflection if g >= 4), as ``batches.symmetry_augment`` turns it."""
    import jax.numpy as jnp

    variants = [jnp.rot90(x, k) for k in range(4)]
    variants += [v[:, ::-1] for v in variants]
    return jnp.stack(variants)[g]


class DeviceLoop:
    """Trains ``gan`` (built on the JAX backend) on ``source`` with the training settings ``training``
    and run seed ``seed``, ``k`` steps per compiled call."""

    def __init__(self, gan, source: ParentCrops, training, seed: int, k: int = 50):
        import jax
        import jax.numpy as jnp

        if k < 1:
            raise PaperReproError(f"steps per call must be >= 1, got {k}")
        self.gan, self.source, self.t, self.seed, self.k = gan, source, training, int(seed), int(k)
        self.batch = training.batch_size
        self.steps_per_epoch = len(source) // self.batch
        if self.steps_per_epoch == 0:
            raise PaperReproError(f"{len(source)} crops is fewer than one batch of {self.batch}")
        self.parents = jax.device_put(jnp.asarray(source.parents))
        self.index = jax.device_put(jnp.asarray(source.index))
        c, scale, b = source.crop, float(training.data_scale), self.batch

        def batch_fn(i, data):
            order, sym = data
            rows = jax.lax.dynamic_slice(order, (i * b,), (b,))
            p, r, col = (self.index[rows, j] for j in range(3))

            def cut(p, r, col, g):
                x = jax.lax.dynamic_slice(self.parents[p], (r, col), (c, c))
                return turn(x, g)

            crops = jax.vmap(cut)(p, r, col, sym[i]) * scale
            return crops[..., None]

        self.batch_fn = batch_fn

    def epoch_data(self, epoch: int):
        """The epoch's crop order and symmetry draws (all 0 when the epoch is not augmented), on the device."""
        import jax.numpy as jnp

        order = epoch_permutation(self.seed, epoch, len(self.source)).astype(np.int32)
        if self.t.augments(epoch):
            sym = symmetry_draws(self.seed, epoch, self.steps_per_epoch, self.batch)
        else:
            sym = np.zeros((self.steps_per_epoch, self.batch), np.int32)
        return jnp.asarray(order), jnp.asarray(sym.astype(np.int32))

    def host_batch(self, epoch: int, step: int) -> np.ndarray:
        """The batch of ``step`` in ``epoch`` cut on the host: what the device cuts (for checks)."""
        from .batches import symmetry_augment

        order = epoch_permutation(self.seed, epoch, len(self.source))
        crops = self.source.crops(order[step * self.batch:(step + 1) * self.batch])[..., None]
        crops = crops * np.float32(self.t.data_scale)
        return symmetry_augment(crops, self.seed, epoch, step) if self.t.augments(epoch) else crops

    def device_batch(self, epoch: int, step: int) -> np.ndarray:
        """The batch of ``step`` in ``epoch`` as the compiled loop cuts it."""
        return np.asarray(self.batch_fn(step, self.epoch_data(epoch)))

    def run(self, steps: int, *, epoch: int = 0, start: int = 0, on_logs: Callable | None = None,
            time_limit_s: float | None = None) -> dict[str, np.ndarray]:
        """Train ``steps`` steps from step ``start`` of ``epoch`` (epochs roll over); ``on_logs(step,
        logs)`` is called every k steps with the chunk's stacked logs; stops early past
        ``time_limit_s`` seconds. Returns each log's values over the steps run."""
        state = multi_step(self.gan, self.k, self.batch_fn)[0]
        values = state.read()
        history: dict[str, list] = {}
        done, t0 = 0, time.perf_counter()
        data = self.epoch_data(epoch)
        while done < steps:
            if start >= self.steps_per_epoch:
                epoch, start = epoch + 1, 0
                data = self.epoch_data(epoch)
            n = min(self.k, steps - done, self.steps_per_epoch - start)   # a call never spans two epochs
            _, fn = multi_step(self.gan, n, self.batch_fn)
            logs, values = fn(values, np.int32(start), data)
            logs = {name: np.asarray(v) for name, v in logs.items()}   # the host reads every call
            if not all(np.isfinite(logs[name]).all() for name in ("d_loss", "g_loss")):
                raise TrainingDiverged(f"non-finite loss within steps {done + 1}-{done + n}")
            for name, v in logs.items():
                history.setdefault(name, []).append(v)
            start, done = start + n, done + n
            if on_logs is not None:
                on_logs(done, logs)
            if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
                break
        state.write(values)
        self.epoch, self.start = epoch, start
        return {name: np.concatenate(v) for name, v in history.items()}
