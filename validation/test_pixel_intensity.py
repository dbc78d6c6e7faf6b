"""Fig. 2: pixel-intensity distributions (per-map histograms), generated vs validation, calibrated."""
from tests.helpers import check


def test_pixel_intensity(report):
    check(report, "pixel_intensity")
