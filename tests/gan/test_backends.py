"""One model, two backends: the paper's step on TensorFlow and JAX, resume across them, data
parallelism on 2 virtual devices, mixed precision, the compiled k-step loop.

The TensorFlow side runs here; the JAX side runs once in a subprocess
(``tests/gan/backend_worker.py``, KERAS_BACKEND=jax, 2 virtual CPU devices), whose results the
tests below read. Tolerances: the first 4 steps' losses agree to 1e-6 and G's and D's outputs and
weights after them to 1e-4 of their scale; the first 8 steps' losses to 1e-4. The float32 kernels
of XLA and TensorFlow differ in the last bits, and Adam's first steps, about lr * sign(gradient),
amplify that wherever a gradient is near 0 (measured: losses equal to 2e-7 for 10 steps, 4e-5 by
step 12, 4e-3 by step 20). Biases in front of a batch norm are not compared: their
true gradient is 0, so Adam turns rounding noise into steps of its learning rate (they cancel in
the batch norm, and the outputs compared are in training mode).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX backend is an extra: pip install -e '.[jax]'")

from paper_repro.config import get_preset  # noqa: E402
from paper_repro.gan import runs  # noqa: E402
from paper_repro.gan.cosmogan import CosmoGAN  # noqa: E402
from paper_repro.gan.training import train  # noqa: E402
from tests.gan import backend_worker as worker  # noqa: E402
from tests.helpers import KillAfter, Killed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exchange(tmp_path_factory, tiny_data):
    """The TF side's initial state, steps and killed run; then the JAX worker's results."""
    out = tmp_path_factory.mktemp("backends")
    shutil.copy(tiny_data, out / "maps.npy")
    gan = CosmoGAN.from_preset("tiny", seed=3)
    np.savez(out / "init.npz", **{f"a{i}": a for i, a in enumerate(gan.get_state())})
    tf_steps = worker.injected_steps(gan)
    preset = get_preset("tiny").replace(checkpoint_every=4)
    with pytest.raises(Killed):
        train(out / "tf_killed", preset, out / "maps.npy", seed=7, progress=False, callbacks=[KillAfter(7)])
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2",
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "tests.gan.backend_worker", str(out)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, tf_steps


def test_first_steps_agree_between_backends(exchange):
    out, tf = exchange
    with np.load(out / "steps.npz") as f:
        jx = {k: f[k] for k in f.files}
    np.testing.assert_array_equal(tf["losses"][:, 2], jx["losses"][:, 2])   # the same swap draws
    assert tf["losses"][worker.SWAP_AT, 2] == 1 and tf["losses"][:, 2].sum() == 1
    np.testing.assert_allclose(jx["losses"][:4, :2], tf["losses"][:4, :2], rtol=0, atol=1e-6)
    np.testing.assert_allclose(jx["losses"][:, :2], tf["losses"][:, :2], rtol=0, atol=1e-4)
    for name in ("g", "d"):
        scale = np.abs(tf[name]).max()
        assert np.abs(jx[name] - tf[name]).max() < 1e-4 * scale, name
    weights = [k for k in tf if k.startswith("w:")]
    assert len(weights) > 20 and set(weights) == {k for k in jx if k.startswith("w:")}
    for k in weights:
        np.testing.assert_allclose(jx[k], tf[k], rtol=0, atol=1e-4 * np.abs(tf[k]).max(), err_msg=k)
    # and the steps did move the weights by more than that
    start = CosmoGAN.from_preset("tiny", seed=3)
    worker.load_state(start, out / "init.npz")
    moved = [np.abs(w - tf[f"w:{k}"]).max() / np.abs(tf[f"w:{k}"]).max() for k, w in worker.named_weights(start).items()]
    assert max(moved) > 0.01


def test_resume_equals_uninterrupted_on_jax(exchange):
    out, _ = exchange
    full, meta_full = runs.load_checkpoint(runs.latest_checkpoint(out / "jax_full"))
    resumed, meta = runs.load_checkpoint(runs.latest_checkpoint(out / "jax_resumed"))
    assert meta["global_step"] == meta_full["global_step"] == 12
    for x, y in zip(resumed, full):
        np.testing.assert_array_equal(x, y)
    steps = [int(r.split(",")[0]) for r in (out / "jax_resumed" / "log.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 13))


def test_a_tensorflow_checkpoint_resumes_on_jax(exchange):
    out, _ = exchange
    killed, meta_killed = runs.load_checkpoint(runs.latest_checkpoint(out / "tf_killed"))
    done, meta = runs.load_checkpoint(runs.latest_checkpoint(out / "tf_resumed"))
    assert meta_killed["global_step"] == 6 and meta["global_step"] == 12 and meta["epoch"] == 2
    assert len(done) == len(killed)
    assert any(not np.array_equal(a, b) for a, b in zip(done, killed))
    assert all(np.isfinite(a).all() for a in done if a.dtype.kind == "f")
    rows = (out / "tf_resumed" / "log.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 13))
    # the generator it saved loads and generates on this (TensorFlow) backend
    import keras
    g = keras.saving.load_model(out / "tf_resumed" / "generator.keras", compile=False)
    assert np.isfinite(g(np.zeros((2, g.input_shape[-1]), np.float32), training=False)).all()


def test_the_shipped_tensorflow_generator_generates_the_same_maps_on_jax(exchange):
    out, _ = exchange
    import keras
    with np.load(out / "shipped.npz") as f:
        z, jax_maps = f["z"], f["maps"]
    g = runs.load_generator(worker.SHIPPED)[0]
    tf_maps = keras.ops.convert_to_numpy(g(z, training=False))
    np.testing.assert_allclose(jax_maps, tf_maps, rtol=0, atol=1e-5)
    assert tf_maps.std() > 0.01


def test_two_devices_take_the_single_device_step_on_jax(exchange):
    out, _ = exchange
    with np.load(out / "parallel.npz") as f:
        r = {k: f[k] for k in f.files}
    assert "batch" in str(r["two:sharding"]) and "batch" not in str(r["one:sharding"])
    np.testing.assert_allclose(r["two:losses"], r["one:losses"], rtol=0, atol=1e-6)
    for name in ("g", "d"):
        np.testing.assert_allclose(r[f"two:{name}"], r[f"one:{name}"], rtol=0,
                                   atol=1e-4 * np.abs(r[f"one:{name}"]).max())


def test_two_devices_take_the_single_device_step_on_tensorflow(tmp_path):
    out = tmp_path / "mirrored.npz"
    proc = subprocess.run([sys.executable, "-m", "tests.gan.mirrored_worker", str(out)], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as f:
        r = {k: f[k] for k in f.files}
    assert int(r["two:replicas"]) == 2 and int(r["one:replicas"]) == 1
    assert not r["two:saved_synchronized"]       # saved models load on JAX (no synchronised BN)
    np.testing.assert_allclose(r["two:losses"], r["one:losses"], rtol=0, atol=1e-6)
    for k in [k[4:] for k in r if k.startswith("one:w:")] + ["g", "d"]:
        np.testing.assert_allclose(r[f"two:{k}"], r[f"one:{k}"], rtol=0,
                                   atol=1e-4 * np.abs(r[f"one:{k}"]).max(), err_msg=k)


def test_mixed_precision_steps_stay_finite_on_jax(exchange):
    out, _ = exchange
    mixed = json.loads((out / "mixed.json").read_text())
    assert mixed["dtypes"] == {"compute": "bfloat16", "weights": "float32"}
    for logs in mixed["logs"]:
        assert np.isfinite([logs["d_loss"], logs["g_loss"]]).all()
        assert 0 < logs["d_loss"] < 10 and 0 < logs["g_loss"] < 10


def test_compiled_loop_cuts_the_host_batches_and_takes_the_same_steps(exchange):
    out, _ = exchange
    loop = json.loads((out / "device_loop.json").read_text())
    assert loop["same_batches"] and len(loop["loop"]["d_loss"]) == loop["steps"]
    for k in ("d_loss", "g_loss"):
        np.testing.assert_allclose(loop["loop"][k], loop["single"][k], rtol=0, atol=1e-5)


def test_mixed_precision_step_on_tensorflow():
    from paper_repro.gan.devices import compute_on
    with compute_on(None, "mixed_bfloat16"):
        gan = CosmoGAN.from_preset("tiny", seed=3)
        logs = [gan.train_on_batch(worker.real_batch(), return_dict=True) for _ in range(2)]
    assert gan.generator.layers[1].compute_dtype == "bfloat16"
    assert all(np.isfinite([x["d_loss"], x["g_loss"]]).all() for x in logs)
