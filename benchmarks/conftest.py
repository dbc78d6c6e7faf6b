"""Benchmark helpers: a matmul throughput measured in the same run, so speeds become ratios."""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "agg")

import pytest


def measure_matmul_flops(n: int = 2048, repeats: int = 10) -> float:
    """Best-of-``repeats`` float32 matmul throughput of TensorFlow on this machine (FLOP/s)."""
    import tensorflow as tf

    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    tf.linalg.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best


@pytest.fixture(scope="session")
def matmul_peak():
    """Measured matmul FLOP/s (the 'peak' that efficiencies are relative to)."""
    return measure_matmul_flops()
