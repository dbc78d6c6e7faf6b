"""The paper's adversarial step on Keras' JAX backend: a stateless, jitted function of the training state.

Same semantics as ``CosmoGAN.train_step`` on TensorFlow: one forward pass G(z), D(real), D(fake) (D
on the two halves separately, real first, so batch-norm statistics are per half), the whole-batch
label swap drawn once, D's gradients of the D loss and G's of G's total loss from that one pass
(``jax.vjp``, one backward pass each), both Adam updates. The state is the values of
:meth:`StepState.variables` (weights, batch-norm statistics, both optimizers, the seed generator, the
active loss terms' weights and state): read from the Keras variables before a call and written back
after it (in JAX an assignment swaps a reference, it copies nothing), so callbacks that change a
learning rate or a term's weight between steps act as on TensorFlow.

Under ``keras.distribution.DataParallel`` the batch and the latents are sharded over the devices'
batch axis and everything else is replicated; XLA's partitioner then reduces batch means (losses,
batch-norm statistics) over the global batch, so N devices take the single-device step.
:func:`multi_step` runs k steps in one compiled call for accelerators (no host round trip per step).
"""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np

from ..errors import PaperReproError


class StepState:
    """The variables one JAX step reads and writes, in a fixed order, for one set of active terms."""

    def __init__(self, gan, active: tuple[str, ...]):
        self.gan = gan
        self.active = active
        terms = [t for t in gan.loss_terms if t.name in active]
        self.groups = {
            "g_tv": list(gan.generator.trainable_variables),
            "g_ntv": list(gan.generator.non_trainable_variables),
            "d_tv": list(gan.discriminator.trainable_variables),
            "d_ntv": list(gan.discriminator.non_trainable_variables),
            "g_opt": list(gan.g_optimizer.variables),
            "d_opt": list(gan.d_optimizer.variables),
            "seed": [gan.seed_generator.state],
            "weights": [t.weight for t in terms],
            "terms": [v for t in terms for v in t.state_variables],
        }

    def read(self) -> dict:
        """The current values (JAX arrays; no copies)."""
        return {k: [v.value for v in vs] for k, vs in self.groups.items()}

    def write(self, values: dict) -> None:
        """Assign a step's new values back to the Keras variables."""
        for k, vs in self.groups.items():
            if k == "weights":
                continue   # inputs of the step, set only by the loss-weight schedule
            for v, x in zip(vs, values[k]):
                v.assign(x)


def data_sharding(shape):
    """The sharding of an array of ``shape`` split over the batch axis under the current Keras
    distribution, or None on one device."""
    dist = keras.distribution.distribution()
    if dist is None:
        return None
    return dist.get_data_layout(tuple(shape)).backend_layout


def shard_batch(x):
    """Place ``x`` (a host or device array, batch axis first) split over the devices' batch axis
    under the current Keras distribution; unchanged on one device."""
    import jax

    sharding = data_sharding(np.shape(x))
    if sharding is None:
        return jax.numpy.asarray(x)
    if len(x) % len(sharding.device_set):
        raise PaperReproError(f"a batch of {len(x)} maps does not split evenly over "
                              f"{len(sharding.device_set)} devices")
    return jax.device_put(x, sharding)


def _constrain(x):
    """Inside jit: ask XLA to keep ``x`` split over the batch axis (latents drawn from a replicated
    seed are otherwise computed whole on every device)."""
    import jax

    sharding = data_sharding(x.shape)
    return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)


def pure_step(gan, state: StepState) -> Callable:
    """The step as a pure function (values, real, z, u) -> (logs, new values); z and u may be None
    (then drawn from the seed generator's state in ``values``, z first, as on TensorFlow)."""
    import jax
    import jax.numpy as jnp

    term_vars = state.groups["terms"]
    names = [t.name for t in gan.loss_terms if t.name in state.active]

    def step(values, real, z, u):
        real = _constrain(real)
        with keras.StatelessScope(state_mapping=[(gan.seed_generator.state, values["seed"][0])]) as scope:
            if z is None:
                z = keras.random.normal((real.shape[0], gan.latent_dim), seed=gan.seed_generator)
            if u is None:
                u = keras.random.uniform((), seed=gan.seed_generator)
            new_seed = scope.get_current_value(gan.seed_generator.state)
        seed = values["seed"][0] if new_seed is None else new_seed
        z = _constrain(jnp.asarray(z))
        weights = dict(zip(names, values["weights"]))

        def forward(g_tv, d_tv):
            fake, g_ntv = gan.generator.stateless_call(g_tv, values["g_ntv"], z, training=True)
            d_real, d_ntv = gan.discriminator.stateless_call(d_tv, values["d_ntv"], real, training=True)
            d_fake, d_ntv = gan.discriminator.stateless_call(d_tv, d_ntv, fake, training=True)
            with keras.StatelessScope(state_mapping=list(zip(term_vars, values["terms"]))) as terms:
                d_loss, g_total, logs = gan.paper_losses(real, fake, d_real, d_fake, u, weights)
                new_terms = [terms.get_current_value(v) for v in term_vars]
            new_terms = [old if new is None else new for old, new in zip(values["terms"], new_terms)]
            return (d_loss, g_total), (logs, g_ntv, d_ntv, new_terms)

        (d_loss, g_total), vjp, (logs, g_ntv, d_ntv, new_terms) = jax.vjp(
            forward, values["g_tv"], values["d_tv"], has_aux=True)
        one, zero = jnp.ones_like(d_loss), jnp.zeros_like(d_loss)
        _, d_grads = vjp((one, zero))
        g_grads, _ = vjp((zero, one))
        g_tv, g_opt = gan.g_optimizer.stateless_apply(values["g_opt"], g_grads, values["g_tv"])
        d_tv, d_opt = gan.d_optimizer.stateless_apply(values["d_opt"], d_grads, values["d_tv"])
        new = {"g_tv": g_tv, "g_ntv": g_ntv, "d_tv": d_tv, "d_ntv": d_ntv, "g_opt": g_opt, "d_opt": d_opt,
               "seed": [seed], "weights": values["weights"], "terms": new_terms}
        return logs, new

    return step


def compiled(gan, kind: str, build: Callable) -> Callable:
    """The jitted function ``kind`` for the model's current active terms and distribution (cached on
    the model; a change of active terms traces again, as ``set_term_weight`` does on TensorFlow)."""
    key = (kind, gan.active_terms(), id(keras.distribution.distribution()))
    cache = gan.__dict__.setdefault("_jax_functions", {})
    if key not in cache:
        cache[key] = build(StepState(gan, key[1]))
    return cache[key]


def train_on_batch(gan, data) -> dict[str, float]:
    """One step on ``data`` (maps, or (maps, z[, u])); returns the logs as Python floats."""
    import jax

    def build(state):
        return state, jax.jit(pure_step(gan, state))

    state, fn = compiled(gan, "step", build)
    parts = tuple(data) if isinstance(data, (tuple, list)) else (data,)
    real, z, u = (parts + (None, None))[:3]
    real = shard_batch(np.asarray(real, np.float32) if isinstance(real, np.ndarray) else real)
    logs, new = fn(state.read(), real, z, u)
    state.write(new)
    out = {k: float(v) for k, v in logs.items()}
    gan.hold(out)
    return out


def multi_step(gan, k: int, batch_fn: Callable) -> Callable:
    """A compiled function running ``k`` steps in one call, ``(values, start, data) -> (logs, values)``
    with logs stacked (k,) per name, where ``batch_fn(i, data)`` gives step i's real batch on the
    device (i = start, ..., start + k - 1, a traced integer; ``data`` any arrays it needs). For
    accelerators: one host round trip per k steps; the steps are those of :func:`train_on_batch`."""
    import jax

    def build(state):
        step = pure_step(gan, state)

        def run(values, start, data):
            def body(values, i):
                logs, values = step(values, batch_fn(i, data), None, None)
                return values, logs

            values, logs = jax.lax.scan(body, values, start + jax.numpy.arange(k))
            return logs, values

        return state, jax.jit(run)

    return compiled(gan, f"multi{k}:{id(batch_fn)}", build)
