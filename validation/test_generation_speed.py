"""Sect. 3.1: generation speed (maps/s), next to a matmul throughput measured in the same run."""
import numpy as np


def test_generation_speed(benchmark, run_dir, report):
    from paper_repro.evaluation.certification import generation_speed
    from paper_repro.gan.models import flops_per_map
    from paper_repro.gan.runs import load_generator

    model, preset = load_generator(run_dir)
    z = np.random.default_rng(0).standard_normal((256, preset.model.latent_dim)).astype(np.float32)
    model(z, training=False)
    benchmark.pedantic(lambda: np.asarray(model(z, training=False)), rounds=5, iterations=1)
    speed = generation_speed(model, preset.model.latent_dim,
                             flops_per_map=flops_per_map(preset.model)["generator"])
    speed["maps_per_s_benchmark"] = 256 / benchmark.stats.stats.min
    benchmark.extra_info.update(speed)
    report.speed = speed
    assert speed["maps_per_s"] > 0 and np.isfinite(speed["efficiency"])
