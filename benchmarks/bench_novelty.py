"""Novelty searches: nearest-neighbour throughput against a memory-mapped set, birthday search time and memory.

Run: ``pytest benchmarks/bench_novelty.py --benchmark-only`` (a few minutes on 2 CPU cores; one
round each). The paper's sizes (200,000 training maps and 32,768-map batches of 256^2, 52 GB and
8.6 GB of float32) are scaled down; each result's extra_info holds the measured rates and the
extrapolation to the paper's size, which follows from the cost model of the exact searches:
pixel search and pair search are float32 matrix products, time ~ N_query x N_ref x H x W (pairs: N^2/2).
The memory-mapped files are freshly written, so they are read from the page cache, not a cold disk.
"""
import math
import time
import tracemalloc

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from paper_repro.maps.io import open_maps
from paper_repro.stats.distances import DEFAULTS, closest_pairs
from paper_repro.stats.neighbours import nearest_neighbors
from paper_repro.stats.power import power_features

PAPER_TRAIN, PAPER_BATCH, PAPER_SIZE = 200_000, 32_768, 256
BLOCK = 256 * 2**20


def write_maps(path, n, size, seed, chunk=512):
    """Smooth random maps (Gaussian-filtered noise, ~0.05 rms) written chunk by chunk to a .npy file."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, size, size))
    for s in range(0, n, chunk):
        x = gaussian_filter(rng.standard_normal((min(chunk, n - s), size, size), dtype=np.float32),
                            sigma=(0, 2, 2), mode="wrap")
        out[s:s + len(x)] = x * (0.05 / 0.14)
    out.flush()
    del out
    return path


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    d = tmp_path_factory.mktemp("novelty")
    return {
        (256, "ref"): write_maps(d / "ref256.npy", 2000, 256, 1),
        (256, "q"): write_maps(d / "q256.npy", 512, 256, 2),
        (64, "ref"): write_maps(d / "ref64.npy", 20000, 64, 3),
        (64, "q"): write_maps(d / "q64.npy", 256, 64, 4),
        (64, "batch"): write_maps(d / "batch64.npy", 8192, 64, 5),
        (256, "batch"): write_maps(d / "batch256.npy", 2048, 256, 6),
    }


def sgemm_gflops(m, n, k, repeats=3):
    """Best-of-``repeats`` numpy float32 (m, k) @ (k, n) rate right now: the machine is shared, so
    each search's GFLOP/s is also given as a fraction of this bare product of its block shape."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((n, k), dtype=np.float32)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b.T
        best = min(best, time.perf_counter() - t)
    return 2.0 * m * n * k / best / 1e9


def run_once(benchmark, fn):
    """One timed round; returns (result, seconds, peak traced bytes)."""
    box = {}

    def call():
        tracemalloc.start()
        t = time.perf_counter()
        box["res"] = fn()
        box["t"] = time.perf_counter() - t
        box["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    benchmark.pedantic(call, rounds=1, iterations=1)
    return box["res"], box["t"], box["peak"]


@pytest.mark.parametrize("size", [64, 256])
def test_pixel_nn_throughput(benchmark, sets, size):
    ref = open_maps(sets[(size, "ref")])
    q = np.load(sets[(size, "q")])
    res, t, peak = run_once(benchmark, lambda: nearest_neighbors(q, ref, k=1, space="pixel", block_bytes=BLOCK))
    pairs = len(q) * len(ref)
    rate = pairs * size * size / t                      # pixel pairs per second
    paper_q_per_s = rate / (PAPER_TRAIN * PAPER_SIZE ** 2)
    row = 4 * size * size                               # the blocks nearest_neighbors uses
    ref_gemm = sgemm_gflops(min(len(q), BLOCK // row), min(len(ref), BLOCK // row), size * size)
    benchmark.extra_info.update({
        "n_queries": len(q), "n_reference": len(ref), "size": size, "seconds": t,
        "queries_per_s": len(q) / t, "gflops": 2 * rate / 1e9, "sgemm_same_shape_gflops": ref_gemm,
        "fraction_of_sgemm": 2 * rate / 1e9 / ref_gemm, "peak_traced_mb": peak / 2**20,
        "paper_queries_per_s_extrapolated": paper_q_per_s,
        "paper_1000_queries_s_extrapolated": 1000 / paper_q_per_s})
    assert res.indices.shape == (len(q), 1)


def test_power_features_throughput(benchmark, sets):
    maps = open_maps(sets[(256, "ref")])[:400]
    _, t, peak = run_once(benchmark, lambda: power_features(maps))
    benchmark.extra_info.update({"maps_per_s": len(maps) / t, "peak_traced_mb": peak / 2**20,
                                 "paper_training_set_s_extrapolated": PAPER_TRAIN * t / len(maps)})


@pytest.mark.parametrize("size, n_ref, n_q", [(64, 20000, 32), (256, 2000, 4)])
def test_invariant_nn_prefilter_throughput(benchmark, sets, size, n_ref, n_q):
    ref = open_maps(sets[(size, "ref")])[:n_ref]
    q = np.load(sets[(size, "q")])[:n_q]
    res, t, peak = run_once(benchmark, lambda: nearest_neighbors(
        q, ref, k=1, space="invariant", standardize=True, candidates=DEFAULTS.prefilter_candidates,
        lb_modes=DEFAULTS.prefilter_modes, block_bytes=BLOCK))
    benchmark.extra_info.update({
        "n_queries": n_q, "n_reference": n_ref, "size": size, "seconds": t, "queries_per_s": n_q / t,
        "certified_fraction": float(res.certified.mean()), "peak_traced_mb": peak / 2**20})


@pytest.mark.parametrize("size", [64, 256])
def test_birthday_pair_search(benchmark, sets, size):
    batch = open_maps(sets[(size, "batch")])
    n = len(batch)
    res, t, peak = run_once(benchmark, lambda: closest_pairs(batch, 10, threshold=0.0, block_bytes=BLOCK))
    pairs = n * (n - 1) / 2
    rate = pairs * size * size / t
    paper_s = PAPER_BATCH * (PAPER_BATCH - 1) / 2 * PAPER_SIZE ** 2 / rate
    step = min(n, BLOCK // (4 * size * size), 2048)
    ref_gemm = sgemm_gflops(step, step, size * size)
    benchmark.extra_info.update({
        "n_maps": n, "size": size, "seconds": t, "pairs_per_s": pairs / t, "gflops": 2 * rate / 1e9,
        "sgemm_same_shape_gflops": ref_gemm, "fraction_of_sgemm": 2 * rate / 1e9 / ref_gemm,
        "peak_traced_mb": peak / 2**20, "input_mb": batch.nbytes / 2**20,
        "paper_32768x256_s_extrapolated": paper_s})
    assert len(res.distances) == 10 and np.all(np.diff(res.distances) >= 0)


def test_invariant_candidate_search_512_vs_512_at_256(benchmark, sets):
    """The copying test's search at the paper's size: 512 query maps (a quarter of them shifted,
    flipped, noisy copies) against 512 reference maps of 256^2, shift/flip invariant, with the
    default prefilter (amplitude bounds, coarse ranking, exact verification)."""
    ref = np.asarray(open_maps(sets[(256, "ref")])[:512])
    q = np.load(sets[(256, "q")])
    rng = np.random.default_rng(7)
    src = rng.choice(len(ref), 128, replace=False)
    for a, s in enumerate(src):
        x = np.roll(ref[s][:, ::-1] if a % 2 else ref[s], tuple(rng.integers(0, 256, 2)), axis=(0, 1))
        q[a] = x + 0.005 * rng.standard_normal(x.shape).astype(np.float32)
    res, t, peak = run_once(benchmark, lambda: nearest_neighbors(
        q, ref, k=1, space="invariant", standardize=True, candidates=DEFAULTS.prefilter_candidates,
        lb_modes=DEFAULTS.prefilter_modes, block_bytes=BLOCK))
    found = float(np.mean(res.indices[:128, 0] == src))
    benchmark.extra_info.update({
        "n_queries": len(q), "n_reference": len(ref), "size": 256, "seconds": t, "queries_per_s": len(q) / t,
        "copies_found": found, "copies_certified": float(res.certified[:128].mean()),
        "certified_fraction": float(res.certified.mean()), "peak_traced_mb": peak / 2**20})
    assert found == 1.0
