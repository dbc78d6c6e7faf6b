"""The copying test (the certification's memorisation criterion): time at the paper's map size and at
the certification's default size.

Run: ``pytest benchmarks/bench_copying.py --benchmark-only`` (one round each; a minute or two on 2
CPU cores, plus building the cpu datasets on first use). Each result's extra_info holds the wall
and CPU seconds (CPU time, summed over threads, is the steadier number on a shared machine) and what
the test found.
"""
import time

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from paper_repro.evaluation.reproduction import DATA_ROOT, ensure_dataset
from paper_repro.maps.datasets import open_split
from paper_repro.stats.copying import copying_test
from tests.stats.references import plant_copies


def smooth(n, size, seed):
    """Smooth random maps (Gaussian-filtered white noise, ~0.05 rms), float32."""
    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.standard_normal((n, size, size), dtype=np.float32), sigma=(0, 2, 2), mode="wrap")
    return x * np.float32(0.05 / x.std())


def timed(benchmark, fn):
    """One timed round: (result, wall seconds, CPU seconds)."""
    box = {}

    def call():
        t, c = time.perf_counter(), time.process_time()
        box["res"] = fn()
        box["wall"], box["cpu"] = time.perf_counter() - t, time.process_time() - c

    benchmark.pedantic(call, rounds=1, iterations=1)
    return box["res"], box["wall"], box["cpu"]


@pytest.mark.parametrize("kind", ["turned", "noisy"])
def test_copying_test_512_vs_512_at_256(benchmark, kind):
    """512 generated maps of 256^2, a quarter of them copies (rolled and turned, or also noisy at 10%
    of the rms), against 512 training maps and 512 held-out maps: every copy must be flagged."""
    train, held = smooth(512, 256, 1), smooth(512, 256, 2)
    q, idx, src = plant_copies(smooth(512, 256, 3), train, 0.25, kind, seed=4)
    v, wall, cpu = timed(benchmark, lambda: copying_test(q, train, held))
    benchmark.extra_info.update({"seconds": wall, "cpu_seconds": cpu, "n_generated": 512, "n_training": 512,
                                 "n_held_out": 512, "size": 256, "copies": len(idx),
                                 "flagged": v.training_tail, "p_value": v.p_value,
                                 "certified_outlying": v.certified_outlying})
    assert not v.passed and v.training_outliers == idx.tolist()


def test_certification_memorisation_step_4000_at_64(benchmark):
    """The certification's memorisation step at its defaults: 4,000 generated maps of 64^2 (here the
    cpu dataset's validation split, 2% replaced by noisy copies) against the cpu training set (25,600
    maps, 3 training sets) and the reference held-out maps (8,000)."""
    train_dir = ensure_dataset(DATA_ROOT / "cpu", "cpu", progress=False)
    ref_dir = ensure_dataset(DATA_ROOT / "reference", "reference", progress=False)
    train = open_split(train_dir, "train")
    held = np.concatenate([np.asarray(open_split(ref_dir, "validation")), np.asarray(open_split(ref_dir, "auxiliary"))])
    vp = np.load(ref_dir / "validation_index.npy")[:, 0]
    hp = np.concatenate([vp, np.load(ref_dir / "auxiliary_index.npy")[:, 0] + vp.max() + 1])
    q, idx, _ = plant_copies(open_split(train_dir, "validation")[:4000], train, 0.02, "noisy", seed=5)
    v, wall, cpu = timed(benchmark, lambda: copying_test(
        q, train, held, training_parents=np.load(train_dir / "train_index.npy")[:, 0], held_out_parents=hp))
    benchmark.extra_info.update({"seconds": wall, "cpu_seconds": cpu, "n_generated": len(q),
                                 "n_training": len(train), "n_held_out": len(held), "copies": len(idx),
                                 "flagged": v.training_tail, "p_value": v.p_value})
    assert not v.passed and set(idx.tolist()) <= set(v.training_outliers)
