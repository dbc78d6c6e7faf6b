"""Cost of certifying one node of the cosmo-grid preset (``paper-repro certify-grid``), to size a
whole-grid certification (30 training and 4 held-out nodes).

Run: ``pytest benchmarks/bench_grid_certification.py --benchmark-only``. A 2 x 2 grid of the
cosmo-grid preset's geometry (2,000 validation and 2,000 auxiliary crops of 64^2 per node from 10
parent maps, 1,600 training crops from 8) is simulated once; simulated stand-ins of 2,000 crops are
certified at one training node without and with the memorisation test (``node_s``), also as a
multiple of a matmul measured in the same run (``node_over_matmul``, machine-independent), and
``grid_s`` extrapolates to the preset's 30 training nodes at that cost and its 4 held-out nodes at
twice the cost without memorisation (sets twice as large).
"""
import dataclasses
import time

import pytest

from paper_repro.config import COSMO_GRID_PRESETS, SplitSizes
from paper_repro.evaluation import grid_certification as gc
from paper_repro.maps.cosmo_grid import build_cosmo_grid, load_cosmo_grid

PRESET = COSMO_GRID_PRESETS["cosmo-grid"]
SMALL = dataclasses.replace(
    PRESET, name="bench-cosmo", omega_m=(0.26, 0.29), sigma_8=(0.798, 0.872), held_out=((0.275, 0.835),),
    node=dataclasses.replace(PRESET.node, splits=dataclasses.replace(PRESET.node.splits, development=0)),
    held_out_splits=SplitSizes(train=0, validation=1, development=0, auxiliary=1))


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-grid")
    build_cosmo_grid(root / "grid", SMALL)
    gc.simulate_stand_in(SMALL, root / "maps", nodes=["node-00"], progress=False)
    grid = load_cosmo_grid(root / "grid")
    maps, ids = gc._given_maps(root / "maps", "node-00", None)
    return grid, gc.find_node(grid, "node-00"), maps, ids


#: node_s of each case, memorisation False then True (parametrize order)
TIMES: dict[bool, float] = {}


@pytest.mark.parametrize("memorisation", [False, True])
def test_node_certification_time(benchmark, node, matmul_peak, memorisation):
    grid, entry, maps, ids = node
    seconds = []

    def certify():      # timed here too: with --benchmark-disable there are no benchmark stats
        t = time.perf_counter()
        out = gc.certify_node(grid, entry, maps, generated_parents=ids, memorisation=memorisation)
        seconds.append(time.perf_counter() - t)
        return out

    report = benchmark.pedantic(certify, rounds=1, iterations=1, warmup_rounds=0)
    assert ("memorisation" in report.criteria) == memorisation
    s = TIMES[memorisation] = min(seconds)
    matmul_s = 2.0 * 2048 ** 3 / matmul_peak
    benchmark.extra_info.update({"node_s": s, "node_over_matmul": s / matmul_s, "memorisation": memorisation,
                                 "passed": report.passed})
    if memorisation and False in TIMES:
        benchmark.extra_info["grid_s"] = (len(PRESET.training_nodes()) * s + len(PRESET.held_out) * 2 * TIMES[False])
