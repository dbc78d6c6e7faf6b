"""Runs the backend checks that need their own process (Keras picks its backend at import).

``python -m tests.gan.backend_worker DIR`` with ``KERAS_BACKEND=jax`` (and 2 virtual CPU devices
from ``XLA_FLAGS``) reads what the TensorFlow side left in DIR and writes its results there:
steps.npz (the injected-draw steps from TF's initial state), resume/ (a run killed and resumed),
tf_resumed/ (TF's killed run resumed here), parallel.npz (2 devices vs 1), mixed.json (bf16
steps), device_loop.json (the compiled k-step loop vs single steps). Not a test module itself.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import keras
import numpy as np

from paper_repro.config import DATASET_PRESETS, get_preset
from paper_repro.gan.cosmogan import CosmoGAN
from paper_repro.gan.devices import compute_on
from paper_repro.gan.training import train
from tests.helpers import KillAfter, Killed, smooth_maps

STEPS = 8           # injected-draw steps compared across backends
PROBE_AT = 4        # the step after which outputs and weights are compared
SWAP_AT = 3         # the step whose swap draw u is below flip_prob
SHIPPED = Path(__file__).resolve().parents[2] / "paper_repro" / "reference_model"


def draws(latent_dim: int, steps: int = STEPS, batch: int = 16):
    """The latents and swap uniforms both backends feed their steps."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((steps, batch, latent_dim)).astype(np.float32)
    u = np.full(steps, 0.5, np.float32)
    u[SWAP_AT] = 0.001
    return z, u


def real_batch() -> np.ndarray:
    return smooth_maps(16, 32, seed=1)[..., None] * 2.5


def probe(gan) -> dict:
    """G's and D's outputs in training mode on fixed inputs (batch-norm statistics of the batch, so
    the biases in front of a batch norm, which Adam moves on rounding noise alone, cancel)."""
    z = np.random.default_rng(9).standard_normal((16, gan.latent_dim)).astype(np.float32)
    return {"g": keras.ops.convert_to_numpy(gan.generator(z, training=True)),
            "d": keras.ops.convert_to_numpy(gan.discriminator(real_batch(), training=True))}


def injected_steps(gan, steps: int = STEPS, probe_at: int = PROBE_AT) -> dict:
    """``steps`` steps on the fixed batch with injected draws: losses (steps, 3), and G's and D's
    outputs (:func:`probe`) and weights (:func:`named_weights`, keys "w:<path>") after ``probe_at`` steps."""
    z, u = draws(gan.latent_dim, steps)
    real = real_batch()
    logs, out = [], {}
    for k in range(steps):
        logs.append(gan.train_on_batch((real, z[k], u[k]), return_dict=True))
        if k + 1 == probe_at:
            out.update(probe(gan))
            out.update({f"w:{name}": v for name, v in named_weights(gan).items()})
    out["losses"] = np.array([[x["d_loss"], x["g_loss"], x["flipped"]] for x in logs])
    return out


def named_weights(gan) -> dict:
    """Kernels and batch-norm scales/offsets of G and D ("G:<path>", "D:<path>"): the weights with a gradient."""
    return {f"{tag}:{v.path}": keras.ops.convert_to_numpy(v)
            for tag, model in (("G", gan.generator), ("D", gan.discriminator)) for v in model.weights
            if v.path.rsplit("/", 1)[-1] in ("kernel", "gamma", "beta")}


def load_state(gan, path: Path) -> None:
    with np.load(path) as f:
        gan.set_state([f[k] for k in sorted(f.files, key=lambda s: int(s[1:]))])


def main(out: Path) -> None:
    data = out / "maps.npy"
    # 0. the shipped generator (written on TensorFlow) on this backend
    from paper_repro.gan import runs

    z = np.random.default_rng(5).standard_normal((4, 64)).astype(np.float32)
    g = runs.load_generator(SHIPPED)[0]
    z = z[:, :g.input_shape[-1]]
    np.savez(out / "shipped.npz", z=z, maps=keras.ops.convert_to_numpy(g(z, training=False)))

    # 1. the steps from TF's initial state, with TF's draws
    gan = CosmoGAN.from_preset("tiny", seed=3)
    load_state(gan, out / "init.npz")
    first = injected_steps(gan)
    np.savez(out / "steps.npz", **first)
    one_sharding = str(gan.generator.weights[0].value.sharding)

    # 2. resume equals an uninterrupted run (checkpoint every 4 steps; killed at step 10, after the
    #    mid-epoch checkpoint of step 8)
    preset = get_preset("tiny").replace(checkpoint_every=4)
    train(out / "jax_full", preset, data, seed=7, progress=False)
    try:
        train(out / "jax_resumed", preset, data, seed=7, progress=False, callbacks=[KillAfter(10)])
    except Killed:
        pass
    train(out / "jax_resumed", resume=True, progress=False)

    # 3. a run TensorFlow wrote and that was killed, resumed and finished here
    shutil.copytree(out / "tf_killed", out / "tf_resumed")
    train(out / "tf_resumed", resume=True, progress=False)

    # 4. two devices, global batch 16, against one device from the same state and draws: the one-device
    #    side is step 1's run (the same 4 first steps, probed after them; one compilation fewer)
    one = {k: v for k, v in first.items() if k != "losses"}
    results = {"one": {**one, "losses": first["losses"][:PROBE_AT], "sharding": one_sharding}}
    with compute_on(2):
        gan = CosmoGAN.from_preset("tiny", seed=3)
        load_state(gan, out / "init.npz")
        results["two"] = injected_steps(gan, steps=PROBE_AT, probe_at=PROBE_AT)
        results["two"]["sharding"] = str(gan.generator.weights[0].value.sharding)
    np.savez(out / "parallel.npz", **{f"{n}:{k}": v for n, r in results.items() for k, v in r.items()})

    # 5. mixed precision: bf16 compute, float32 weights and losses
    with compute_on(None, "mixed_bfloat16"):
        gan = CosmoGAN.from_preset("tiny", seed=3)
        logs = [gan.train_on_batch(real_batch(), return_dict=True) for _ in range(3)]
        dtypes = {"compute": gan.generator.layers[1].compute_dtype, "weights": gan.generator.weights[0].dtype}
    (out / "mixed.json").write_text(json.dumps({"logs": logs, "dtypes": dtypes}))

    # 6. the compiled k-step loop on crops cut on the device, against single steps on host batches
    from paper_repro.gan.accelerated import DeviceLoop
    from paper_repro.maps.crops import ParentCrops

    source = ParentCrops.simulate(DATASET_PRESETS["tiny"], "train", progress=False)
    training = get_preset("tiny").replace(augment_from_epoch=1).training
    a = CosmoGAN.from_preset("tiny", seed=4)
    init = a.get_state()
    loop = DeviceLoop(a, source, training, seed=4, k=2)
    same = all(np.array_equal(loop.host_batch(e, s), loop.device_batch(e, s))
               for e, s in ((0, 0), (0, loop.steps_per_epoch - 1), (1, 2)))
    steps = loop.steps_per_epoch + 2          # crosses an epoch (4 steps each): three calls of 2 steps
    history = loop.run(steps)
    b = CosmoGAN.from_preset("tiny", seed=4)
    b.set_state(init)
    single = [b.train_on_batch(loop.host_batch(*divmod(g, loop.steps_per_epoch)), return_dict=True)
              for g in range(steps)]
    (out / "device_loop.json").write_text(json.dumps({
        "same_batches": same, "steps": steps,
        "loop": {k: history[k].tolist() for k in ("d_loss", "g_loss")},
        "single": {k: [x[k] for x in single] for k in ("d_loss", "g_loss")}}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
