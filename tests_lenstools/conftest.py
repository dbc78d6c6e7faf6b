"""The LensTools 1.2 oracle (``tox -e lenstools``): its modules skip where LensTools is not installed.

Prints, at the end of the run, the per-map throughput of paper_repro and LensTools measured side
by side by bench_vs_lenstools.py, and writes it to .benchmarks/lenstools_speed.json (or to
$LENSTOOLS_SPEED_JSON).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if "tests_lenstools.oracle" not in sys.modules:
        return
    import numpy as np

    from tests_lenstools.oracle import SPEED

    if not SPEED:
        return
    tr = terminalreporter
    tr.section("paper_repro vs LensTools 1.2: per-map throughput, measured side by side")
    rows = {}
    for stat, r in sorted(SPEED.items()):
        if "lenstools" not in r:
            continue
        rows[stat] = dict(r)
        for who in ("ours", "ours-2-threads"):
            if who in r:
                ratio = r[who] / r["lenstools"]
                rows[stat][f"speedup {who}"] = ratio
                tr.write_line(f"{stat:22s} {who:15s} {r[who]:8.1f} maps/s   LensTools {r['lenstools']:7.1f}"
                              f" maps/s   speed-up {ratio:5.1f}x")
        for key in ("interleaved speed-up (1 thread)", "interleaved speed-up (2 threads)"):
            if key in r:
                tr.write_line(f"{stat:22s} {key}: median over alternating rounds {r[key]:5.1f}x")
    out = Path(os.environ.get("LENSTOOLS_SPEED_JSON",
                              config.rootpath / ".benchmarks" / "lenstools_speed.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    tr.write_line(f"load average during the run (other processes share these cores): {load}")
    out.write_text(json.dumps({"numpy": np.__version__, "load_average": load, "results": rows}, indent=2))
    tr.write_line(f"written to {out}")
