"""paper_repro.stats.copying: the memorisation and held-out-controlled copying tests catch shifted and
flipped copies, pass independent maps, and (the copying test) pass maps merely smoother than the data.

The copying test's power at every copying rate and kind of copy, and its false-failure rate on
independent simulations, run here on a small simulated dataset (32^2 crops) built in seconds; the
same on the project's datasets (64^2, 25,600 training maps) in tests/stats/test_copying_calibration.py
(slow)."""
import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from paper_repro.config import PIXEL_DEG, DatasetConfig, SimulationConfig, SplitSizes
from paper_repro.errors import PaperReproError
from paper_repro.maps.datasets import build_dataset, load_dataset
from paper_repro.stats.copying import copying_test, memorisation_test
from tests.helpers import smooth_maps
from tests.stats.references import COPY_KINDS, copies_of, plant_copies


def test_memorisation_fails_shifted_copies_and_passes_independent_maps():
    train = smooth_maps(200, 32, seed=20)
    validation = smooth_maps(60, 32, seed=21)
    # an independent set fails with probability <= alpha = 1% (see the calibration test below);
    # seed 22 happens to be such a 1-in-100 draw (p = 0.005), 24 is not
    independent = smooth_maps(60, 32, seed=24)
    copies, _ = copies_of(train, 60, seed=23, noise=0.002)
    bad = memorisation_test(copies, validation, train, candidates=16)
    good = memorisation_test(independent, validation, train, candidates=16)
    assert not bad.passed and bad.p_value < 1e-10
    assert bad.median_generated < 0.2 * bad.median_validation
    assert bad.close_fraction_generated == 1.0 and bad.certified_generated == 1.0
    assert bad.closest[0]["distance"] < 0.2 * bad.median_validation
    assert good.passed and good.p_value > good.alpha
    assert good.close_fraction_generated < 0.1
    # a subset of copies (one in four) is caught as well
    mixed = np.concatenate([independent[:45], copies[:15]])
    assert not memorisation_test(mixed, validation, train, candidates=16).passed
    # plain pixel L2 cannot see shifted copies: the paper's test would pass them
    assert memorisation_test(copies, validation, train, space="pixel").passed
    d = json.loads(bad.to_json())
    assert d["passed"] is False and d["space"] == "invariant" and len(d["closest"]) == 5


def test_memorisation_false_alarm_rate_is_at_most_its_level():
    """Independent generated and validation sets: p-values are (conservatively) uniform."""
    train = smooth_maps(60, 16, seed=25)
    p = np.array([memorisation_test(smooth_maps(20, 16, seed=1000 + s), smooth_maps(20, 16, seed=5000 + s),
                                       train, space="pixel").p_value for s in range(100)])
    assert (p < 0.05).sum() <= 12          # Binomial(100, 0.05) exceeds 12 with probability 0.002
    assert (p < 0.5).sum() >= 20           # and the test is not vacuous


def test_copying_test_catches_copies_and_not_smoothness():
    """Copies (shifted, flipped, noisy) fail; maps that are merely smoother than the data (closer
    to every set of maps) pass, where the baseline-only memorisation test fails them."""
    train, held = smooth_maps(300, 32, seed=20), smooth_maps(100, 32, seed=21)
    independent = smooth_maps(90, 32, seed=24)
    copies, _ = copies_of(train, 90, seed=23, noise=0.002)
    bad = copying_test(copies, train, held, calibration_maps=64)
    assert not bad.passed and bad.p_value < 1e-6 and bad.held_out_tail == 0
    assert bad.n_groups == 3 and bad.maps_per_set == 100 and bad.parents_per_set == 100
    assert bad.closest[0]["distance"] < 0.05 * bad.closest[0]["held_out_distance"]
    mixed = np.concatenate([independent[:70], copies[:20]])           # 22% copies
    assert not copying_test(mixed, train, held, calibration_maps=64).passed
    good = copying_test(independent, train, held, calibration_maps=64)
    assert good.passed
    smoother = gaussian_filter(independent, (0, 1, 1), mode="wrap")
    assert copying_test(smoother, train, held, calibration_maps=64).passed
    assert not memorisation_test(smoother, held, train, candidates=16).passed   # the confound
    d = json.loads(bad.to_json())
    assert d["passed"] is False and len(d["closest"]) == 5


def test_copying_test_false_alarm_rate_is_at_most_its_level():
    p = np.array([copying_test(smooth_maps(40, 16, seed=600 + s), smooth_maps(60, 16, seed=100 + s),
                                  smooth_maps(20, 16, seed=300 + s), calibration_maps=20).p_value
                  for s in range(40)])
    assert (p < 0.05).sum() <= 6           # Binomial(40, 0.05) exceeds 6 with probability 0.014
    assert (p < 0.01).sum() <= 3


def test_copying_test_matches_parent_structure():
    """Training and held-out sets are built from as many parents, as many crops of each."""
    rng = np.random.default_rng(0)
    train, held = smooth_maps(120, 16, seed=30), smooth_maps(50, 16, seed=31)
    tp = np.repeat(np.arange(12), 10)          # 12 parents x 10 crops
    hp = np.repeat(np.arange(5), 10)[rng.permutation(50)]           # 5 parents x 10, shuffled
    v = copying_test(smooth_maps(20, 16, seed=32), train, held, training_parents=tp,
                        held_out_parents=hp)
    assert (v.n_groups, v.parents_per_set, v.maps_per_set) == (2, 5, 50)
    assert v.parent_structure == "given parent ids"
    with pytest.raises(PaperReproError, match="training_parents: expected 120 integer"):
        copying_test(smooth_maps(20, 16, seed=32), train, held, training_parents=tp[:-1],
                        held_out_parents=hp)
    with pytest.raises(PaperReproError, match="tail_sigma"):
        copying_test(smooth_maps(20, 16, seed=32), train, held, tail_sigma=0)
    with pytest.raises(PaperReproError, match="calibration_maps"):
        copying_test(smooth_maps(20, 16, seed=32), train, held, calibration_maps=2)
    with pytest.raises(PaperReproError, match="max_checked"):
        copying_test(smooth_maps(20, 16, seed=32), train, held, max_checked=-1)


def test_bad_input_raises():
    ref = smooth_maps(10, 16, seed=50)
    q = smooth_maps(3, 16, seed=51)
    with pytest.raises(PaperReproError, match="at least 3 maps"):
        memorisation_test(q[:2], ref, ref)
    with pytest.raises(PaperReproError, match="validation"):
        memorisation_test(q, smooth_maps(4, 8, seed=2), ref)
    with pytest.raises(PaperReproError, match="held_out"):
        copying_test(q, ref, smooth_maps(4, 8, seed=2))


# ------------------------------------------------------------ on a small simulated dataset
#: 32^2 crops of 256^2 simulated maps at the paper's pixel scale, 50 crops per parent: 4 training
#: parents, 4 held-out parents (validation + auxiliary, so one training set: K = 1) and 80
#: development parents, the queries (4,000 maps) and the pool of the independent-simulation trials
SMALL = DatasetConfig("copying-small", SimulationConfig(map_size=256, angle_deg=256 * PIXEL_DEG),
                      crop_size=32, crops_per_map=50,
                      splits=SplitSizes(train=4, validation=2, development=80, auxiliary=2))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    ds = load_dataset(build_dataset(tmp_path_factory.mktemp("copying") / "small", SMALL).parent)
    vp, ap = ds.index("validation")[:, 0], ds.index("auxiliary")[:, 0]
    return dict(train=np.asarray(ds["train"]), train_parents=ds.index("train")[:, 0],
                held=np.concatenate([np.asarray(ds["validation"]), np.asarray(ds["auxiliary"])]),
                held_parents=np.concatenate([vp, ap + vp.max() + 1]),
                pool=np.asarray(ds["development"]), pool_parents=ds.index("development")[:, 0],
                queries=np.asarray(ds["development"])[:200], angle=SMALL.crop_angle_deg)


def _copying(d, q, **kw):
    return copying_test(q, d["train"], d["held"], training_parents=d["train_parents"],
                        held_out_parents=d["held_parents"], **kw)


@pytest.fixture(scope="module")
def small_null(small):
    return _copying(small, small["queries"])


def test_fast_independent_and_smoothed_simulated_maps_pass(small, small_null):
    v = small_null
    assert v.passed and v.n_groups == 1 and v.maps_per_set == 200, v.to_json()
    assert v.training_tail == v.held_out_tail == 0 and v.p_value == 1.0
    smoother = gaussian_filter(small["queries"], (0, 0.7, 0.7), mode="wrap").astype(np.float32)
    assert _copying(small, smoother).passed
    # ... while the baseline-only test, which sees them closer to the training set, fails them
    base = memorisation_test(smoother[:100], small["held"][:100], small["train"], angle_deg=small["angle"],
                             candidates=16)
    assert not base.passed


@pytest.mark.parametrize("kind", COPY_KINDS)
@pytest.mark.parametrize("rate", [1.0, 0.5, 0.1])
def test_fast_every_copying_rate_and_kind_fails(small, small_null, rate, kind):
    """100%, 50% and 10% of 200 maps copied from the training set, exactly, rolled and turned, or
    rolled, turned and noisy (10% of the map's rms): the criterion fails by a wide margin, every copy
    stands out at a training set (checked in pixels: the training map found is its source, provably
    the nearest), no other map does."""
    q, idx, src = plant_copies(small["queries"], small["train"], rate, kind, seed=int(rate * 10))
    v = _copying(small, q)
    n = len(idx)
    assert not v.passed and v.p_value <= 0.5 ** n * 1.0001, v.to_json()   # K = 1: p = 2^-copies
    assert v.training_outliers == idx.tolist() and v.held_out_tail == 0
    assert v.certified_outlying == 1.0 and v.verified >= min(n, 256)
    for row in v.closest:
        assert row["training"] == src[row["generated"]] and row["certified"]
        assert row["distance"] < (1e-6 if kind != "noisy" else 0.3 * row["held_out_distance"])
        assert row["amplitude_distance"] <= row["distance"] * (1 + 1e-9) + 1e-9   # features bound it below
    # the yardstick is the real maps', not the maps under test: the same for every generated set
    null = small_null
    assert v.log_distance_offsets == null.log_distance_offsets and v.outlier_sigma == null.outlier_sigma


@pytest.mark.parametrize("kind", COPY_KINDS)
def test_fast_two_percent_copies_of_4000_maps_fail(small, kind):
    """80 of 4,000 maps copied: every copy flagged; p = 2^-80 with one training set (K = 1)."""
    q, idx, _ = plant_copies(small["pool"], small["train"], 0.02, kind, seed=5)
    v = _copying(small, q)
    assert len(q) == 4000 and len(idx) == 80
    assert not v.passed and v.p_value < 1e-20, v.to_json()
    assert set(idx.tolist()) <= set(v.training_outliers) and v.held_out_tail == 0


def null_trials(pool, parents, n_trials, seed, per_role=4, **kw):
    """The copying test on independent simulations: per trial, 3 x ``per_role`` distinct parents of
    the pool drawn at random as training, held-out and query maps. Returns the verdicts."""
    rng = np.random.default_rng(seed)
    ids = np.unique(parents)
    out = []
    for i in range(n_trials):
        roles = rng.choice(ids, 3 * per_role, replace=False).reshape(3, per_role)
        sel = [np.flatnonzero(np.isin(parents, r)) for r in roles]
        out.append(copying_test(pool[sel[2]], pool[sel[0]], pool[sel[1]], training_parents=parents[sel[0]],
                                held_out_parents=parents[sel[1]], seed=i, **kw))
    return out


def test_fast_independent_simulations_fail_at_most_at_the_nominal_rate(small):
    """60 trials of training, held-out and query maps from disjoint independent parents: the
    criterion (level alpha = 0.01) fails at most 3 times (Binomial(60, 0.01) > 3: p = 0.003). With
    the tail cut lowered to 2 sigma, so that maps stand out by chance, the binomial part alone is
    checked: p < 0.1 in at most 12 trials (Binomial(60, 0.1) > 12: p = 0.006), and not vacuously
    (maps stand out in most trials)."""
    v = null_trials(small["pool"], small["pool_parents"], 60, seed=1, per_role=3)
    assert sum(not x.passed for x in v) <= 3, [x.p_value for x in v]
    loose = null_trials(small["pool"], small["pool_parents"], 60, seed=2, per_role=3, tail_sigma=2.0)
    assert sum(x.p_value < 0.1 for x in loose) <= 12, [x.p_value for x in loose]
    assert sum(x.training_tail + x.held_out_tail > 0 for x in loose) >= 30
