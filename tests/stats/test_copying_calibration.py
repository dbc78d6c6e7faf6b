"""The memorisation criterion (stats.copying.copying_test) on the project's own datasets (slow, minutes).

Fast versions on a small simulated dataset: tests/stats/test_copying.py.

Null: 4,000 maps of parents never trained on or held out pass, also when smoothed so that they sit
closer to every set (the confound of the baseline-only test, which fails them); hundreds of trials
of independent simulations pass at the test's level. Alternative: 100%, 50%, 10% and 2% of 4,000
maps replaced by training maps (exact, rolled and turned, or rolled, turned and noisy) fail.
"""
import dataclasses

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.stats import beta

from paper_repro.config import PIXEL_DEG, SimulationConfig, SplitSizes
from paper_repro.evaluation.reproduction import DATA_ROOT, ensure_dataset
from paper_repro.maps.datasets import build_dataset, load_dataset, open_split
from paper_repro.stats.copying import copying_test, memorisation_test
from tests.stats.references import COPY_KINDS, plant_copies
from tests.stats.test_copying import SMALL, null_trials

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data():
    train_dir = ensure_dataset(DATA_ROOT / "cpu", "cpu", progress=False)
    ref_dir = ensure_dataset(DATA_ROOT / "reference", "reference", progress=False)
    held = np.concatenate([np.asarray(open_split(ref_dir, "validation")),
                           np.asarray(open_split(ref_dir, "auxiliary"))])
    vp = np.load(ref_dir / "validation_index.npy")[:, 0]
    ap = np.load(ref_dir / "auxiliary_index.npy")[:, 0] + vp.max() + 1
    # the training dataset's validation split: 20 parents never trained on or held out, 4,000 maps
    return dict(train=open_split(train_dir, "train"), train_parents=np.load(train_dir / "train_index.npy")[:, 0],
                held=held, held_parents=np.concatenate([vp, ap]),
                queries=np.asarray(open_split(train_dir, "validation"))[:4000], angle=0.2165)


def _test(d, q):
    return copying_test(q, d["train"], d["held"], training_parents=d["train_parents"],
                        held_out_parents=d["held_parents"])


def test_independent_and_smoothed_maps_pass(data):
    v = _test(data, data["queries"])
    assert v.passed and v.n_groups == 3 and v.training_tail == v.held_out_tail == 0, v.to_json()
    smoother = gaussian_filter(data["queries"], (0, 0.7, 0.7), mode="wrap").astype(np.float32)
    v = _test(data, smoother)
    assert v.passed, v.to_json()
    # ... while the baseline-only test, which sees them closer to the training set, fails them
    base = memorisation_test(smoother[:300], np.asarray(data["held"][::16][:300]), data["train"],
                             angle_deg=data["angle"])
    assert not base.passed


@pytest.mark.parametrize("kind", COPY_KINDS)
@pytest.mark.parametrize("rate", [1.0, 0.5, 0.1, 0.02])
def test_every_copying_rate_and_kind_of_4000_maps_fails(data, rate, kind):
    """A share ``rate`` of 4,000 maps replaced by training maps: every copy stands out at a training
    set (K = 3 training sets: p <= (3/4)^copies), none of the rest at any set."""
    q, idx, _ = plant_copies(data["queries"], data["train"], rate, kind, seed=int(rate * 100))
    v = _test(data, q)
    assert not v.passed and v.p_value <= 0.75 ** len(idx) * 1.0001, v.to_json()
    assert v.training_outliers == idx.tolist() and v.held_out_tail == 0
    assert v.certified_outlying >= (1.0 if kind != "noisy" else 0.99)


#: independent simulations at the project's crop size: 64^2 crops of 256^2 maps, 50 per parent, 150
#: parents (7,500 maps) from which each trial draws 10 training, 10 held-out and 10 query parents
NULL_POOL = dataclasses.replace(SMALL, name="copying-null", seed=2026,
                                simulation=SimulationConfig(map_size=256, angle_deg=256 * PIXEL_DEG),
                                crop_size=64, splits=SplitSizes(train=1, validation=1, development=150, auxiliary=1))


def test_independent_simulations_fail_at_most_at_the_nominal_rate(tmp_path):
    """300 trials: the criterion at alpha = 0.01 fails at most 8 times (Binomial(300, 0.01) > 8:
    p = 0.004); the message gives the measured rate and its 95% upper bound (Clopper-Pearson)."""
    ds = load_dataset(build_dataset(tmp_path / "pool", NULL_POOL).parent)
    v = null_trials(np.asarray(ds["development"]), ds.index("development")[:, 0], 300, seed=3, per_role=10)
    fails = sum(not x.passed for x in v)
    upper = float(beta.ppf(0.95, fails + 1, len(v) - fails))
    said = f"{fails} of {len(v)} failed (95% upper bound {upper:.3f})"
    print(said)
    assert fails <= 8, said
    assert sum(x.training_tail + x.held_out_tail for x in v) <= len(v)   # chance outliers are rare at 8 sigma
