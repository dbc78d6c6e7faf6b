"""Throughput of paper_repro.stats (power, morphology) (maps/s) and of the bootstrapped comparison (replicates/s).

Run: ``pytest benchmarks/bench_statistics.py --benchmark-only``. maps/s is in each benchmark's
extra_info (``--benchmark-json`` keeps it). The side-by-side comparison with LensTools 1.2 (which
needs NumPy < 1.24) is ``tox -e lenstools``: tests_lenstools/bench_vs_lenstools.py.
"""
import numpy as np
import pytest

from paper_repro.stats import morphology, power
from paper_repro.stats import twosample as C

N_MAPS = 32


def maps_of(size: int) -> np.ndarray:
    rng = np.random.default_rng(size)
    g = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((N_MAPS, size, size)))
                      * np.exp(-(np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
                                 * size / 10.0) ** 2), s=(size, size))
    return (0.02 * (np.exp(g / g.std()) - 1)).astype(np.float32)


STATISTICS = {
    "power_spectrum": lambda m, w: power.power_spectrum(m, 0.866 * m.shape[1] / 256, workers=w),
    "minkowski_functionals": lambda m, w: morphology.minkowski_functionals(m, workers=w),
    "peak_counts": lambda m, w: morphology.peak_counts(m, workers=w),
    "moments": lambda m, w: morphology.moments(m, workers=w),
    "pixel_histogram": lambda m, w: morphology.pixel_histogram(m, np.linspace(-0.1, 0.3, 51), workers=w),
}


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("stat", list(STATISTICS))
def test_statistic_throughput(benchmark, stat, size, workers):
    """maps/s of one statistic on a batch of 32 float32 maps (the paper's maps are 256^2)."""
    maps = maps_of(size)
    fn = STATISTICS[stat]
    benchmark.group = f"{stat} {size}px"
    benchmark.pedantic(lambda: fn(maps, workers), rounds=5, warmup_rounds=1, iterations=1)
    benchmark.extra_info["maps_per_s"] = N_MAPS / benchmark.stats.stats.min


@pytest.mark.parametrize("components", [248, 57])
def test_bootstrap_replicate_rate(benchmark, components):
    """Bootstrap replicates/s: KS and AD on every component, 500 vs 500 maps (paper: 248 + 57 components)."""
    rng = np.random.default_rng(0)
    a = rng.lognormal(size=(1000, components))
    b = rng.lognormal(size=(1000, components))
    reps = 10
    benchmark.pedantic(lambda: C.bootstrap_tests(a, b, n_sub=500, replicates=reps, seed=1),
                       rounds=3, iterations=1)
    benchmark.extra_info["replicates_per_s"] = reps / benchmark.stats.stats.min
