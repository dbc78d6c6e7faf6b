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
