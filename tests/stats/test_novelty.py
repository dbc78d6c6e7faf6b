"""paper_repro.stats.novelty: exact nearest neighbours, shift/flip-invariant search, memorisation, birthday, slerp."""
import json
import math

import numpy as np
import pytest
from tests.helpers import smooth_maps

from paper_repro.stats import novelty as nv
from paper_repro.maps.io import open_maps
from paper_repro.errors import PaperReproError

ANGLE = 32 * 3.464 / 1024          # the tiny preset's 32^2 maps at the paper's pixel scale


def brute_knn(q, r, k):
    d = np.sqrt(((q.reshape(len(q), 1, -1).astype(np.float64) - r.reshape(1, len(r), -1)) ** 2).sum(-1))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, 1)


def copies_of(train, n, seed, noise=0.0):
    """Shifted and flipped/rotated copies of random training maps: (maps, source index, transform, shift)."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, len(train), n)
    ts = rng.integers(0, 8, n)
    sh = rng.integers(0, train.shape[1], (n, 2))
    maps = np.stack([np.roll(nv.dihedral_transform(train[s], t), tuple(x), axis=(0, 1))
                     for s, t, x in zip(src, ts, sh)])
    if noise:
        maps = maps + noise * rng.standard_normal(maps.shape).astype(np.float32)
    return maps.astype(np.float32), src


# ----------------------------------------------------------------------------- exact k-NN
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pixel_knn_equals_brute_force_on_memory_mapped_reference(tmp_path, dtype):
    ref = smooth_maps(150, 16, seed=1).astype(dtype)
    np.save(tmp_path / "ref.npy", ref)
    q = smooth_maps(23, 16, seed=2).astype(dtype)
    # a tiny block budget forces many query and reference blocks
    res = nv.nearest_neighbors(q, open_maps(tmp_path / "ref.npy"), k=4, space="pixel", block_bytes=2**16)
    idx, d = brute_knn(q, ref, 4)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.distances, d, rtol=1e-12)
    assert res.certified.all()


def test_float32_products_are_rechecked_exactly():
    """Near-ties far below float32 resolution (|a|^2 ~ 1e4 x their gaps) still come out in exact order."""
    rng = np.random.default_rng(3)
    base = (10.0 + rng.standard_normal(256)).astype(np.float64)
    eps = rng.permutation(np.arange(1, 41)) * 1e-7
    ref = base[None, :] + eps[:, None] * rng.standard_normal((40, 256))
    ref = np.concatenate([ref, base[None, :] + 5.0 + rng.standard_normal((60, 256))])
    q = base[None, :] + 1e-9 * rng.standard_normal((1, 256))
    res = nv.knn(q, ref, k=10, block_bytes=2**16)
    idx, d = brute_knn(q, ref, 10)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.distances, d, rtol=1e-9)
    # a plain float32 search gets this order wrong, so the test can fail
    q32, r32 = q.astype(np.float32), ref.astype(np.float32)
    naive = (q32 ** 2).sum(1)[:, None] + (r32 ** 2).sum(1)[None] - 2 * q32 @ r32.T
    assert not np.array_equal(np.argsort(naive, axis=1, kind="stable")[:, :10], idx)


def test_power_knn_equals_brute_force_in_log_power_space():
    ref = smooth_maps(80, 32, seed=4)
    q = smooth_maps(12, 32, seed=5)
    res = nv.nearest_neighbors(q, ref, k=3, space="power", angle_deg=ANGLE)
    fq, fr = nv.power_features(q, ANGLE), nv.power_features(ref, ANGLE)
    assert fq.shape[1] > 5 and np.isfinite(fq).all()
    idx, d = brute_knn(fq, fr, 3)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.distances, d, rtol=1e-10)
    # the space is ln P: a map scaled by 2 is at distance 2 ln 2 sqrt(K) from the original
    d2 = nv.nearest_neighbors(2 * ref[:1], ref, 1, space="power", angle_deg=ANGLE)
    assert d2.indices[0, 0] == 0
    assert d2.distances[0, 0] == pytest.approx(2 * math.log(2) * math.sqrt(fr.shape[1]), rel=1e-9)


def test_knn_exclude_self():
    x = smooth_maps(40, 8, seed=6).reshape(40, -1)
    res = nv.knn(x, x, k=2, exclude_self=True)
    d = np.sqrt(((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    np.testing.assert_array_equal(res.indices, np.argsort(d, axis=1, kind="stable")[:, :2])
    assert (res.indices != np.arange(40)[:, None]).all()


# ----------------------------------------------------------------------------- invariant search
def brute_invariant(q, r):
    """min over 8 dihedral transforms and all periodic shifts, by explicit np.roll."""
    out = np.empty((len(q), len(r)))
    n = q.shape[1]
    for i, a in enumerate(q.astype(np.float64)):
        tr = [nv.dihedral_transform(a, t) for t in range(8)]
        for j, b in enumerate(r.astype(np.float64)):
            out[i, j] = min(np.sum((np.roll(g, (dy, dx), axis=(0, 1)) - b) ** 2)
                            for g in tr for dy in range(n) for dx in range(n))
    return np.sqrt(out)


def test_invariant_search_equals_brute_force():
    ref = smooth_maps(12, 8, seed=7)
    q = np.concatenate([smooth_maps(4, 8, seed=8), copies_of(ref, 2, seed=9, noise=0.01)[0]])
    d = brute_invariant(q, ref)
    idx = np.argsort(d, axis=1, kind="stable")[:, :3]
    for kw in ({}, {"candidates": 3, "lb_modes": 10}):
        res = nv.nearest_neighbors(q, ref, k=3, space="invariant", **kw)
        exact = res.certified
        np.testing.assert_array_equal(res.indices[exact], idx[exact])
        np.testing.assert_allclose(res.distances[exact], np.take_along_axis(d, idx, 1)[exact], rtol=1e-9, atol=1e-12)
        # never below the true minimum (an uncertified answer is an upper bound)
        assert (res.distances[:, 0] >= d.min(axis=1) - 1e-9).all()
    assert nv.nearest_neighbors(q, ref, k=3, space="invariant").certified.all()


def test_shifted_and_flipped_copies_found_by_invariant_search_and_missed_by_pixel_l2(tmp_path):
    train = smooth_maps(300, 32, seed=10)
    np.save(tmp_path / "train.npy", train)
    ref = open_maps(tmp_path / "train.npy")
    copies, src = copies_of(train, 20, seed=11)
    for kw in ({}, {"candidates": 8, "lb_modes": 64}):
        res = nv.nearest_neighbors(copies, ref, k=1, space="invariant", **kw)
        np.testing.assert_array_equal(res.indices[:, 0], src)
        assert res.distances.max() < 1e-6
        assert res.certified.all()
        # the reported transform and shift move each copy exactly onto its training map
        for i in range(len(copies)):
            moved = np.roll(nv.dihedral_transform(copies[i], int(res.transforms[i, 0])),
                            tuple(res.shifts[i, 0]), axis=(0, 1))
            np.testing.assert_allclose(moved, train[src[i]], atol=1e-7)
    plain = nv.nearest_neighbors(copies, ref, k=1, space="pixel")
    assert (plain.indices[:, 0] == src).mean() < 0.2
    assert plain.distances.min() > 0.5 * np.median(nv.nearest_neighbors(
        smooth_maps(20, 32, seed=12), ref, 1, space="pixel").distances)
    d, t, s = nv.invariant_distance(copies[0], train[src[0]])
    assert d < 1e-6


# ----------------------------------------------------------------------------- memorisation
def test_memorisation_fails_shifted_copies_and_passes_independent_maps():
    train = smooth_maps(200, 32, seed=20)
    validation = smooth_maps(60, 32, seed=21)
    # an independent set fails with probability <= alpha = 1% (see the calibration test below);
    # seed 22 happens to be such a 1-in-100 draw (p = 0.005), 24 is not
    independent = smooth_maps(60, 32, seed=24)
    copies, _ = copies_of(train, 60, seed=23, noise=0.002)
    bad = nv.memorisation_test(copies, validation, train, candidates=16)
    good = nv.memorisation_test(independent, validation, train, candidates=16)
    assert not bad.passed and bad.p_value < 1e-10
    assert bad.median_generated < 0.2 * bad.median_validation
    assert bad.close_fraction_generated == 1.0 and bad.certified_generated == 1.0
    assert bad.closest[0]["distance"] < 0.2 * bad.median_validation
    assert good.passed and good.p_value > good.alpha
    assert good.close_fraction_generated < 0.1
    # a subset of copies (one in four) is caught as well
    mixed = np.concatenate([independent[:45], copies[:15]])
    assert not nv.memorisation_test(mixed, validation, train, candidates=16).passed
    # plain pixel L2 cannot see shifted copies: the paper's test would pass them
    assert nv.memorisation_test(copies, validation, train, space="pixel").passed
    d = json.loads(bad.to_json())
    assert d["passed"] is False and d["space"] == "invariant" and len(d["closest"]) == 5


def test_memorisation_false_alarm_rate_is_at_most_its_level():
    """Independent generated and validation sets: p-values are (conservatively) uniform."""
    train = smooth_maps(60, 16, seed=25)
    p = np.array([nv.memorisation_test(smooth_maps(20, 16, seed=1000 + s), smooth_maps(20, 16, seed=5000 + s),
                                       train, space="pixel").p_value for s in range(100)])
    assert (p < 0.05).sum() <= 12          # Binomial(100, 0.05) exceeds 12 with probability 0.002
    assert (p < 0.5).sum() >= 20           # and the test is not vacuous


# ----------------------------------------------------------------------------- birthday paradox
def test_closest_pairs_equal_brute_force():
    x = smooth_maps(70, 8, seed=30)
    x[50] = x[3] + 1e-4
    d = np.sqrt(((x.reshape(70, 1, -1).astype(np.float64) - x.reshape(1, 70, -1)) ** 2).sum(-1))
    iu = np.triu_indices(70, 1)
    order = np.lexsort((iu[1], iu[0], d[iu]))[:7]
    tau = float(np.quantile(d[iu], 0.02))
    res = nv.closest_pairs(x, 7, threshold=tau, block_bytes=2**16)
    np.testing.assert_array_equal(res.i, iu[0][order])
    np.testing.assert_array_equal(res.j, iu[1][order])
    np.testing.assert_allclose(res.distances, d[iu][order], rtol=1e-10)
    assert (res.i[0], res.j[0]) == (3, 50)
    assert res.n_below == int((d[iu] < tau).sum())


def test_birthday_flags_collapsed_set_and_passes_independent_set():
    from paper_repro.gan.models import build_discriminator

    disc = build_discriminator("tiny", seed=0)
    reference = smooth_maps(300, 32, seed=31)
    independent = smooth_maps(300, 32, seed=32)
    rng = np.random.default_rng(33)
    modes = smooth_maps(10, 32, seed=34)
    collapsed = (modes[rng.integers(0, 10, 300)] + 0.003 * rng.standard_normal((300, 32, 32))).astype(np.float32)
    kw = dict(discriminator=disc, data_scale=2.5, angle_deg=ANGLE)
    good = nv.birthday_test(independent, reference, **kw)
    bad = nv.birthday_test(collapsed, reference, **kw)
    assert good.passed and set(good.spaces) == {"pixel", "power", "features"}
    assert not bad.passed
    for space in ("pixel", "power", "features"):
        b, g = bad.spaces[space], good.spaces[space]
        assert not b["passed"] and b["p_value"] < 1e-6, space
        assert b["duplicates"] > 20 * max(1.0, b["expected_duplicates"]), space
        assert g["passed"], space
        assert g["duplicates"] <= 5 * max(2.0, g["expected_duplicates"]), space
        assert len(b["closest_pairs"]) == 10
    # pixel space: the support estimate recovers the 10 distinct maps
    assert 5 < bad.spaces["pixel"]["support"] < 20
    assert bad.spaces["pixel"]["support_ratio"] < 0.01
    json.dumps(bad.to_dict(), allow_nan=False)


# ----------------------------------------------------------------------------- slerp
def test_slerp_endpoints_equal_generator_maps():
    from paper_repro.gan.models import build_generator

    gen = build_generator("tiny", seed=3)
    z0, z1 = np.random.default_rng(40).standard_normal((2, 16)).astype(np.float32)
    res = nv.slerp_path(gen, z0, z1, n_steps=9, data_scale=2.5, angle_deg=ANGLE, n_random=64)
    np.testing.assert_array_equal(res.latents[0], z0)
    np.testing.assert_array_equal(res.latents[-1], z1)
    ends = np.asarray(gen(np.stack([z0, z1]), training=False))[..., 0] / np.float32(2.5)
    np.testing.assert_allclose(res.maps[0], ends[0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(res.maps[-1], ends[1], atol=1e-6, rtol=0)
    assert res.maps.shape == (9, 32, 32) and len(res.ell) == 3
    assert set(res.stats) >= {"mean", "variance", "pixel_step"} and len(res.stats) == 6
    assert res.max_step["pixel"] < 0.5
    json.dumps(res.summary(), allow_nan=False)


def test_slerp_interpolates_on_the_sphere():
    rng = np.random.default_rng(41)
    z0, z1 = rng.standard_normal((2, 64))
    z1 *= np.linalg.norm(z0) / np.linalg.norm(z1)
    path = nv.slerp(z0, z1, np.linspace(0, 1, 11)).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z0), rtol=1e-6)
    cos = path @ z0 / (np.linalg.norm(path, axis=1) * np.linalg.norm(z0))
    ang = np.arccos(np.clip(cos, -1, 1))
    np.testing.assert_allclose(np.diff(ang), ang[-1] / 10, rtol=1e-4)      # constant angular speed


def test_slerp_smoothness_separates_smooth_and_scrambled_generators():
    basis = smooth_maps(16, 32, seed=42).reshape(16, -1)

    def linear(z):                   # a smooth generator: maps linear in z
        return (z @ basis).reshape(len(z), 32, 32) / 4

    def scrambled(z):                # nearby latents give unrelated maps
        seeds = np.abs(np.asarray(z)[:, 0] * 1e6).astype(np.int64)
        return np.stack([smooth_maps(1, 32, seed=int(s))[0] for s in seeds])

    z0, z1 = np.random.default_rng(43).standard_normal((2, 16)).astype(np.float32)
    smooth = nv.slerp_path(linear, z0, z1, angle_deg=ANGLE, n_random=128)
    rough = nv.slerp_path(scrambled, z0, z1, angle_deg=ANGLE, n_random=128)
    assert smooth.smooth and max(smooth.max_step.values()) < 0.5
    assert not rough.smooth and rough.max_step["pixel"] > 0.9


# ----------------------------------------------------------------------------- bad input
def test_bad_input_raises(tmp_path):
    ref = smooth_maps(10, 16, seed=50)
    q = smooth_maps(3, 16, seed=51)
    with pytest.raises(PaperReproError, match="queries"):
        nv.nearest_neighbors(smooth_maps(3, 8, seed=1), ref)
    with pytest.raises(PaperReproError, match="at least 1 maps"):
        nv.nearest_neighbors(q, ref[:0])
    with pytest.raises(PaperReproError, match="k"):
        nv.nearest_neighbors(q, ref, k=11)
    with pytest.raises(PaperReproError, match="space"):
        nv.nearest_neighbors(q, ref, space="cosine")
    bad = ref.copy()
    bad[7, 3, 3] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    mm = np.load(tmp_path / "bad.npy", mmap_mode="r")
    for space in ("pixel", "invariant", "power"):
        with pytest.raises(PaperReproError, match="7 contains NaN"):
            nv.nearest_neighbors(q, mm, space=space, block_bytes=2**16)
    with pytest.raises(PaperReproError, match="at least 3 maps"):
        nv.memorisation_test(q[:2], ref, ref)
    with pytest.raises(PaperReproError, match="validation"):
        nv.memorisation_test(q, smooth_maps(4, 8, seed=2), ref)
    with pytest.raises(PaperReproError, match="discriminator"):
        nv.birthday_test(q, ref, spaces=("features",))
    with pytest.raises(PaperReproError, match="maps"):
        nv.birthday_test(np.zeros((5, 16, 16), np.int32), ref, spaces=("pixel",))
    with pytest.raises(PaperReproError, match="contains NaN"):
        nv.closest_pairs(bad)
    with pytest.raises(PaperReproError, match="antipodal"):
        nv.slerp(np.ones(4), -np.ones(4), [0.5])
    with pytest.raises(PaperReproError, match="z0, z1"):
        nv.slerp(np.ones(4), np.ones(5), [0.5])
    with pytest.raises(PaperReproError, match="NaN"):
        nv.slerp(np.array([1.0, np.nan]), np.ones(2), [0.5])


# ------------------------------------------------------------ held-out-controlled copying test
def test_copying_test_catches_copies_and_not_smoothness():
    """Copies (shifted, flipped, noisy) fail; maps that are merely smoother than the data (closer
    to every set of maps) pass, where the baseline-only memorisation test fails them."""
    from scipy.ndimage import gaussian_filter

    train, held = smooth_maps(300, 32, seed=20), smooth_maps(100, 32, seed=21)
    independent = smooth_maps(90, 32, seed=24)
    copies, _ = copies_of(train, 90, seed=23, noise=0.002)
    bad = nv.copying_test(copies, train, held, candidates=16)
    assert not bad.passed and bad.p_value < 1e-6 and bad.held_out_tail == 0
    assert bad.n_groups == 3 and bad.maps_per_set == 100 and bad.parents_per_set == 100
    assert bad.closest[0]["distance"] < 0.05 * bad.closest[0]["held_out_distance"]
    mixed = np.concatenate([independent[:70], copies[:20]])           # 22% copies
    assert not nv.copying_test(mixed, train, held, candidates=16).passed
    good = nv.copying_test(independent, train, held, candidates=16)
    assert good.passed
    smoother = gaussian_filter(independent, (0, 1, 1), mode="wrap")
    assert nv.copying_test(smoother, train, held, candidates=16).passed
    assert not nv.memorisation_test(smoother, held, train, candidates=16).passed   # the confound
    d = json.loads(bad.to_json())
    assert d["passed"] is False and len(d["closest"]) == 5


def test_copying_test_false_alarm_rate_is_at_most_its_level():
    p = np.array([nv.copying_test(smooth_maps(40, 16, seed=600 + s), smooth_maps(60, 16, seed=100 + s),
                                  smooth_maps(20, 16, seed=300 + s), candidates=None).p_value
                  for s in range(40)])
    assert (p < 0.05).sum() <= 6           # Binomial(40, 0.05) exceeds 6 with probability 0.014
    assert (p < 0.01).sum() <= 3


def test_copying_test_matches_parent_structure():
    """Training and held-out sets are built from as many parents, as many crops of each."""
    rng = np.random.default_rng(0)
    train, held = smooth_maps(120, 16, seed=30), smooth_maps(50, 16, seed=31)
    tp = np.repeat(np.arange(12), 10)          # 12 parents x 10 crops
    hp = np.repeat(np.arange(5), 10)[rng.permutation(50)]           # 5 parents x 10, shuffled
    v = nv.copying_test(smooth_maps(20, 16, seed=32), train, held, training_parents=tp,
                        held_out_parents=hp, candidates=None)
    assert (v.n_groups, v.parents_per_set, v.maps_per_set) == (2, 5, 50)
    assert v.parent_structure == "given parent ids"
    with pytest.raises(PaperReproError, match="training_parents: expected 120 integer"):
        nv.copying_test(smooth_maps(20, 16, seed=32), train, held, training_parents=tp[:-1],
                        held_out_parents=hp)
    with pytest.raises(PaperReproError, match="tail_sigma"):
        nv.copying_test(smooth_maps(20, 16, seed=32), train, held, tail_sigma=0)
