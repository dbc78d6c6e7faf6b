"""Peak and minimum counts of the maps smoothed at 1 arcmin (LensTools' convention), calibrated."""
from tests.helpers import check


def test_peak_counts(report):
    check(report, "peak_counts")
