"""paper_repro.stats.batching: single maps and batches, float32 promotion, chunks, threads, memory
maps and bad input give the same results or one clear error, for every statistic."""
from __future__ import annotations

import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.stats import batching, morphology, power
from tests.stats.references import field_maps


def test_float32_equals_float64_promotion(lenstools_fixture):
    m32 = lenstools_fixture["maps"][:2]
    assert m32.dtype == np.float32
    m64 = m32.astype(np.float64)
    for fn in (lambda m: power.power_spectrum(m)[1], lambda m: np.stack(morphology.minkowski_functionals(m)[1:]),
               lambda m: morphology.peak_counts(m)[1], morphology.moments):
        np.testing.assert_array_equal(fn(m32), fn(m64))


def test_single_map_and_batch_agree():
    maps = field_maps(3, 48, seed=1)
    for fn in (lambda m: power.power_spectrum(m, 0.5)[1], lambda m: morphology.minkowski_functionals(m)[2],
               lambda m: morphology.peak_counts(m)[1], morphology.moments,
               lambda m: morphology.pixel_histogram(m, np.linspace(-0.05, 0.1, 11))[1]):
        batch = fn(maps)
        assert batch.ndim == 2 and batch.shape[0] == 3
        np.testing.assert_array_equal(fn(maps[1]), batch[1])


def test_chunks_threads_and_memmap_do_not_change_results(tmp_path):
    maps = field_maps(7, 32, seed=11).astype(np.float32)
    path = tmp_path / "maps.npy"
    np.save(path, maps)
    mm = np.load(path, mmap_mode="r")
    ref = (power.power_spectrum(maps, 0.2)[1], np.stack(morphology.minkowski_functionals(maps)[1:]),
           morphology.peak_counts(maps)[1], morphology.moments(maps))
    for kw in ({"chunk_maps": 1}, {"chunk_maps": 3, "workers": 2}, {"workers": 3}):
        got = (power.power_spectrum(mm, 0.2, **kw)[1], np.stack(morphology.minkowski_functionals(mm, **kw)[1:]),
               morphology.peak_counts(mm, **kw)[1], morphology.moments(mm, **kw))
        for g, r in zip(got, ref):
            np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((3, 16, 20)), "square"),
    (np.zeros((16, 16), dtype=np.int32), "float32 or float64"),
    (np.zeros((2, 3, 16, 16)), "shape"),
    (np.zeros((0, 16, 16)), "at least one map"),
])
def test_bad_maps(bad, match):
    for fn in (power.power_spectrum, morphology.minkowski_functionals, morphology.peak_counts, morphology.moments):
        with pytest.raises(PaperReproError, match=match):
            fn(bad)


def test_nan_is_reported_with_its_map():
    maps = np.zeros((6, 16, 16))
    maps[4, 3, 3] = np.nan
    with pytest.raises(PaperReproError, match="map 4 contains NaN"):
        morphology.minkowski_functionals(maps, chunk_maps=2)
    with pytest.raises(PaperReproError, match="map 4 contains NaN"):
        power.power_spectrum(maps, workers=2)


def test_bad_settings():
    m = np.zeros((16, 16))
    with pytest.raises(PaperReproError, match="angle_deg"):
        power.power_spectrum(m, -1.0)
    with pytest.raises(PaperReproError, match="increasing"):
        power.power_spectrum(m, 1.0, [100.0, 50.0, 200.0])
    with pytest.raises(PaperReproError, match="increasing"):
        morphology.minkowski_functionals(m, [0.0, 0.0, 1.0])
    with pytest.raises(PaperReproError, match="workers"):
        morphology.moments(m, workers=0)


def test_iter_chunks_reuses_one_float64_buffer_and_checks_values():
    maps = field_maps(5, 8, seed=0).astype(np.float32)
    seen = [(start, chunk.dtype, chunk.shape, chunk.ctypes.data, chunk.copy())
            for start, chunk in batching.iter_chunks(maps, 2)]
    assert [s[0] for s in seen] == [0, 2, 4]
    assert all(s[1] == np.float64 for s in seen) and [s[2][0] for s in seen] == [2, 2, 1]
    assert len({s[3] for s in seen}) == 1                          # one reused buffer
    np.testing.assert_array_equal(np.concatenate([s[4] for s in seen]), maps.astype(np.float64))
    direct = np.ascontiguousarray(maps, dtype=np.float64)          # float64 input: no copy
    assert next(batching.iter_chunks(direct, 5))[1].base is direct
    with pytest.raises(PaperReproError, match="chunk_maps"):
        next(batching.iter_chunks(maps, 0))
    maps[3, 1, 1] = np.inf
    with pytest.raises(PaperReproError, match="map 13 contains NaN or inf"):
        list(batching.iter_chunks(maps, 2, offset=10))


@pytest.mark.parametrize("n,workers", [(7, None), (7, 1), (7, 3), (2, 5)])
def test_run_parallel_covers_every_map_once(n, workers):
    hits = np.zeros(n, int)

    def fn(lo, hi):
        hits[lo:hi] += 1

    batching.run_parallel(n, workers, fn)
    np.testing.assert_array_equal(hits, 1)


def test_as_batch_and_unbatch():
    one = np.zeros((8, 8), np.float32)
    arr, single = batching.as_batch(one)
    assert arr.shape == (1, 8, 8) and single and np.shares_memory(arr, one)
    assert batching.unbatch(np.arange(6).reshape(1, 6), single).shape == (6,)
    with pytest.raises(PaperReproError, match="at least 5x5"):
        batching.as_batch(np.zeros((2, 4, 4)))
    with pytest.raises(PaperReproError, match="angle_deg"):
        batching.check_angle(float("nan"))
    assert batching.check_edges([1, 2, 3], "e").dtype == np.float64
