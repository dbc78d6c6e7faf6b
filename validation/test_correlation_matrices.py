"""Fig. 4: correlation matrices of the power spectra; the difference vs the real-vs-real baseline."""
from tests.helpers import check


def test_correlation_matrices(report):
    check(report, "correlation_matrices")
