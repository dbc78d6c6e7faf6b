"""Cost of the data side of a cpu64 training step: reading a batch, and turning it by random
square symmetries (``augment_from_epoch``), against the adversarial step itself; and the cost of
the epoch-end discriminator monitor (``monitor_maps``) against a whole epoch of steps.

Run: ``pytest benchmarks/bench_training.py --benchmark-only``; extra_info holds each time as a
fraction of the cpu64 training step measured in the same run.
"""
import numpy as np
import pytest

from paper_repro.config import get_preset
from paper_repro.gan.batches import read_batch, symmetry_augment


@pytest.fixture(scope="module")
def cpu64_step_s():
    """Best of 3 cpu64 training steps (seconds), measured once for this module."""
    import time

    from paper_repro.gan.cosmogan import CosmoGAN
    p = get_preset("cpu64")
    gan = CosmoGAN.from_preset(p, seed=0)
    real = np.random.default_rng(0).normal(0, 0.05, (p.training.batch_size, 64, 64, 1)).astype(np.float32)
    gan.train_on_batch(real)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        gan.train_on_batch(real)
        best = min(best, time.perf_counter() - t)
    return best


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    path = tmp_path_factory.mktemp("maps") / "maps.npy"
    np.save(path, np.random.default_rng(1).normal(0, 0.02, (4096, 64, 64)).astype(np.float32))
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("augment", [False, True], ids=["read", "read+augment"])
def test_batch_preparation(benchmark, cpu64_step_s, maps, augment):
    idx = np.random.default_rng(2).permutation(len(maps))[:64]

    def prepare():
        batch = read_batch(maps, idx, 2.5)
        return symmetry_augment(batch, 0, 0, 0) if augment else batch

    benchmark.pedantic(prepare, rounds=20, iterations=1, warmup_rounds=2)
    t = benchmark.stats.stats.min
    benchmark.extra_info.update({"batch_s": t, "step_s": cpu64_step_s, "fraction_of_step": t / cpu64_step_s})


def test_discriminator_monitor(benchmark, cpu64_step_s, maps, tmp_path):
    """One row of discriminator.csv: the discriminator's verdict on 512 training + 512 development
    maps, against the 400 steps of a cpu64 epoch over 25,600 maps."""
    from paper_repro.gan.callbacks import DiscriminatorMonitor, RunState
    from paper_repro.gan.cosmogan import CosmoGAN
    p = get_preset("cpu64")
    gan = CosmoGAN.from_preset(p, seed=0)
    n = p.training.monitor_maps
    sets = {"training": np.asarray(maps[:n]), "development": np.asarray(maps[n:2 * n])}
    monitor = DiscriminatorMonitor(tmp_path, RunState(), sets, p.training.data_scale)
    monitor.set_model(gan)
    monitor.on_train_begin()
    benchmark.pedantic(monitor.on_epoch_end, args=(0,), rounds=5, iterations=1, warmup_rounds=1)
    t = benchmark.stats.stats.min
    epoch_s = 400 * cpu64_step_s
    benchmark.extra_info.update({"monitor_s": t, "step_s": cpu64_step_s, "epoch_s": epoch_s,
                                 "fraction_of_epoch": t / epoch_s})
