"""Figs. 5-6: Minkowski functionals V0, V1, V2 at 19 thresholds, generated vs validation, calibrated."""
from tests.helpers import check


def test_minkowski_functionals(report):
    check(report, "minkowski_functionals")
