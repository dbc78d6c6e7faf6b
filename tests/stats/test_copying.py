"""paper_repro.stats.copying: the memorisation and held-out-controlled copying tests catch shifted and
flipped copies, pass independent maps, and (the copying test) pass maps merely smoother than the data.

The fast versions of the headline property of tests/stats/test_copying_calibration.py (which runs on
the project's full datasets, slow) run here on a small simulated dataset built in a second."""
import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from paper_repro.config import PIXEL_DEG, DatasetConfig, SimulationConfig, SplitSizes
from paper_repro.errors import PaperReproError
from paper_repro.maps.datasets import build_dataset, load_dataset
from paper_repro.stats.copying import copying_test, memorisation_test
from paper_repro.stats.neighbours import dihedral_transform
from tests.helpers import smooth_maps
from tests.stats.references import copies_of


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
    bad = copying_test(copies, train, held, candidates=16, calibration_maps=64)
    assert not bad.passed and bad.p_value < 1e-6 and bad.held_out_tail == 0
    assert bad.n_groups == 3 and bad.maps_per_set == 100 and bad.parents_per_set == 100
    assert bad.closest[0]["distance"] < 0.05 * bad.closest[0]["held_out_distance"]
    mixed = np.concatenate([independent[:70], copies[:20]])           # 22% copies
    assert not copying_test(mixed, train, held, candidates=16, calibration_maps=64).passed
    good = copying_test(independent, train, held, candidates=16, calibration_maps=64)
    assert good.passed
    smoother = gaussian_filter(independent, (0, 1, 1), mode="wrap")
    assert copying_test(smoother, train, held, candidates=16, calibration_maps=64).passed
    assert not memorisation_test(smoother, held, train, candidates=16).passed   # the confound
    d = json.loads(bad.to_json())
    assert d["passed"] is False and len(d["closest"]) == 5


def test_copying_test_false_alarm_rate_is_at_most_its_level():
    p = np.array([copying_test(smooth_maps(40, 16, seed=600 + s), smooth_maps(60, 16, seed=100 + s),
                                  smooth_maps(20, 16, seed=300 + s), candidates=None, calibration_maps=20).p_value
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
                        held_out_parents=hp, candidates=None)
    assert (v.n_groups, v.parents_per_set, v.maps_per_set) == (2, 5, 50)
    assert v.parent_structure == "given parent ids"
    with pytest.raises(PaperReproError, match="training_parents: expected 120 integer"):
        copying_test(smooth_maps(20, 16, seed=32), train, held, training_parents=tp[:-1],
                        held_out_parents=hp)
    with pytest.raises(PaperReproError, match="tail_sigma"):
        copying_test(smooth_maps(20, 16, seed=32), train, held, tail_sigma=0)
    with pytest.raises(PaperReproError, match="calibration_maps"):
        copying_test(smooth_maps(20, 16, seed=32), train, held, calibration_maps=2)


def test_bad_input_raises():
    ref = smooth_maps(10, 16, seed=50)
    q = smooth_maps(3, 16, seed=51)
    with pytest.raises(PaperReproError, match="at least 3 maps"):
        memorisation_test(q[:2], ref, ref)
    with pytest.raises(PaperReproError, match="validation"):
        memorisation_test(q, smooth_maps(4, 8, seed=2), ref)
    with pytest.raises(PaperReproError, match="held_out"):
        copying_test(q, ref, smooth_maps(4, 8, seed=2))


# ------------------------------------------------------------ fast versions of the calibration test
#: 32^2 crops of 256^2 simulated maps at the paper's pixel scale: 4 training parents, 4 held-out
#: parents (validation + auxiliary, so one training set: K = 1) and 4 development parents as queries,
#: 50 crops each (the slow test: 128, 40 and 10 parents of 200 crops of 64^2)
SMALL = DatasetConfig("copying-small", SimulationConfig(map_size=256, angle_deg=256 * PIXEL_DEG),
                      crop_size=32, crops_per_map=50,
                      splits=SplitSizes(train=4, validation=2, development=4, auxiliary=2))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    ds = load_dataset(build_dataset(tmp_path_factory.mktemp("copying") / "small", SMALL).parent)
    vp, ap = ds.index("validation")[:, 0], ds.index("auxiliary")[:, 0]
    return dict(train=np.asarray(ds["train"]), train_parents=ds.index("train")[:, 0],
                held=np.concatenate([np.asarray(ds["validation"]), np.asarray(ds["auxiliary"])]),
                held_parents=np.concatenate([vp, ap + vp.max() + 1]),
                queries=np.asarray(ds["development"]), angle=SMALL.crop_angle_deg)


def _copying(d, q):
    return copying_test(q, d["train"], d["held"], training_parents=d["train_parents"],
                        held_out_parents=d["held_parents"], candidates=16)


@pytest.fixture(scope="module")
def small_null(small):
    return _copying(small, small["queries"])


def test_fast_independent_and_smoothed_simulated_maps_pass(small, small_null):
    v = small_null
    assert v.passed and v.n_groups == 1 and v.maps_per_set == 200, v.to_json()
    smoother = gaussian_filter(small["queries"], (0, 0.7, 0.7), mode="wrap").astype(np.float32)
    assert _copying(small, smoother).passed
    # ... while the baseline-only test, which sees them closer to the training set, fails them
    base = memorisation_test(smoother[:100], small["held"][:100], small["train"], angle_deg=small["angle"],
                             candidates=16)
    assert not base.passed


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_five_percent_simulated_copies_fail(small, seed):
    rng = np.random.default_rng(seed)
    q = small["queries"].copy()
    src = rng.choice(len(small["train"]), len(q) // 20, replace=False)          # 10 of 200
    for a, s in enumerate(src):
        x = np.roll(small["train"][s], tuple(rng.integers(0, 32, 2)), axis=(0, 1))
        q[a] = x[:, ::-1] if a % 2 else x
    v = _copying(small, q)
    assert not v.passed and v.p_value < v.alpha, v.to_json()
    assert v.training_tail >= len(src) and v.held_out_tail == 0
    assert {row["training"] for row in v.closest} <= set(src.tolist())


# ------------------------------------------------------------ power at every copying rate
def _plant(queries, train, rate, seed):
    """Replace a share ``rate`` of the queries by training maps: a third exact copies, a third
    rolled and flipped/rotated, a third rolled and flipped with noise of 10% of the map's rms."""
    rng = np.random.default_rng(seed)
    q = queries.copy()
    n = int(round(rate * len(q)))
    src = rng.choice(len(train), n, replace=False)
    kinds = {"exact": [], "shifted": [], "noisy": []}
    for a, s in enumerate(src):
        x = np.asarray(train[s], dtype=np.float64)
        kind = ("exact", "shifted", "noisy")[a % 3]
        if kind != "exact":
            x = np.roll(dihedral_transform(x, int(rng.integers(1, 8))), tuple(rng.integers(0, x.shape[0], 2)),
                        axis=(0, 1))
        if kind == "noisy":
            x = x + 0.1 * x.std() * rng.standard_normal(x.shape)
        q[a] = x
        kinds[kind].append(a)
    return q, kinds


@pytest.mark.parametrize("rate", [1.0, 0.5, 0.1])
def test_fast_every_copying_rate_fails_and_every_copy_stands_out(small, small_null, rate):
    """100%, 50% and 10% of 200 maps copied (exact, shifted + flipped, noisy): the criterion fails
    by a wide margin, every copy is found standing out at a training set, no other map is."""
    q, kinds = _plant(small["queries"], small["train"], rate, seed=int(rate * 10))
    v = _copying(small, q)
    n = sum(len(i) for i in kinds.values())
    assert not v.passed and v.p_value <= 0.5 ** n * 1.0001, v.to_json()   # K = 1: p = 2^-copies
    for kind, idx in kinds.items():
        assert set(idx) <= set(v.training_outliers), kind
    assert v.training_tail == n and v.held_out_tail == 0
    assert v.certified_outlying == 1.0
    # the yardstick is the real maps', not the maps under test: the same for every generated set
    null = small_null
    assert v.log_distance_offsets == null.log_distance_offsets and v.outlier_sigma == null.outlier_sigma
