"""The memorisation criterion (stats.copying.copying_test) on the project's own datasets (slow, minutes).

Fast versions on a small simulated dataset: tests/stats/test_copying.py.

Null: development maps (parents never used in training or held out) pass, also when smoothed so
that they sit closer to every set (the confound of the baseline-only test, which fails them); fresh
small simulated datasets pass at the test's level. Alternative: 5% of 1,000 and 2% of 4,000 queries
replaced by training maps (exact, shifted / flipped, noisy) fail.
"""
import dataclasses

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from paper_repro.evaluation.reproduction import DATA_ROOT, ensure_dataset
from paper_repro.maps.datasets import build_dataset, load_dataset, open_split
from paper_repro.stats.copying import copying_test, memorisation_test
from tests.stats.test_copying import SMALL, _plant

pytestmark = pytest.mark.slow
N = 1000


@pytest.fixture(scope="module")
def data():
    train_dir = ensure_dataset(DATA_ROOT / "cpu", "cpu", progress=False)
    ref_dir = ensure_dataset(DATA_ROOT / "reference", "reference", progress=False)
    held = np.concatenate([np.asarray(open_split(ref_dir, "validation")),
                           np.asarray(open_split(ref_dir, "auxiliary"))])
    vp = np.load(ref_dir / "validation_index.npy")[:, 0]
    ap = np.load(ref_dir / "auxiliary_index.npy")[:, 0] + vp.max() + 1
    dev = np.asarray(open_split(train_dir, "development"))
    queries = dev[np.random.default_rng(0).permutation(len(dev))[:N]]
    return dict(train=open_split(train_dir, "train"), train_parents=np.load(train_dir / "train_index.npy")[:, 0],
                held=held, held_parents=np.concatenate([vp, ap]), queries=queries,
                angle=0.2165, validation=open_split(train_dir, "validation"))


def _test(d, q):
    return copying_test(q, d["train"], d["held"], training_parents=d["train_parents"],
                           held_out_parents=d["held_parents"])


def test_independent_and_smoothed_maps_pass(data):
    assert _test(data, data["queries"]).passed
    smoother = gaussian_filter(data["queries"], (0, 0.7, 0.7), mode="wrap").astype(np.float32)
    v = _test(data, smoother)
    assert v.passed, v.to_json()
    # ... while the baseline-only test, which sees them closer to the training set, fails them
    base = memorisation_test(smoother[:300], np.asarray(data["held"][::16][:300]), data["train"],
                                angle_deg=data["angle"])
    assert not base.passed


def test_five_percent_copies_fail(data):
    rng = np.random.default_rng(1)
    q = data["queries"].copy()
    src = rng.choice(len(data["train"]), N // 20, replace=False)
    for a, s in enumerate(src):
        x = np.roll(np.asarray(data["train"][s]), tuple(rng.integers(0, 64, 2)), axis=(0, 1))
        q[a] = x[:, ::-1] if a % 2 else x
    v = _test(data, q)
    assert not v.passed and v.p_value < 1e-4, v.to_json()


def test_two_percent_copies_of_4000_maps_fail(data):
    """4,000 independent maps (the training dataset's validation split: parents never trained on
    or held out), 80 of them replaced by training maps, a third each exact, shifted + flipped, noisy."""
    q, kinds = _plant(np.asarray(data["validation"][:4000]), data["train"], 0.02, seed=3)
    v = _test(data, q)
    assert len(q) == 4000 and not v.passed and v.p_value < 1e-6, v.to_json()
    for kind, idx in kinds.items():
        assert set(idx) <= set(v.training_outliers), kind


def test_fresh_simulations_pass_at_the_nominal_rate(tmp_path):
    """20 independent small datasets (training, held-out and query maps of fresh seeds): the
    criterion at alpha = 0.01 fails Binomial(20, 0.01) times; more than 2 has probability 0.001."""
    p = []
    for seed in range(20):
        cfg = dataclasses.replace(SMALL, name=f"copying-null-{seed}", seed=1000 + 10 * seed)
        ds = load_dataset(build_dataset(tmp_path / str(seed), cfg).parent)
        vp, ap = ds.index("validation")[:, 0], ds.index("auxiliary")[:, 0]
        v = copying_test(np.asarray(ds["development"]), np.asarray(ds["train"]),
                         np.concatenate([np.asarray(ds["validation"]), np.asarray(ds["auxiliary"])]),
                         training_parents=ds.index("train")[:, 0],
                         held_out_parents=np.concatenate([vp, ap + vp.max() + 1]), candidates=16, seed=seed)
        p.append(v.p_value)
    p = np.array(p)
    assert (p < 0.01).sum() <= 2, p
