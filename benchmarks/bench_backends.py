"""cpu64 training step: TensorFlow vs JAX on this CPU, and data-parallel overhead on 2 virtual devices.

Each backend runs in its own process (Keras picks its backend at import); the ratios are of
medians measured in the same benchmark run, one process after the other, with nothing else running.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
ROOT = Path(__file__).resolve().parents[1]


def step_time(backend: str, devices: int | None = None, steps: int = 10) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "benchmarks.backend_step", "--steps", str(steps)]
    if devices:
        cmd += ["--devices", str(devices)]
        if backend == "jax":
            env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        else:
            env["PAPER_REPRO_TF_LOGICAL_CPUS"] = str(devices)
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cpu64_step_tensorflow_vs_jax(benchmark):
    result = {}

    def run():
        result["tensorflow"] = step_time("tensorflow")
        result["jax"] = step_time("jax")

    benchmark.pedantic(run, rounds=1, iterations=1)
    ratio = result["jax"]["median_s"] / result["tensorflow"]["median_s"]
    benchmark.extra_info.update(result, jax_over_tensorflow=ratio)
    print(f"\ncpu64 step: TF {result['tensorflow']['median_s']:.3f} s, JAX {result['jax']['median_s']:.3f} s, "
          f"JAX/TF {ratio:.2f}")


def test_data_parallel_overhead_on_2_virtual_devices(benchmark):
    result = {}

    def run():
        result["jax_1"] = step_time("jax")
        result["jax_2"] = step_time("jax", devices=2)
        result["tensorflow_1"] = step_time("tensorflow")
        result["tensorflow_2"] = step_time("tensorflow", devices=2)

    benchmark.pedantic(run, rounds=1, iterations=1)
    ratios = {b: result[f"{b}_2"]["median_s"] / result[f"{b}_1"]["median_s"] for b in ("jax", "tensorflow")}
    benchmark.extra_info.update(result, two_over_one=ratios)
    print(f"\n2 virtual devices / 1 device, cpu64 step: {ratios}")
