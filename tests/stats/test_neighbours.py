"""paper_repro.stats.neighbours: exact nearest neighbours of maps in pixel, ln-power and the shift- and
flip-invariant space (against brute force), on memory maps, with clear errors."""
import math

import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.maps.io import open_maps
from paper_repro.stats import neighbours
from paper_repro.stats.neighbours import (
    dihedral_orbits,
    dihedral_transform,
    invariant_distance,
    invariant_features,
    invariant_pairs,
    nearest_neighbors,
)
from paper_repro.stats.power import power_features
from tests.helpers import smooth_maps
from tests.stats.references import ANGLE, brute_invariant, brute_knn, copies_of


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pixel_knn_equals_brute_force_on_memory_mapped_reference(tmp_path, dtype):
    ref = smooth_maps(150, 16, seed=1).astype(dtype)
    np.save(tmp_path / "ref.npy", ref)
    q = smooth_maps(23, 16, seed=2).astype(dtype)
    # a tiny block budget forces many query and reference blocks
    res = nearest_neighbors(q, open_maps(tmp_path / "ref.npy"), k=4, space="pixel", block_bytes=2**16)
    idx, d = brute_knn(q, ref, 4)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.distances, d, rtol=1e-12)
    assert res.certified.all()


def test_power_knn_equals_brute_force_in_log_power_space():
    ref = smooth_maps(80, 32, seed=4)
    q = smooth_maps(12, 32, seed=5)
    res = nearest_neighbors(q, ref, k=3, space="power", angle_deg=ANGLE)
    fq, fr = power_features(q, ANGLE), power_features(ref, ANGLE)
    assert fq.shape[1] > 5 and np.isfinite(fq).all()
    idx, d = brute_knn(fq, fr, 3)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.distances, d, rtol=1e-10)
    # the space is ln P: a map scaled by 2 is at distance 2 ln 2 sqrt(K) from the original
    d2 = nearest_neighbors(2 * ref[:1], ref, 1, space="power", angle_deg=ANGLE)
    assert d2.indices[0, 0] == 0
    assert d2.distances[0, 0] == pytest.approx(2 * math.log(2) * math.sqrt(fr.shape[1]), rel=1e-9)


def test_invariant_search_equals_brute_force():
    ref = smooth_maps(12, 8, seed=7)
    q = np.concatenate([smooth_maps(4, 8, seed=8), copies_of(ref, 2, seed=9, noise=0.01)[0]])
    d = brute_invariant(q, ref)
    idx = np.argsort(d, axis=1, kind="stable")[:, :3]
    for kw in ({}, {"candidates": 3, "lb_modes": 10}):
        res = nearest_neighbors(q, ref, k=3, space="invariant", **kw)
        exact = res.certified
        np.testing.assert_array_equal(res.indices[exact], idx[exact])
        np.testing.assert_allclose(res.distances[exact], np.take_along_axis(d, idx, 1)[exact], rtol=1e-9, atol=1e-12)
        # never below the true minimum (an uncertified answer is an upper bound)
        assert (res.distances[:, 0] >= d.min(axis=1) - 1e-9).all()
    assert nearest_neighbors(q, ref, k=3, space="invariant").certified.all()


def test_candidate_search_is_exact_where_certified_and_certifies_every_copy(monkeypatch):
    """The fast search (amplitude bounds, coarse ranking, exact verification) against brute force:
    equal wherever it says certified, never below the true minimum, and every copy (exact, shifted
    and flipped, noisy) found and certified; coarse maps (4^2) smaller than the maps (8^2)."""
    monkeypatch.setattr(neighbours, "COARSE_SIZE", 4)
    ref = smooth_maps(12, 8, seed=13)
    exact, src_e = copies_of(ref, 2, seed=14)
    noisy, src_n = copies_of(ref, 2, seed=15, noise=0.002)
    q = np.concatenate([smooth_maps(3, 8, seed=16), ref[[3]], exact, noisy])
    src = np.r_[3, src_e, src_n]
    d = brute_invariant(q, ref)
    for k in (1, 2):
        idx = np.argsort(d, axis=1, kind="stable")[:, :k]
        res = nearest_neighbors(q, ref, k=k, space="invariant", candidates=4, lb_modes=12, verify=1)
        ok = res.certified
        np.testing.assert_array_equal(res.indices[ok], idx[ok])
        np.testing.assert_allclose(res.distances[ok], np.take_along_axis(d, idx, 1)[ok], rtol=1e-9, atol=1e-12)
        assert (res.distances[:, 0] >= d.min(axis=1) - 1e-9).all()
        for i in range(len(q)):        # the reported transform and shift give the reported distance
            moved = np.roll(dihedral_transform(q[i].astype(np.float64), int(res.transforms[i, 0])),
                            tuple(res.shifts[i, 0]), axis=(0, 1))
            assert np.linalg.norm(moved - ref[res.indices[i, 0]]) == pytest.approx(res.distances[i, 0], rel=1e-9)
    # with a few (reference, class) pairs verified, every copy is found, and certified
    res = nearest_neighbors(q, ref, k=1, space="invariant", candidates=4, lb_modes=12, verify=4)
    assert res.certified[3:].all() and (res.indices[3:, 0] == src).all()
    np.testing.assert_allclose(res.distances[3:, 0], d[np.arange(3, len(q)), src], rtol=1e-9, atol=1e-12)
    with pytest.raises(PaperReproError, match="verify"):
        nearest_neighbors(q, ref, space="invariant", candidates=4, verify=0)


def test_candidate_search_streams_coarse_bands_under_a_small_budget():
    """With too little memory to keep every reference's coarse band the search recomputes them: same answer."""
    ref = smooth_maps(40, 16, seed=17)
    q = np.concatenate([smooth_maps(4, 16, seed=18), copies_of(ref, 3, seed=19, noise=0.002)[0]])
    kw = dict(k=2, space="invariant", standardize=True, candidates=6, lb_modes=40, verify=2)
    a, b = nearest_neighbors(q, ref, **kw), nearest_neighbors(q, ref, block_bytes=2**16, **kw)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.distances, b.distances, rtol=1e-12)
    np.testing.assert_array_equal(a.certified, b.certified)


def test_shifted_and_flipped_copies_found_by_invariant_search_and_missed_by_pixel_l2(tmp_path):
    train = smooth_maps(300, 32, seed=10)
    np.save(tmp_path / "train.npy", train)
    ref = open_maps(tmp_path / "train.npy")
    copies, src = copies_of(train, 20, seed=11)
    for kw in ({}, {"candidates": 8, "lb_modes": 64}):
        res = nearest_neighbors(copies, ref, k=1, space="invariant", **kw)
        np.testing.assert_array_equal(res.indices[:, 0], src)
        assert res.distances.max() < 1e-6
        assert res.certified.all()
        # the reported transform and shift move each copy exactly onto its training map
        for i in range(len(copies)):
            moved = np.roll(dihedral_transform(copies[i], int(res.transforms[i, 0])),
                            tuple(res.shifts[i, 0]), axis=(0, 1))
            np.testing.assert_allclose(moved, train[src[i]], atol=1e-7)
    plain = nearest_neighbors(copies, ref, k=1, space="pixel")
    assert (plain.indices[:, 0] == src).mean() < 0.2
    assert plain.distances.min() > 0.5 * np.median(nearest_neighbors(
        smooth_maps(20, 32, seed=12), ref, 1, space="pixel").distances)
    d, t, s = invariant_distance(copies[0], train[src[0]])
    assert d < 1e-6


def test_bad_input_raises(tmp_path):
    ref = smooth_maps(10, 16, seed=50)
    q = smooth_maps(3, 16, seed=51)
    with pytest.raises(PaperReproError, match="queries"):
        nearest_neighbors(smooth_maps(3, 8, seed=1), ref)
    with pytest.raises(PaperReproError, match="at least 1 maps"):
        nearest_neighbors(q, ref[:0])
    with pytest.raises(PaperReproError, match="k"):
        nearest_neighbors(q, ref, k=11)
    with pytest.raises(PaperReproError, match="space"):
        nearest_neighbors(q, ref, space="cosine")
    bad = ref.copy()
    bad[7, 3, 3] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    mm = np.load(tmp_path / "bad.npy", mmap_mode="r")
    for space in ("pixel", "invariant", "power"):
        with pytest.raises(PaperReproError, match="7 contains NaN"):
            nearest_neighbors(q, mm, space=space, block_bytes=2**16)
    with pytest.raises(PaperReproError, match="t: expected a dihedral transform index 0-7"):
        dihedral_transform(ref[0], 8)


def test_dihedral_transforms_are_the_eight_symmetries_of_the_square():
    m = np.arange(16.0).reshape(4, 4)
    out = [dihedral_transform(m, t) for t in range(8)]
    assert len({o.tobytes() for o in out}) == 8
    np.testing.assert_array_equal(out[1], np.rot90(m))
    np.testing.assert_array_equal(out[4], m[:, ::-1])
    np.testing.assert_array_equal(dihedral_transform(m[None], 6)[0], out[6])     # batches too


def _standardized(x):
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    return x / np.sqrt((x ** 2).mean(axis=(1, 2), keepdims=True))


@pytest.mark.parametrize("size", [7, 8])
def test_dihedral_orbits_partition_the_fourier_plane(size):
    """Every mode of the full plane in exactly one orbit (weights: s / 8 per listed image), orbits
    closed under the 8 symmetries, lowest |k| first; a mode budget takes whole orbits."""
    idx, w = dihedral_orbits(size)
    assert np.sum(8 * (size * w) ** 2) == pytest.approx(size * size)
    x = np.random.default_rng(0).standard_normal((size, size))
    f = np.abs(np.fft.rfft2(x)).ravel()[idx]
    for t in range(8):                      # a transform permutes the amplitudes within each orbit
        ft = np.abs(np.fft.rfft2(dihedral_transform(x, t))).ravel()[idx]
        np.testing.assert_allclose(np.sort(ft, axis=1), np.sort(f, axis=1), rtol=1e-12, atol=1e-12)
    few, _ = dihedral_orbits(size, 6)
    assert 2 <= len(few) < len(idx) and (few == idx[:len(few)]).all()
    with pytest.raises(PaperReproError, match="n_modes"):
        dihedral_orbits(size, 0)


def test_invariant_features_bound_the_invariant_distance_from_below():
    """Feature distances never exceed the brute-force invariant distance (of standardized maps),
    for any mode budget; copies (shifted, flipped, rescaled) have the source's features."""
    ref = smooth_maps(10, 8, seed=60)
    copies, src = copies_of(ref, 3, seed=61)
    q = np.concatenate([smooth_maps(4, 8, seed=62), 3.0 * copies + 1.0,
                        copies_of(ref, 2, seed=63, noise=0.01)[0]])
    d = brute_invariant(_standardized(q), _standardized(ref))
    for n_modes in (None, 5, 20):
        fq, fr = invariant_features(q, n_modes, block_bytes=2**16), invariant_features(ref, n_modes)
        lb = np.sqrt(((fq[:, None] - fr[None]) ** 2).sum(-1))
        assert (lb <= d * (1 + 1e-9) + 1e-12).all()
        assert lb[np.arange(4, 7), src].max() < 1e-5       # float32 rounding of 3 x + 1 (norms are 8)
    assert (lb / d).mean() > 0.5                   # and not a vacuous bound (all modes: 0.74 here)


def test_invariant_pairs_equal_brute_force():
    ref = smooth_maps(5, 8, seed=64)
    q = np.concatenate([smooth_maps(2, 8, seed=65), copies_of(ref, 2, seed=66)[0]])
    qi, ri = np.repeat(np.arange(len(q)), len(ref)), np.tile(np.arange(len(ref)), len(q))
    d, t, s = invariant_pairs(q, ref, qi, ri, block_bytes=2**16)
    np.testing.assert_allclose(d.reshape(len(q), -1), brute_invariant(q, ref), rtol=1e-9, atol=1e-12)
    for p in range(len(d)):             # the reported transform and shift give the reported distance
        moved = np.roll(dihedral_transform(q[qi[p]].astype(np.float64), int(t[p])), tuple(s[p]), axis=(0, 1))
        assert np.linalg.norm(moved - ref[ri[p]]) == pytest.approx(d[p], rel=1e-9, abs=1e-12)
    ds = invariant_pairs(q, ref, qi, ri, standardize=True)[0]
    np.testing.assert_allclose(ds.reshape(len(q), -1), brute_invariant(_standardized(q), _standardized(ref)),
                               rtol=1e-9, atol=1e-12)
    with pytest.raises(PaperReproError, match="query_rows, reference_rows"):
        invariant_pairs(q, ref, [0, 1], [0])
    with pytest.raises(PaperReproError, match="query_rows, reference_rows"):
        invariant_pairs(q, ref, [0], [5])
