"""The shipped reference generator (paper_repro/reference_model): architecture, determinism, certification."""
import json
import subprocess
import sys

import numpy as np
import pytest

from paper_repro.gan import latents, runs
from paper_repro.gan.models import build_generator, count_params, layer_table
from paper_repro.evaluation.reproduction import REFERENCE_MODEL
from paper_repro.evaluation.selection import WorstMeanScorer


@pytest.fixture(scope="module")
def shipped():
    return runs.load_generator(REFERENCE_MODEL)


def test_shipped_model_is_the_cpu64_topology(shipped):
    """The paper's generator at the cpu64 scale, followed by the fitted output calibration."""
    from paper_repro.gan.calibration import SpectralCalibration, uncalibrated
    model, preset = shipped
    assert preset.name == "cpu64" and preset.model.image_size == 64
    fresh = build_generator(preset)
    network = uncalibrated(model)
    assert layer_table(network) == layer_table(fresh)
    assert count_params(network) == count_params(fresh) == (1_343_425, 960)
    assert isinstance(model.layers[-1], SpectralCalibration) and model.layers[-1].name == "calibration"
    assert count_params(model) == (1_343_425, 960 + 2 * 64 * 64)
    assert runs.generator_path(REFERENCE_MODEL).parts[-2:] == ("best", "generator.keras")


def test_the_cpu64_preset_is_the_shipped_recipe(shipped):
    """``tox -e train-reference`` trains the preset; it must be the schedule the shipped model had."""
    from paper_repro.config import get_preset
    assert shipped[1] == get_preset("cpu64")


def _pick():
    return json.loads((REFERENCE_MODEL / "best" / "pick.json").read_text())


def test_shipped_model_card_numbers_match(shipped):
    pick = _pick()
    t = shipped[1].training
    n_train = json.loads((REFERENCE_MODEL / "training_data.json").read_text())["train_fingerprint"]["shape"][0]
    steps = n_train // t.batch_size                                            # 400 steps per epoch
    assert pick["epoch"] == -(-pick["global_step"] // steps) == 286
    assert t.epochs < pick["epoch"] <= t.total_epochs                       # a selection epoch
    assert t.selection_score == "statistics" and pick["metric"] == WorstMeanScorer.description
    assert t.bn_recalibration == 100     # saved with precise batch norm
    # selected from an annealed epoch, at a tenth of the paper's rate (MODEL_CARD.md)
    assert t.anneal_epochs > 0 and t.learning_rate_at(pick["epoch"] - 1) == pytest.approx(0.1 * t.learning_rate)


def test_shipped_training_record_names_the_cpu_set(shipped):
    """The main job finds the training set by SHA-256 or, rebuilt on another CPU, by fingerprint."""
    from paper_repro.config import get_dataset_preset
    record = json.loads((REFERENCE_MODEL / "training_data.json").read_text())
    data = get_dataset_preset(record["dataset_preset"])
    n = data.splits.train * data.crops_per_map
    assert len(record["train_sha256"]) == 64
    fp = record["train_fingerprint"]
    assert fp["shape"] == [n, 64, 64] == [25_600, 64, 64]
    assert len(fp["block_mean"]) == len(fp["block_std"]) == 64
    assert all(0.015 < s < 0.03 for s in fp["block_std"])     # convergence rms of 64^2 crops


def test_shipped_model_is_the_lowest_w_of_the_kept_candidates(shipped):
    """best/ is the kept candidate with the lowest worst-mean |z| (W) once calibrated, on the pooled
    development + confirm sets, and below the previously shipped generator's W on both seeds."""
    from paper_repro.evaluation.selection import PICK_SEEDS
    t = shipped[1].training
    pick = _pick()
    assert tuple(pick["seeds"]) == PICK_SEEDS and pick["maps"] == 8192 and pick["reference_maps"] == 10_000
    ws = {int(s): c["W"] for s, c in pick["candidates"].items()}
    assert len(ws) == t.selection_candidates
    assert pick["global_step"] == min(ws, key=ws.get) and pick["W"] == min(ws.values())
    for seed in map(str, PICK_SEEDS):
        assert pick["W_per_seed"][seed] == pick["candidates"][str(pick["global_step"])]["seeds"][seed]
        assert pick["W_per_seed"][seed] < pick["previous_shipped"]["seeds"][seed]
        # W is the largest of the three statistics' worst |z|
        assert pick["W_per_seed"][seed] == max(v["worst_abs_z"] for v in pick["statistics"][seed].values())
    assert pick["W"] == pytest.approx(np.mean(list(pick["W_per_seed"].values())), rel=1e-12)
    # the kept candidates are the lowest training-time scores of the selection epochs
    last = [(score, step) for step, (epoch, score) in runs.selection_scores(REFERENCE_MODEL).items()
            if epoch > t.epochs]
    assert len(last) == t.selection_epochs * (25_600 // t.batch_size) // t.selection_every
    assert sorted(ws) == sorted(s for _, s in sorted(last)[:t.selection_candidates])
    fit = json.loads((REFERENCE_MODEL / "best" / "calibration.json").read_text())
    assert fit["checkpoint"] == f"candidates/step-{pick['global_step']:09d}.weights.h5"


def test_shipped_calibration_is_the_recorded_fit(shipped):
    """best/calibration.json records the fit of the layer in the model: seed, maps, gains."""
    from paper_repro.gan.calibration import CALIBRATION_SEED
    model, _ = shipped
    fit = json.loads((REFERENCE_MODEL / "best" / "calibration.json").read_text())
    assert fit["seed"] == CALIBRATION_SEED and fit["n_generated"] == 16384 and fit["n_real"] == 25_600
    layer = model.get_layer("calibration")
    gain, pattern = layer.gain.numpy(), layer.pattern.numpy()
    assert gain[0, 0] == 1.0
    assert gain.min() == pytest.approx(fit["gain_min"], rel=1e-6)
    assert gain.max() == pytest.approx(fit["gain_max"], rel=1e-6)
    assert abs(pattern.mean()) < 1e-6
    # a correction of a few per cent, not a new model: the pattern under 5% of the pixel sd, the mode
    # gains within 15% (the model of 2026-12-04 needed 10%; this one lowers one mode by 10.7%,
    # MODEL_CARD.md), and small on average: rms log-power error before the fit under 0.1
    assert 0.85 < fit["gain_min"] < 1 < fit["gain_max"] < 1.15 and fit["pattern_rms_over_map_sd"] < 0.05
    assert fit["rms_log_power_error"] < 0.1


@pytest.mark.slow
def test_shipped_calibration_refits_from_the_training_set(shipped):
    """Refitting the shipped network on the rebuilt training set gives the shipped layer."""
    from pathlib import Path

    from paper_repro.gan import calibration
    from paper_repro.evaluation.reproduction import DATA_ROOT, ensure_dataset
    model, preset = shipped
    root = Path(__file__).resolve().parents[2]
    data = ensure_dataset(root / DATA_ROOT / "cpu", "cpu", progress=False)
    real = np.load(data / "train.npy", mmap_mode="r")
    pattern, gain, _ = calibration.fit(calibration.uncalibrated(model), real,
                                       data_scale=preset.training.data_scale, n_maps=16384)
    layer = model.get_layer("calibration")
    np.testing.assert_allclose(gain, layer.gain.numpy(), rtol=1e-4)
    np.testing.assert_allclose(pattern, layer.pattern.numpy(), atol=1e-5)


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


@pytest.mark.slow
def test_certification_of_the_shipped_model(tmp_path):
    """The full certification, as ``pytest validation/`` with no options (minutes)."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    report = tmp_path / "report.json"
    p = subprocess.run([sys.executable, "-m", "pytest", str(root / "validation"), "-p", "no:cacheprovider",
                        "--report", str(report), "-q"], cwd=root, capture_output=True, text=True)
    assert report.exists(), p.stdout[-3000:] + p.stderr[-3000:]
    d = json.loads(report.read_text())
    assert d["passed"], d["summary"]


@pytest.mark.slow
def test_pick_scores_are_reproducible(shipped):
    """The shipped model's W on the rebuilt pooled sets equals best/pick.json's: the bar a new run must beat."""
    from pathlib import Path

    from paper_repro.cli import main
    from paper_repro.maps.datasets import MANIFEST
    from paper_repro.evaluation.reproduction import DATA_ROOT, ensure_dataset
    from paper_repro.evaluation.selection import WorstMeanScorer
    root = Path(__file__).resolve().parents[2] / DATA_ROOT
    cpu = ensure_dataset(root / "cpu", "cpu", progress=False)
    confirm = root / "confirm"          # the recipe's confirm set (tox -e train-reference)
    if not (confirm / MANIFEST).exists():
        assert main(["simulate", "--out", str(confirm), "--preset", "cpu", "--seed", "9001",
                     "--splits", "development=40", "--quiet"]) == 0
    pooled = np.concatenate([np.load(cpu / "development.npy"), np.load(confirm / "development.npy")])
    model, preset = shipped
    pick = _pick()
    scorer = WorstMeanScorer.from_maps(pooled, preset, n_maps=pick["maps"], seeds=tuple(pick["seeds"]))
    got = scorer.evaluate(model)
    for seed in pick["seeds"]:
        assert got[seed]["W"] == pytest.approx(pick["W_per_seed"][str(seed)], rel=1e-3), seed
