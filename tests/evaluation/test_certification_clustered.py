"""False-failure rate of the certification on independent simulation sets cut like the datasets:
each set is crops of a few parent maps, certified with the parent ids (clustered standard errors,
bootstrap over parents), the "generated" set being one more simulation set.

The fast version (default suite) uses small parents (128^2 px, 30 crops of 32^2 each); the slow
ones the datasets' geometry (200 crops of 64^2 from each 1024^2 parent) at 20 and 100 parents per
set. The full measurement, with binomial intervals, runs as a script (a few trials per call, so it
can be split and merged):

    python -m tests.evaluation.test_certification_clustered --parents 20 --trials 10 --first 0 --out r.json

Every trial also records what the naive mean criterion (sqrt(var / N), maps taken as independent)
would have said on the same statistics.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from scipy import stats as scipy_stats

from paper_repro.config import SimulationConfig
from paper_repro.errors import PaperReproError
from paper_repro.evaluation import certification
from paper_repro.maps.datasets import random_crops
from paper_repro.maps.simulation import get_simulator
from paper_repro.stats.twosample import constant_components, mean_z
from tests.helpers import ANGLE, crops

#: the bound the calibration tests hold the suite to (tests/evaluation/test_certification_calibration.py)
MAX_FALSE_POSITIVE_RATE = 0.25
STATS = ("pixel_intensity", "power_spectrum", "minkowski_functionals")
PIX_DEG = ANGLE / 64
#: seed offsets of the trials (never used elsewhere in the tests)
SEED_BASE = {20: 350_000, 100: 360_000}


def small_clustered_set(seed: int, n_parents: int = 4, per_map: int = 30) -> np.ndarray:
    """n_parents x per_map crops of 32^2 px from 128^2 parents at the paper's pixel scale."""
    sim = get_simulator(SimulationConfig(map_size=128, angle_deg=128 * PIX_DEG))
    rng = np.random.default_rng(seed)
    return np.concatenate([random_crops(sim.map(np.random.SeedSequence([seed, i])), 32, per_map, rng)[0]
                           for i in range(n_parents)]).astype(np.float32)


def trial(sets: list[np.ndarray], n_parents: int, angle_deg: float) -> dict:
    """Certify sets[0] (as generated) against sets[1] (validation) and sets[2] (auxiliary), all of
    ``n_parents`` parents with equally many crops each; the failed criteria, clusters and worst means."""
    ids = np.repeat(np.arange(n_parents), len(sets[0]) // n_parents)
    inp = certification.prepare(*sets, angle_deg=angle_deg,
                                parents={"generated": ids, "reference": ids, "auxiliary": ids})
    rep = certification.certify(inp, memorisation=False)
    out = {"failed": rep.failed(), "clusters": rep.inputs["clusters"], "worst_mean_z": {}, "naive_worst_mean_z": {},
           "mean_criterion": {stat: next(c["value"] for c in rep.criteria[stat]["criteria"]
                                         if c["name"] == "mean_within_k_se") for stat in STATS},
           "failed_subcriteria": {k: [c["name"] for c in v["criteria"] if not c["passed"]]
                                  for k, v in rep.criteria.items()}}
    for stat in STATS:
        g, v = rep.statistics["generated"][stat][1], rep.statistics["validation"][stat][1]
        keep = ~constant_components(g, v, rep.statistics["auxiliary"][stat][1])
        out["worst_mean_z"][stat] = float(np.abs(mean_z(g, v, ids, ids)[keep]).max())
        out["naive_worst_mean_z"][stat] = float(np.abs(mean_z(g, v)[keep]).max())
    return out


def rates(trials: list[dict], k_sigma: float = 4.0) -> dict:
    """Per criterion (and overall, and the naive mean criterion): failures, trials, rate and its
    95% Clopper-Pearson interval."""
    n = len(trials)

    def row(k: int) -> dict:
        ci = scipy_stats.binomtest(k, n).proportion_ci(0.95) if n else None
        return {"failures": k, "trials": n, "rate": k / n if n else None,
                "ci95": None if ci is None else [ci.low, ci.high]}

    names = ("pixel_intensity", "power_spectrum", "correlation_matrices", "minkowski_functionals")
    out = {name: row(sum(name in t["failed"] for t in trials)) for name in names}
    out["any"] = row(sum(bool(t["failed"]) for t in trials))
    out["naive_mean_criterion_any"] = row(sum(max(t["naive_worst_mean_z"].values()) > k_sigma for t in trials))
    out["clustered_mean_criterion_any"] = row(sum(max(t["mean_criterion"].values()) > k_sigma for t in trials))
    out["clustered_normal_law_any"] = row(sum(max(t["worst_mean_z"].values()) > k_sigma for t in trials))
    return out


def run_trials(n_parents: int, trials: int, first: int = 0, per_map: int = 200, progress: bool = False) -> list[dict]:
    """``trials`` independent triples of simulation sets (n_parents x per_map crops of 64^2 each)."""
    out = []
    for t in range(first, first + trials):
        seed = SEED_BASE.get(n_parents, 370_000 + 1000 * n_parents) + 3 * t
        sets = [crops(seed + k, n_parents=n_parents, per_map=per_map) for k in range(3)]
        out.append(trial(sets, n_parents, ANGLE) | {"trial": t})
        if progress:
            print(f"{n_parents} parents, trial {t}: failed {out[-1]['failed']}, worst mean z "
                  f"{out[-1]['worst_mean_z']}, naive {out[-1]['naive_worst_mean_z']}", flush=True)
    return out


@pytest.fixture(scope="module")
def small_trials():
    return [trial([small_clustered_set(900 + 3 * t + k) for k in range(3)], 4, 32 * PIX_DEG) for t in range(6)]


def test_small_clustered_sets_pass_and_say_how_they_were_treated(small_trials):
    """Independent sets of 4 parents x 30 crops: the clustered certification passes them at the
    suite's rate, and the naive standard error would have put their means further out."""
    r = rates(small_trials)
    assert r["any"]["rate"] <= MAX_FALSE_POSITIVE_RATE, small_trials
    assert all(t["clusters"] == {"generated": 4, "validation": 4, "auxiliary": 4} for t in small_trials)
    for t in small_trials:
        for stat in STATS:
            assert t["naive_worst_mean_z"][stat] > t["worst_mean_z"][stat], t
    # crops of 4 parents: the naive worst mean is beyond the limit in most trials
    assert r["naive_mean_criterion_any"]["rate"] >= 0.5, small_trials


def test_generated_maps_without_ids_are_independent_in_the_report():
    sets = [small_clustered_set(990 + k) for k in range(3)]
    ids = np.repeat(np.arange(4), 30)
    inp = certification.prepare(*sets, angle_deg=32 * PIX_DEG, parents={"reference": ids, "auxiliary": ids})
    rep = certification.certify(inp, memorisation=False)
    assert rep.inputs["clusters"] == {"generated": "independent", "validation": 4, "auxiliary": 4}
    assert "independent" in rep.inputs["clusters_note"]
    assert rep.criteria["power_spectrum"]["detail"]["clusters"]["generated"] == "independent"
    with pytest.raises(PaperReproError, match="parents\\['reference'\\]"):
        certification.prepare(*sets, angle_deg=32 * PIX_DEG, parents={"reference": ids[:10]})


@pytest.mark.slow
@pytest.mark.parametrize("n_parents,trials", [(20, 12), (100, 4)])
def test_false_failure_rate_at_the_datasets_geometry(n_parents, trials):
    """Independent simulation sets of 20 and 100 parents x 200 crops of 64^2: rate of any failure
    at most the suite's bound (the script measures more trials; see the module docstring)."""
    r = rates(run_trials(n_parents, trials, progress=True))
    print(json.dumps(r, indent=1))
    assert r["any"]["rate"] <= MAX_FALSE_POSITIVE_RATE, r


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parents", type=int, required=True)
    p.add_argument("--trials", type=int, required=True)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--merge", nargs="*", default=(), help="earlier outputs to add to these trials' rates")
    a = p.parse_args(argv)
    found = [t for f in a.merge for t in json.load(open(f))["trials"]]
    found += run_trials(a.parents, a.trials, a.first, progress=True) if a.trials else []
    result = {"parents": a.parents, "rates": rates(found), "trials": found}
    with open(a.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(json.dumps(result["rates"], indent=1))


if __name__ == "__main__":
    main()
