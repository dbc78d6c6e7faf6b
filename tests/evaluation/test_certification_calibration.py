"""False-positive rate and power of the certification over several seeds.

The fast version (default suite, about half a minute) certifies sets of 200 whole 64^2 maps (the
paper's pixel scale, periodic, so each map is one independent draw and a set costs a fraction of
a second to simulate) over 4 seeds; the slow one (~5-10 minutes) sets of 600 crops of 1024^2
maps over 8 seeds: ``pytest tests/evaluation/test_certification_calibration.py -m slow -s`` prints
the rates. Both hold the suite to the same bounds: independent simulation sets fail at most a
quarter of the time, a Gaussian field with the same C_ell fails the Minkowski functionals and a
5% higher sigma_8 fails the power spectrum at least three times in four.
"""
import numpy as np
import pytest

from paper_repro.config import CosmologyConfig, SimulationConfig
from paper_repro.evaluation import certification
from paper_repro.maps.simulation import get_simulator
from tests.helpers import ANGLE, SIZE, crops

SEEDS = range(8)
#: the bounds both versions hold the suite to
MAX_FALSE_POSITIVE_RATE = 0.25
MIN_POWER = 0.75


def small_maps(seed: int, n: int = 200, model: str = "lognormal", sigma_8: float = 0.798) -> np.ndarray:
    """n whole SIZE^2 maps at the paper's pixel scale (periodic fields: independent draws, fast)."""
    sim = get_simulator(SimulationConfig(CosmologyConfig(sigma_8=sigma_8), map_size=SIZE, angle_deg=ANGLE,
                                         model=model))
    return np.stack([sim.map(np.random.SeedSequence([seed, i])) for i in range(n)]).astype(np.float32)


@pytest.fixture(scope="module")
def small_verdicts():
    """{case: [failed criteria per seed]} over 4 seeds: validation, auxiliary and the three cases."""
    out = {"independent": [], "gaussian": [], "sigma8+5%": []}
    for s in range(4):
        base = 100 * (s + 1)
        val, aux = small_maps(base + 1), small_maps(base + 2)
        cases = {"independent": small_maps(base + 3), "gaussian": small_maps(base + 4, model="gaussian"),
                 "sigma8+5%": small_maps(base + 5, sigma_8=0.798 * 1.05)}
        for name, gen in cases.items():
            rep = certification.certify(certification.prepare(gen, val, aux, angle_deg=ANGLE))
            out[name].append(set(rep.failed()))
    return out


def test_independent_small_sets_pass(small_verdicts):
    """The false-positive rate, fast: independent simulations of the same process pass."""
    rate = np.mean([bool(f) for f in small_verdicts["independent"]])
    assert rate <= MAX_FALSE_POSITIVE_RATE, small_verdicts["independent"]


def test_small_sets_of_another_process_fail(small_verdicts):
    """The power, fast: the same C_ell without the log-normal skewness fails the Minkowski
    functionals; a 5% higher sigma_8 fails the power spectrum."""
    gauss = np.mean(["minkowski_functionals" in f for f in small_verdicts["gaussian"]])
    sigma8 = np.mean(["power_spectrum" in f for f in small_verdicts["sigma8+5%"]])
    assert gauss >= MIN_POWER and sigma8 >= MIN_POWER, small_verdicts


@pytest.mark.slow
def test_false_positive_rate_and_power():
    """The rates on the paper-like sets: 600 crops of six 1024^2 maps per set, 8 seeds."""
    rows = {"independent": [], "gaussian": [], "sigma8+2%": [], "sigma8+5%": []}
    per_criterion = {k: {} for k in rows}
    for s in SEEDS:
        base = 100 * (s + 1)
        val, aux = crops(base + 1), crops(base + 2)
        cases = {"independent": crops(base + 3), "gaussian": crops(base + 4, model="gaussian"),
                 "sigma8+2%": crops(base + 5, sigma_8=0.798 * 1.02),
                 "sigma8+5%": crops(base + 6, sigma_8=0.798 * 1.05)}
        for name, gen in cases.items():
            rep = certification.certify(certification.prepare(gen, val, aux, angle_deg=ANGLE))
            rows[name].append(not rep.passed)
            for crit, c in rep.criteria.items():
                per_criterion[name].setdefault(crit, []).append(not c["passed"])
    print("\nrejection rate over", len(SEEDS), "seeds (600 maps per set):")
    for name in rows:
        crit = ", ".join(f"{k} {np.mean(v):.2f}" for k, v in per_criterion[name].items())
        print(f"  {name:12s} overall {np.mean(rows[name]):.2f}  ({crit})")
    assert np.mean(rows["independent"]) <= MAX_FALSE_POSITIVE_RATE           # false positives
    assert np.mean(per_criterion["gaussian"]["minkowski_functionals"]) >= MIN_POWER
    assert np.mean(per_criterion["sigma8+5%"]["power_spectrum"]) >= MIN_POWER
