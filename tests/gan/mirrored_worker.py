"""``python -m tests.gan.mirrored_worker OUT``: the TF data-parallel check in its own process.

TensorFlow's logical devices must be set before its runtime starts, so this runs apart from the
test session: 4 steps of the tiny preset on 2 logical CPUs under ``MirroredStrategy`` and on one
device, from the same state and draws; writes OUT (npz) for tests/gan/test_backends.py.
"""
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from paper_repro.gan.cosmogan import CosmoGAN  # noqa: E402
from paper_repro.gan.devices import compute_on  # noqa: E402
from tests.gan.backend_worker import injected_steps  # noqa: E402


def main(out: str) -> None:
    results, state = {}, None
    for name, devices in (("one", None), ("two", 2)):
        with compute_on(devices) as strategy:
            gan = CosmoGAN.from_preset("tiny", seed=3)
            if state is None:
                state = gan.get_state()
            else:
                gan.set_state(state)
            results[name] = injected_steps(gan, steps=4, probe_at=4)
            results[name]["replicas"] = np.array(1 if strategy is None else strategy.num_replicas_in_sync)
            config = gan.generator.get_config()
            results[name]["saved_synchronized"] = np.array(
                any(layer["config"].get("synchronized", False) for layer in config["layers"]))
    np.savez(out, **{f"{n}:{k}": v for n, r in results.items() for k, v in r.items()})


if __name__ == "__main__":
    main(sys.argv[1])
