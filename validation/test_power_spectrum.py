"""Fig. 3: the power spectrum at the paper's 248 modes, generated vs validation, calibrated."""
from tests.helpers import check


def test_power_spectrum(report):
    check(report, "power_spectrum")
