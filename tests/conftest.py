"""Shared test fixtures: quiet TensorFlow, the LensTools oracle fixture, a tiny saved map set, a tiny
cosmology grid."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "agg")

import numpy as np
import pytest

from tests.helpers import DATA, smooth_maps


@pytest.fixture(scope="session")
def lenstools_fixture():
    """4 maps (256^2, 0.866 deg) with LensTools 1.2's statistics at the paper's settings."""
    with np.load(DATA / "lenstools_fixture.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """96 smooth 32x32 maps saved as .npy (the tiny preset's size)."""
    path = tmp_path_factory.mktemp("data") / "maps.npy"
    np.save(path, smooth_maps(96, 32, seed=0))
    return path


@pytest.fixture(scope="session")
def tiny_cosmo_grid(tmp_path_factory):
    """The tiny-cosmo grid (2 x 2 training nodes, 2 held-out nodes), built once and only read."""
    from paper_repro.maps.cosmo_grid import build_cosmo_grid

    out = tmp_path_factory.mktemp("cosmo") / "tiny-cosmo"
    build_cosmo_grid(out, "tiny-cosmo", progress=False)
    return out


def pytest_sessionfinish(session, exitstatus):
    """Free pyccl objects while their C library is still loaded (avoids noise at interpreter exit)."""
    import gc
    import sys

    sim = sys.modules.get("paper_repro.maps.simulation")
    if sim is not None:
        for name in ("ccl_cosmology", "cl_spline", "get_simulator", "lensing_tracer"):
            fn = getattr(sim, name, None)
            if hasattr(fn, "cache_clear"):
                fn.cache_clear()
    gc.collect()
