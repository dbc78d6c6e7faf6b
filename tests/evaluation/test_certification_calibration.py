"""False-positive rate and power of the certification over several seeds (slow: ~5-10 minutes).

Run: ``pytest tests/evaluation/test_certification_calibration.py -m slow -s`` prints the rates.
"""
import numpy as np
import pytest

from tests.helpers import ANGLE, crops
from paper_repro.evaluation import certification

SEEDS = range(8)


@pytest.mark.slow
def test_false_positive_rate_and_power():
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
    assert np.mean(rows["independent"]) <= 0.25           # false positives
    assert np.mean(per_criterion["gaussian"]["minkowski_functionals"]) >= 0.75
    assert np.mean(per_criterion["sigma8+5%"]["power_spectrum"]) >= 0.75
