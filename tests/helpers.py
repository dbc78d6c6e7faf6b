"""Helpers shared by the unit tests, benchmarks and the certification suite: small seeded maps and
a selection score that needs no maps. Import as ``from tests.helpers import smooth_maps``."""
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


def smooth_maps(n: int, size: int, seed: int, amplitude: float = 0.05) -> np.ndarray:
    """Simple smooth random maps (Gaussian-filtered white noise), float32 (n, size, size)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.standard_normal((n, size, size)), sigma=(0, 2, 2), mode="wrap")
    x *= amplitude / x.std()
    return x.astype(np.float32)


def check(report, name):
    """Assert one certification criterion, with the report's numbers in the failure message."""
    c = report.criteria[name]
    lines = [f"{x['name']}: value {x['value']} limit {x['limit']} baseline {x['baseline']} ({x['rule']})"
             for x in c["criteria"]]
    assert c["passed"], f"{name} failed:\n" + "\n".join(lines)

#: side (px) and angle (deg) of the certification tests' crops: 64 px at the paper's 0.203 arcmin
SIZE, ANGLE = 64, 64 * 3.464 / 1024


def crops(seed, n_parents=6, per_map=100, model="lognormal", sigma_8=0.798):
    """n_parents x per_map random 64^2 crops of 1024^2 maps at the paper's pixel scale."""
    from paper_repro.config import CosmologyConfig, SimulationConfig
    from paper_repro.maps.datasets import random_crops
    from paper_repro.maps.simulation import get_simulator

    sim = get_simulator(SimulationConfig(CosmologyConfig(sigma_8=sigma_8), model=model))
    rng = np.random.default_rng(seed)
    out = [random_crops(sim.map(np.random.SeedSequence([seed, i])), SIZE, per_map, rng)[0]
           for i in range(n_parents)]
    return np.concatenate(out).astype(np.float32)
