"""Shared test fixtures: quiet TensorFlow, the LensTools oracle fixture, small seeded maps."""
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "agg")

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def lenstools_fixture():
    """4 maps (256^2, 0.866 deg) with LensTools 1.2's statistics at the paper's settings."""
    with np.load(DATA / "lenstools_fixture.npz") as f:
        return {k: f[k] for k in f.files}


def weights_scorer(model) -> float:
    """A deterministic selection score that tells generators apart by their weights (no maps made)."""
    return float(abs(np.sum(model.weights[0].numpy())) % 1.0)


def smooth_maps(n: int, size: int, seed: int, amplitude: float = 0.05) -> np.ndarray:
    """Simple smooth random maps (Gaussian-filtered white noise), float32 (n, size, size)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.standard_normal((n, size, size)), sigma=(0, 2, 2), mode="wrap")
    x *= amplitude / x.std()
    return x.astype(np.float32)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """96 smooth 32x32 maps saved as .npy (the tiny preset's size)."""
    path = tmp_path_factory.mktemp("data") / "maps.npy"
    np.save(path, smooth_maps(96, 32, seed=0))
    return path


def pytest_sessionfinish(session, exitstatus):
    """Free pyccl objects while their C library is still loaded (avoids noise at interpreter exit)."""
    import gc
    import sys

    sim = sys.modules.get("paper_repro.simulation")
    if sim is not None:
        for name in ("ccl_cosmology", "_cl_spline", "get_simulator", "lensing_tracer"):
            fn = getattr(sim, name, None)
            if hasattr(fn, "cache_clear"):
                fn.cache_clear()
    gc.collect()
