"""Helpers shared by the unit tests, benchmarks and the certification suite: small seeded maps and
a selection score that needs no maps. Import as ``from tests.helpers import smooth_maps``."""
import functools
from pathlib import Path

import numpy as np

#: small committed fixtures (the LensTools 1.2 oracle's values)
DATA = Path(__file__).parent / "data"


def weights_scorer(model) -> float:
    """A deterministic selection score that tells generators apart by their weights (no maps made)."""
    return float(abs(np.sum(model.weights[0].numpy())) % 1.0)


class Killed(Exception):
    """Raised by :class:`KillAfter`: the training run stopped as if its process were killed."""


class KillAfter:
    """A training callback (``train(..., callbacks=[KillAfter(n)])``) that raises :class:`Killed`
    after ``n`` steps of this call, before that step's checkpoint: a run killed between checkpoints."""

    def __init__(self, steps: int):
        self.steps, self.done = steps, 0

    def on_train_batch_end(self, step, logs=None):
        self.done += 1
        if self.done >= self.steps:
            raise Killed(f"after {self.done} steps")


def killed_and_resumed(tmp_path: Path, preset: str, grid: Path) -> Path:
    """Train conditional ``preset`` (4 steps an epoch, 2 epochs) on ``grid`` twice through the CLI, once
    straight and once killed after step 5 and resumed; assert both end at step 8 with identical
    states and return the resumed run."""
    import pytest

    from paper_repro.cli import main
    from paper_repro.gan import runs
    from paper_repro.gan.training import train

    ref, run = tmp_path / "ref", tmp_path / "run"
    assert main(["train", "--preset", preset, "--data", str(grid), "--out", str(ref), "--seed", "7"]) == 0
    with pytest.raises(Killed):
        train(run, preset, grid, seed=7, progress=False, callbacks=[KillAfter(5)])
    assert main(["train", "--out", str(run), "--resume"]) == 0
    (got, meta), (want, _) = (runs.load_checkpoint(runs.latest_checkpoint(r)) for r in (run, ref))
    assert meta["global_step"] == 8
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)
    return run


def smooth_maps(n: int, size: int, seed: int, amplitude: float = 0.05) -> np.ndarray:
    """Simple smooth random maps (Gaussian-filtered white noise), float32 (n, size, size)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.standard_normal((n, size, size)), sigma=(0, 2, 2), mode="wrap")
    x *= amplitude / x.std()
    return x.astype(np.float32)


def check(report, name):
    """Assert one certification criterion, with the report's numbers in the failure message; over
    draws (``report.draws``) its verdict over the draws, each test's median against its limit."""
    if getattr(report, "draws", None) is not None:
        d = report.draws["criteria"][name]
        lines = [f"{t}: median {v['median']} limit {v['limit']} (passed in {v['passes']} of {d['draws']} draws; "
                 f"worst {v['worst_value']} in draw {v['worst_draw']})" for t, v in d["tests"].items()]
        assert d["passed"], f"{name} failed over {d['draws']} draws:\n" + "\n".join(lines)
        return
    c = report.criteria[name]
    lines = [f"{x['name']}: value {x['value']} limit {x['limit']} baseline {x['baseline']} ({x['rule']})"
             for x in c["criteria"]]
    if "horizon" in c:
        lines.append(f"horizon: {c['horizon']['text']}")
    assert c["passed"], f"{name} failed:\n" + "\n".join(lines)

#: side (px) and angle (deg) of the certification tests' crops: 64 px at the paper's 0.203 arcmin
SIZE, ANGLE = 64, 64 * 3.464 / 1024


@functools.lru_cache(maxsize=8)
def crops(seed, n_parents=6, per_map=100, model="lognormal", sigma_8=0.798):
    """n_parents x per_map random 64^2 crops of 1024^2 maps at the paper's pixel scale (read-only;
    the last 8 sets are kept, so that test modules of one session simulate a set once)."""
    from paper_repro.config import CosmologyConfig, SimulationConfig
    from paper_repro.maps.datasets import random_crops
    from paper_repro.maps.simulation import get_simulator

    sim = get_simulator(SimulationConfig(CosmologyConfig(sigma_8=sigma_8), model=model))
    rng = np.random.default_rng(seed)
    out = [random_crops(sim.map(np.random.SeedSequence([seed, i])), SIZE, per_map, rng)[0]
           for i in range(n_parents)]
    maps = np.concatenate(out).astype(np.float32)
    maps.setflags(write=False)
    return maps


def epoch_weights(run, epoch: int, preset: str = "tiny") -> list:
    """Trainable generator weights a run saved at the end of ``epoch`` (1-based)."""
    from paper_repro.gan.models import build_generator

    model = build_generator(preset)
    model.load_weights(run / "generators" / f"epoch-{epoch:04d}.weights.h5")
    return [w.numpy() for w in model.trainable_weights]


def check_birthday_separates(features, angle_deg: float):
    """The birthday test in every space, ``features`` the features space: a set collapsed onto 10
    maps fails by a wide margin, an independent set passes; returns the collapsed set's verdict."""
    from paper_repro.stats.birthday import birthday_test

    reference = smooth_maps(300, 32, seed=31)
    independent = smooth_maps(300, 32, seed=32)
    rng = np.random.default_rng(33)
    modes = smooth_maps(10, 32, seed=34)
    collapsed = (modes[rng.integers(0, 10, 300)] + 0.003 * rng.standard_normal((300, 32, 32))).astype(np.float32)
    kw = dict(features=features, angle_deg=angle_deg)
    good = birthday_test(independent, reference, **kw)
    bad = birthday_test(collapsed, reference, **kw)
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
    return bad


def untimed(x):
    """A report without its timings (keys ``seconds`` and ``*_seconds``, at any depth)."""
    if isinstance(x, dict):
        return {k: untimed(v) for k, v in x.items() if not (k == "seconds" or k.endswith("_seconds"))}
    return [untimed(v) for v in x] if isinstance(x, list) else x
