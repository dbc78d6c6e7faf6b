"""Generation throughput and training step time for the paper and CPU presets, as FLOP efficiency.

Run: ``pytest benchmarks/bench_models.py --benchmark-only``. Each result's extra_info holds the
model FLOPs, achieved FLOP/s, and the ratio to the matmul throughput measured in the same run.
The paper preset's training step takes about a minute on 2 CPU cores (one round).
"""
import numpy as np
import pytest

from paper_repro.config import get_preset
from paper_repro.gan.models import flops_per_map


@pytest.mark.parametrize("preset, batch", [("paper", 64), ("cpu64", 256)])
def test_generation_throughput(benchmark, matmul_peak, preset, batch):
    from paper_repro.gan.models import build_generator
    p = get_preset(preset)
    g = build_generator(p, seed=0)
    z = np.random.default_rng(0).standard_normal((batch, p.model.latent_dim)).astype(np.float32)
    g(z, training=False)
    benchmark.pedantic(lambda: np.asarray(g(z, training=False)), rounds=3, iterations=1, warmup_rounds=1)
    t = benchmark.stats.stats.min
    flops = flops_per_map(p.model)["generator"] * batch
    benchmark.extra_info.update({
        "maps_per_s": batch / t, "gflop_per_map": flops / batch / 1e9,
        "achieved_gflops": flops / t / 1e9, "matmul_gflops": matmul_peak / 1e9,
        "efficiency": flops / t / matmul_peak})


@pytest.mark.parametrize("preset", ["paper", "cpu64"])
def test_training_step_time(benchmark, matmul_peak, preset):
    from paper_repro.gan.cosmogan import CosmoGAN
    p = get_preset(preset)
    gan = CosmoGAN.from_preset(p, seed=0)
    b, s = p.training.batch_size, p.model.image_size
    real = (np.random.default_rng(0).normal(0, 0.05, (b, s, s, 1))).astype(np.float32)
    gan.train_on_batch(real)  # trace
    rounds = 1 if preset == "paper" else 5
    benchmark.pedantic(lambda: gan.train_on_batch(real), rounds=rounds, iterations=1)
    t = benchmark.stats.stats.min
    f = flops_per_map(p.model)
    # 3x forward per network pass (forward + two backward products), plus one more D backward
    # through the fake half for the generator's gradient
    flops = b * (3 * f["generator"] + 3 * f["discriminator"] + 4 * f["discriminator"])
    benchmark.extra_info.update({
        "step_s": t, "maps_per_s": b / t, "tflop_per_step": flops / 1e12,
        "achieved_gflops": flops / t / 1e9, "matmul_gflops": matmul_peak / 1e9,
        "efficiency": flops / t / matmul_peak})
