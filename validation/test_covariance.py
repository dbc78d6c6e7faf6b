"""Covariance across maps of P(ell) bands, Minkowski functionals and peak counts vs the baseline."""
from tests.helpers import check


def test_covariance(report):
    check(report, "covariance")
