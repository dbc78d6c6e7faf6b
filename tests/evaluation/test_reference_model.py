"""The shipped reference generator (paper_repro/reference_model) as a model: its architecture and
deterministic generation. Its committed records (pick, calibration, training data, the committed
report and figures) are checked in validation/test_committed_records.py."""
import numpy as np
import pytest

from paper_repro.evaluation.reproduction import REFERENCE_MODEL
from paper_repro.gan import latents, runs
from paper_repro.gan.calibration import SpectralCalibration, uncalibrated
from paper_repro.gan.models import build_generator, count_params, layer_table


@pytest.fixture(scope="module")
def shipped():
    return runs.load_generator(REFERENCE_MODEL)


def test_shipped_model_is_the_cpu64_topology(shipped):
    """The paper's generator at the cpu64 scale, followed by the fitted output calibration."""
    model, preset = shipped
    assert preset.name == "cpu64" and preset.model.image_size == 64
    fresh = build_generator(preset)
    network = uncalibrated(model)
    assert layer_table(network) == layer_table(fresh)
    assert count_params(network) == count_params(fresh) == (1_343_425, 960)
    assert isinstance(model.layers[-1], SpectralCalibration) and model.layers[-1].name == "calibration"
    assert count_params(model) == (1_343_425, 960 + 2 * 64 * 64)
    assert runs.generator_path(REFERENCE_MODEL).parts[-2:] == ("best", "generator.keras")


def test_generation_is_deterministic_for_a_seed(shipped):
    model, preset = shipped
    a = np.concatenate(list(latents.generate(model, 64, seed=5, batch_size=32, data_scale=preset.training.data_scale)))
    b = np.concatenate(list(latents.generate(model, 64, seed=5, batch_size=64, data_scale=preset.training.data_scale)))
    c = np.concatenate(list(latents.generate(model, 64, seed=6, data_scale=preset.training.data_scale)))
    assert a.shape == (64, 64, 64) and np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert not np.allclose(a, c)
    # convergence maps of the right amplitude: pixel std within a factor 2 of the simulations' 0.021
    assert 0.01 < a.std() < 0.04
