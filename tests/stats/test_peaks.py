"""Peak and minimum counts of smoothed maps: known extrema, LensTools' smoothing, a brute-force count."""
import numpy as np
import pytest
from scipy import ndimage

from paper_repro.errors import PaperReproError
from paper_repro.stats import peaks
from paper_repro.stats.morphology import peak_counts

#: 32 px on a side at 0.5 arcmin per pixel: 1 arcmin is 2 pixels
SIZE, ANGLE = 32, 32 * 0.5 / 60


def _spikes() -> np.ndarray:
    """A flat map with three maxima and two minima at known places and heights (sigma units of 1)."""
    m = np.zeros((SIZE, SIZE))
    m[5, 5] = 3.2          # a high peak, bin [3, 3.5)
    m[20, 10] = 1.2        # a peak, bin [1, 1.5)
    m[12, 31] = 0.3        # a peak on the edge column: its neighbours wrap to column 0
    m[25, 20] = -2.3       # a deep minimum, bin (-10, -2]
    m[0, 16] = -0.7        # a minimum on the edge row, bin (-1, -0.5]
    return m


def test_known_maxima_and_minima_are_counted_in_their_bins():
    labels, c = peaks.extremum_counts(_spikes(), ANGLE, 1.0, scale_arcmin=0.0)
    got = dict(zip(labels, c))
    assert got["peak@[3,3.5)"] == 1 and got["peak@[1,1.5)"] == 1 and got["peak@[0,0.5)"] == 1
    assert got["min@(-10,-2]"] == 1 and got["min@(-1,-0.5]"] == 1
    assert c.sum() == 5                       # the flat background has no strict extremum
    npk = len(peaks.DEFAULT_PEAK_NU) - 1
    assert c[:npk].sum() == 3 and c[npk:].sum() == 2
    # bins are in kappa / sigma: with sigma 2 the high peak moves to nu 1.6
    got2 = dict(zip(*peaks.extremum_counts(_spikes(), ANGLE, 2.0, scale_arcmin=0.0)))
    assert got2["peak@[1.5,2)"] == 1 and got2["peak@[0.5,1)"] == 1


def test_smoothing_is_lenstools_gaussian_filter_in_arcmin():
    assert peaks.smoothing_pixels(SIZE, ANGLE, 1.0) == pytest.approx(2.0)
    m = np.random.default_rng(0).standard_normal((3, SIZE, SIZE))
    got = peaks.smooth(m, ANGLE, 1.5)
    for g, x in zip(got, m):
        np.testing.assert_allclose(g, ndimage.gaussian_filter(x, 3.0), rtol=0, atol=1e-14)
    # a smoothed isolated spike keeps one maximum, where it was
    sm = peaks.smooth(_spikes(), ANGLE, 1.0)
    assert np.unravel_index(np.argmax(sm), sm.shape) == (5, 5)


def _brute_force(sm: np.ndarray, sign: float) -> np.ndarray:
    """Pixels strictly beyond their 8 periodic neighbours (maxima for sign 1, minima for -1)."""
    x = sign * sm
    mask = np.ones(x.shape, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                mask &= x > np.roll(x, (dy, dx), axis=(-2, -1))
    return mask


def test_counts_match_a_brute_force_count_on_random_maps():
    maps = np.random.default_rng(1).standard_normal((5, SIZE, SIZE)) * 0.02
    sigma = peaks.reference_sigma(maps, ANGLE)
    labels, counts = peaks.extremum_counts(maps, ANGLE, sigma, chunk_maps=2)   # chunks of 2 maps
    npk = len(peaks.DEFAULT_PEAK_NU) - 1
    for m, c in zip(peaks.smooth(maps, ANGLE), counts):
        # float64 maps: LensTools' float32 rounding of the centre pixel never ties here
        pk = m[_brute_force(m, 1.0)] / sigma
        mn = m[_brute_force(m, -1.0)] / sigma
        expect_p = np.histogram(pk, peaks.DEFAULT_PEAK_NU)[0]
        expect_m = np.histogram(mn, peaks.DEFAULT_MINIMUM_NU)[0]
        np.testing.assert_array_equal(c[:npk], expect_p)
        np.testing.assert_array_equal(c[npk:], expect_m)
        assert c.sum() > 0
    assert len(labels) == counts.shape[1]


def test_extrema_are_lenstools_peak_count_pixels():
    """The batch counter agrees with morphology.peak_counts (checked against LensTools 1.2), also on
    float32 maps with ties, for maxima and (as peaks of -kappa) minima."""
    rng = np.random.default_rng(2)
    maps = np.round(rng.standard_normal((4, SIZE, SIZE)), 1).astype(np.float32)   # many equal neighbours
    edges = np.linspace(-4.0, 4.0, 17)
    _, counts = peaks.extremum_counts(maps, ANGLE, 1.0, scale_arcmin=0.0, peak_nu=edges, minimum_nu=edges)
    width = np.diff(edges)
    _, p = peak_counts(maps.astype(np.float64), edges, norm=False)
    _, m = peak_counts(-maps.astype(np.float64), -edges[::-1], norm=False)
    np.testing.assert_array_equal(counts[:, :16], np.rint(p * width))
    np.testing.assert_array_equal(counts[:, 16:], np.rint(m * width)[:, ::-1])
    assert counts.sum() > 100


def test_bad_input_is_one_line_error():
    with pytest.raises(PaperReproError, match="sigma"):
        peaks.extremum_counts(_spikes(), ANGLE, 0.0)
    with pytest.raises(PaperReproError, match="smoothing scale"):
        peaks.smooth(_spikes(), ANGLE, -1.0)
    with pytest.raises(PaperReproError, match="constant"):
        peaks.reference_sigma(np.ones((2, SIZE, SIZE)), ANGLE)
    with pytest.raises(PaperReproError, match="peak_nu"):
        peaks.extremum_counts(_spikes(), ANGLE, 1.0, peak_nu=[1.0, 0.0])


def test_counts_do_not_depend_on_the_number_of_threads():
    rng = np.random.default_rng(3)
    maps = ndimage.gaussian_filter(rng.standard_normal((37, SIZE, SIZE)), (0, 1.5, 1.5), mode="wrap")
    one = peaks.extremum_counts(maps, ANGLE, 0.2, chunk_maps=5)
    np.testing.assert_array_equal(one[1], peaks.extremum_counts(maps, ANGLE, 0.2, chunk_maps=5, workers=3)[1])
    np.testing.assert_array_equal(one[1], peaks.extremum_counts(maps, ANGLE, 0.2)[1])
