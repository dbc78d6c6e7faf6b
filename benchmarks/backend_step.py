"""``python -m benchmarks.backend_step --preset cpu64 --steps 10 [--devices N]``: seconds per
training step on the backend ``KERAS_BACKEND`` selects, as one JSON line (used by bench_backends.py,
which needs each backend in its own process)."""
import argparse
import json
import os
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="cpu64")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--devices", type=int, default=None)
    args = ap.parse_args()
    cpus = int(os.environ.get("PAPER_REPRO_TF_LOGICAL_CPUS", "0"))
    if cpus > 1 and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import tensorflow as tf  # logical devices must be set before TensorFlow's runtime starts

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpus)
    import keras

    from paper_repro.config import get_preset
    from paper_repro.gan.cosmogan import CosmoGAN
    from paper_repro.gan.devices import compute_on

    p = get_preset(args.preset)
    size, batch = p.model.image_size, p.training.batch_size
    real = np.random.default_rng(0).standard_normal((batch, size, size, 1)).astype(np.float32) * 0.05
    with compute_on(args.devices):
        gan = CosmoGAN.from_preset(p, seed=1)
        for _ in range(2):                       # trace / compile
            gan.train_on_batch(real)
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            gan.train_on_batch(real)             # returns Python floats: the step has finished
            times.append(time.perf_counter() - t0)
    print(json.dumps({"backend": keras.backend.backend(), "devices": args.devices or 1,
                      "median_s": float(np.median(times)), "min_s": float(np.min(times))}))


if __name__ == "__main__":
    main()
