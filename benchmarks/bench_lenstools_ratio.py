"""Minkowski functionals and power spectrum: paper_repro against LensTools 1.2 in one run, as a ratio.

LensTools 1.2 needs NumPy < 1.24, so it runs in the tox environment ``lenstools`` (``tox -e lenstools``
builds it), as a worker process; paper_repro runs here. Rounds alternate between the two on the
same 32 maps of 256^2 (the paper's size and settings: 19 thresholds in units of each map's std; the
paper's 248 ell bins), so that load from other processes hits both alike. The median of the
per-round ratios (LensTools' time / ours, one thread each, and ours with 2 threads) is in each
benchmark's extra_info. Skipped where the LensTools environment has not been built.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.bench_statistics import maps_of
from paper_repro.stats import morphology, power

#: the LensTools environment's Python (PAPER_REPRO_LENSTOOLS_PYTHON names another one with LensTools 1.2)
LENSTOOLS_PYTHON = Path(os.environ.get("PAPER_REPRO_LENSTOOLS_PYTHON",
                                       Path(__file__).resolve().parents[1] / ".tox" / "lenstools" / "bin" / "python"))
ROUNDS = 9
ANGLE = 0.866

#: the worker: loads the maps once, then times one LensTools pass over them per line it reads
WORKER = textwrap.dedent("""
    import sys, time, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    import astropy.units as u
    from lenstools import ConvergenceMap
    maps = [ConvergenceMap(m, {angle} * u.deg) for m in np.load(sys.argv[1]).astype(np.float64)]
    thresholds, edges = np.arange(-2.0, 2.0, 0.2), np.arange(200.0, 50000.0, 200.0)
    run = {{"minkowski_functionals": lambda m: m.minkowskiFunctionals(thresholds, norm=True),
            "power_spectrum": lambda m: m.powerSpectrum(edges)}}
    for line in sys.stdin:
        fn = run[line.strip()]
        t = time.perf_counter()
        for m in maps:                                # a fresh map: LensTools keeps its gradients on it
            fn(ConvergenceMap(m.data, m.side_angle))
        print(time.perf_counter() - t, flush=True)
""").format(angle=ANGLE)

OURS = {
    "minkowski_functionals": lambda m, w: morphology.minkowski_functionals(m, workers=w),
    "power_spectrum": lambda m, w: power.power_spectrum(m, ANGLE, workers=w),
}


@pytest.fixture(scope="module")
def lenstools(tmp_path_factory):
    """(maps, a function that times one LensTools pass) with the worker running; skip without LensTools."""
    if not LENSTOOLS_PYTHON.exists():
        pytest.skip("LensTools 1.2 lives in the tox environment 'lenstools': build it with 'tox -e lenstools'")
    maps = maps_of(256)
    path = tmp_path_factory.mktemp("lenstools") / "maps.npy"
    np.save(path, maps)
    proc = subprocess.Popen([str(LENSTOOLS_PYTHON), "-c", WORKER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)

    def theirs(stat: str) -> float:
        proc.stdin.write(stat + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"the LensTools worker ({LENSTOOLS_PYTHON}) stopped")
        return float(line)

    yield maps, theirs
    proc.stdin.close()
    proc.wait(timeout=60)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@pytest.mark.parametrize("stat", list(OURS))
def test_speedup_over_lenstools(benchmark, lenstools, stat):
    """Interleaved rounds: LensTools, ours (1 thread), ours (2 threads); the ratios go to extra_info."""
    maps, theirs = lenstools
    ours = OURS[stat]
    theirs(stat), ours(maps, 1)                                     # warm-up
    t_lt, t_1, t_2 = [], [], []
    for _ in range(ROUNDS):
        t_lt.append(theirs(stat))
        t_1.append(_timed(lambda: ours(maps, 1)))
        t_2.append(_timed(lambda: ours(maps, 2)))
    r1 = float(np.median(np.array(t_lt) / np.array(t_1)))
    r2 = float(np.median(np.array(t_lt) / np.array(t_2)))
    benchmark.group = f"{stat} vs LensTools 1.2 (256^2)"
    benchmark.extra_info.update({"speedup_1_thread": r1, "speedup_2_threads": r2,
                                 "lenstools_maps_per_s": len(maps) / min(t_lt),
                                 "ours_maps_per_s": len(maps) / min(t_1)})
    print(f"\n{stat}: {r1:.1f}x LensTools on 1 thread, {r2:.1f}x on 2 (median of {ROUNDS} interleaved rounds)",
          file=sys.stderr)
    benchmark.pedantic(lambda: ours(maps, 1), rounds=3, iterations=1)
