"""Cost of the output calibration: cpu64 generation with and without the ``SpectralCalibration`` layer.

Run: ``pytest benchmarks/bench_calibration.py --benchmark-only``. Both use the same network and
latents in the same run; compare ``maps_per_s`` of the two (their ratio is the layer's cost).
"""
import numpy as np
import pytest

from paper_repro.config import get_preset
from paper_repro.gan import calibration
from paper_repro.gan.models import build_generator


@pytest.fixture(scope="module")
def networks():
    p = get_preset("cpu64")
    g = build_generator(p, seed=0)
    rng = np.random.default_rng(0)
    size = p.model.image_size
    gain = np.exp(0.05 * rng.standard_normal((size, size)))
    gain = np.sqrt(gain * np.roll(gain[::-1, ::-1], 1, axis=(0, 1))).astype(np.float32)  # k -> -k symmetric
    pattern = (1e-3 * rng.standard_normal((size, size))).astype(np.float32)
    return {"network": g, "calibrated": calibration.calibrated(g, pattern, gain)}, p


@pytest.mark.parametrize("which", ["network", "calibrated"])
def test_generation_with_calibration(benchmark, networks, which):
    models, p = networks
    model = models[which]
    z = np.random.default_rng(0).standard_normal((256, p.model.latent_dim)).astype(np.float32)
    model(z, training=False)
    benchmark.pedantic(lambda: np.asarray(model(z, training=False)), rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["maps_per_s"] = 256 / benchmark.stats.stats.min
