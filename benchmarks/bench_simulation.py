"""Simulator and dataset-pipeline speed: maps/s per field model at the paper's 1024^2 (from 2048^2),
crops/s, the wall time of the default ``cpu`` dataset, and an estimate for the ``paper`` one.

Run: ``pytest benchmarks/bench_simulation.py --benchmark-only``. Results are in each benchmark's
extra_info (``--benchmark-json`` keeps them). The ``cpu`` build writes ~0.6 GB to a temporary
directory; the paper-sized estimate builds a 4-map sample of the ``paper`` preset (~0.2 GB).
"""
import dataclasses

import numpy as np
import pytest

from paper_repro.config import SimulationConfig, SplitSizes, get_dataset_preset
from paper_repro.maps import simulation
from paper_repro.maps.datasets import build_dataset, random_crops
from paper_repro.maps.simulation import get_simulator


@pytest.mark.parametrize("model", ["lognormal", "gaussian"])
def test_setup_time(benchmark, model):
    """Per-configuration work: pyccl C_ell (cold caches) and, for log-normal, the grid transform."""
    cfg = SimulationConfig(model=model)

    def cold():
        simulation.cl_spline.cache_clear()
        simulation.ccl_cosmology.cache_clear()
        simulation.empty_beam_convergence.cache_clear()
        return simulation.ConvergenceSimulator(cfg)

    benchmark.pedantic(cold, rounds=2, iterations=1)
    benchmark.extra_info["setup_s"] = benchmark.stats.stats.min


@pytest.mark.parametrize("model", ["lognormal", "gaussian"])
def test_map_rate(benchmark, model):
    """One 1024^2 map over 3.464 deg (2048^2 fine grid averaged 2x2)."""
    sim = get_simulator(SimulationConfig(model=model))
    seeds = iter(range(10_000))
    benchmark.pedantic(lambda: sim.map(next(seeds)), rounds=8, iterations=1, warmup_rounds=1)
    benchmark.extra_info["maps_per_s"] = 1.0 / benchmark.stats.stats.mean


def test_crop_rate(benchmark):
    """200 random 256^2 crops of one 1024^2 map (the paper's cut), crops/s."""
    image = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    rngs = iter(range(10_000))
    benchmark.pedantic(lambda: random_crops(image, 256, 200, next(rngs)), rounds=10, iterations=1)
    benchmark.extra_info["crops_per_s"] = 200 / benchmark.stats.stats.mean


def test_cpu_dataset_build(benchmark, tmp_path):
    """Wall time of the default ``paper-repro simulate`` (the ``cpu`` preset), one round."""
    cfg = get_dataset_preset("cpu")
    dirs = iter(range(100))
    benchmark.pedantic(lambda: build_dataset(tmp_path / f"cpu{next(dirs)}", cfg), rounds=1,
                       iterations=1)
    t = benchmark.stats.stats.min
    n_parent = sum(n for _, n in cfg.splits.items())
    n_crops = n_parent * cfg.crops_per_map
    benchmark.extra_info.update({"wall_s": t, "parent_maps": n_parent, "crops": n_crops,
                                 "crops_per_s": n_crops / t, "parent_maps_per_s": n_parent / t})


def test_paper_dataset_estimate(benchmark, tmp_path):
    """Builds 4 parent maps (800 crops of 256^2) of the ``paper`` preset and scales the time."""
    paper = get_dataset_preset("paper")
    sample = dataclasses.replace(paper, splits=SplitSizes(train=4, validation=0, development=0,
                                                          auxiliary=0))
    dirs = iter(range(100))
    benchmark.pedantic(lambda: build_dataset(tmp_path / f"paper{next(dirs)}", sample), rounds=1,
                       iterations=1)
    t = benchmark.stats.stats.min
    per_parent = t / 4
    total_parent = sum(n for _, n in paper.splits.items())
    total_crops = total_parent * paper.crops_per_map
    benchmark.extra_info.update({
        "sample_wall_s": t, "s_per_parent_map": per_parent,
        "estimated_paper_wall_s": per_parent * total_parent,
        "estimated_paper_wall_h": per_parent * total_parent / 3600,
        "paper_parent_maps": total_parent, "paper_crops": total_crops,
        "paper_train_crops": paper.n_crops("train"),
        "paper_disk_gb": total_crops * 256 * 256 * 4 / 1e9})
