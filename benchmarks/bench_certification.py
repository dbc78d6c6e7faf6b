"""A full certification of 4,000 maps of 64^2 (the shipped cpu64 model's size): wall time per stage.

Run from the repository root after ``paper-repro validate`` (or ``reproduce``) has simulated the
reference sets: it certifies ``data/reference/generated.npy`` (the shipped model's certified
sample) against ``data/reference``'s validation and auxiliary maps, with the memorisation test
against ``data/cpu/train.npy`` when that is there, on every core (``certify``'s default). Skipped
without those files. extra_info holds the seconds of the whole certification and the number of
threads; the two parameters (without and with the memorisation test) give that search's share.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from paper_repro.evaluation import certification

DATA = Path("data")
SETS = {"generated": DATA / "reference" / "generated.npy", "reference": DATA / "reference" / "validation.npy",
        "auxiliary": DATA / "reference" / "auxiliary.npy"}


@pytest.mark.parametrize("memorisation", [False, True])
def test_certification_of_4000_maps(benchmark, memorisation):
    missing = [str(p) for p in SETS.values() if not p.exists()]
    training = DATA / "cpu" / "train.npy"
    if missing or (memorisation and not training.exists()):
        pytest.skip(f"missing {missing or [str(training)]}: run 'paper-repro validate' (and 'paper-repro "
                    "simulate --preset cpu --out data/cpu' for the memorisation test) first")
    inputs = certification.prepare(SETS["generated"], SETS["reference"], SETS["auxiliary"],
                                   training if memorisation else None)
    seconds: dict[str, float] = {}

    def run():
        t = time.perf_counter()
        report = certification.certify(inputs, memorisation=memorisation)
        seconds["total"] = time.perf_counter() - t
        return report

    report = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.group = "certification, 4,000 maps of 64^2"
    benchmark.extra_info.update({"seconds": seconds["total"], "n_generated": report.inputs["n_generated"],
                                 "threads": certification.default_workers(), "cpus": os.cpu_count(),
                                 "passed": report.passed})
