"""The committed records agree with the shipped model and with each other (seconds, no certification).

The shipped generator's records (``paper_repro/reference_model``: config.json, training_data.json,
best/pick.json, best/calibration.json) against the model and the ``cpu64`` preset; the committed
``figures/report.json`` and ``figures/captions.json`` against the shipped model and against each
other (one certified sample), with no absolute path of the machine that wrote them. The two slow
checks rebuild data and refit or rescore (minutes): ``pytest validation -m slow``.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.config import get_dataset_preset, get_preset
from paper_repro.evaluation.figures import FIGURES, SHARED_INPUTS
from paper_repro.evaluation.reproduction import DATA_ROOT, GENERATION_SEED, REFERENCE_MODEL, ensure_dataset
from paper_repro.evaluation.selection import PICK_SEEDS, WorstMeanScorer
from paper_repro.gan import calibration, runs
from paper_repro.maps.datasets import MANIFEST

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "figures"


@pytest.fixture(scope="module")
def shipped():
    return runs.load_generator(REFERENCE_MODEL)


def _pick():
    return json.loads((REFERENCE_MODEL / "best" / "pick.json").read_text())


def _calibration():
    return json.loads((REFERENCE_MODEL / "best" / "calibration.json").read_text())


def test_the_cpu64_preset_is_the_shipped_recipe(shipped):
    """``tox -e train-reference`` trains the preset; it must be the schedule the shipped model had."""
    assert shipped[1] == get_preset("cpu64")


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
    assert _calibration()["checkpoint"] == f"candidates/step-{pick['global_step']:09d}.weights.h5"


def test_shipped_calibration_is_the_recorded_fit(shipped):
    """best/calibration.json records the fit of the layer in the model: seed, maps, gains."""
    model, _ = shipped
    fit = _calibration()
    assert fit["seed"] == calibration.CALIBRATION_SEED and fit["n_generated"] == 16384 and fit["n_real"] == 25_600
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


# ------------------------------------------------------------------ figures/report.json, captions.json
def _committed(name):
    return json.loads((COMMITTED / name).read_text())


def test_committed_report_certifies_the_shipped_model_on_the_main_job_sample():
    rep = _committed("report.json")
    assert rep["passed"], rep["summary"]
    assert set(rep["criteria"]) == {"pixel_intensity", "power_spectrum", "correlation_matrices",
                                    "minkowski_functionals", "peak_counts", "covariance",
                                    "memorisation"}
    n_val = get_dataset_preset("reference").n_crops("validation")
    assert rep["inputs"]["n_generated"] == rep["inputs"]["n_validation"] == n_val == 4000
    assert rep["inputs"]["n_training"] == 25_600 and rep["inputs"]["baseline_source"] == "auxiliary set"
    assert rep["inputs"]["sources"] == {"generated": "data/reference/generated.npy",
                                        "reference": "data/reference/validation.npy",
                                        "auxiliary": "data/reference/auxiliary.npy",
                                        "training": "data/cpu/train.npy"}
    assert rep["speed"]["maps_per_s"] > 0


def test_committed_figures_describe_the_certified_sample():
    """captions.json repeats the report's inputs and its certified numbers: one sample, two files."""
    rep, caps = _committed("report.json"), _committed("captions.json")
    assert set(caps) == {"inputs"} | {f"fig{f}" for f in FIGURES}
    for key in SHARED_INPUTS:
        assert caps["inputs"][key] == rep["inputs"][key], key
    assert caps["inputs"]["latent_seed"] == GENERATION_SEED and caps["inputs"]["run"].endswith("reference_model")
    comps = rep["criteria"]["power_spectrum"]["detail"]["generated_vs_validation"]["components"]
    for m in caps["fig3b"]["numbers"]["modes_shown"]:
        assert m["pvalues"] == {"KS": comps["ks_valid_p"][m["bin"]], "AD": comps["ad_valid_p"][m["bin"]]}
    corr = rep["criteria"]["correlation_matrices"]["criteria"][0]
    diffs = caps["fig4"]["numbers"]["differences"]
    assert diffs["validation - generated"]["p99_abs"] == pytest.approx(corr["value"], rel=1e-9)
    assert diffs["validation - auxiliary"]["p99_abs"] == pytest.approx(corr["baseline"], rel=1e-9)


def _strings(value) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_committed_files_hold_no_absolute_path():
    for path in sorted(COMMITTED.glob("*.json")) + sorted(COMMITTED.glob("*.txt")) + [
            REFERENCE_MODEL / "best" / "pick.json", REFERENCE_MODEL / "best" / "calibration.json"]:
        text = path.read_text()
        assert str(ROOT) not in text, path
        if path.suffix == ".json":
            assert not [s for s in _strings(json.loads(text)) if s.startswith("/")], path


# ------------------------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_shipped_calibration_refits_from_the_training_set(shipped):
    """Refitting the shipped network on the rebuilt training set gives the shipped layer."""
    model, preset = shipped
    data = ensure_dataset(ROOT / DATA_ROOT / "cpu", "cpu", progress=False)
    real = np.load(data / "train.npy", mmap_mode="r")
    pattern, gain, _ = calibration.fit(calibration.uncalibrated(model), real,
                                       data_scale=preset.training.data_scale, n_maps=16384)
    layer = model.get_layer("calibration")
    np.testing.assert_allclose(gain, layer.gain.numpy(), rtol=1e-4)
    np.testing.assert_allclose(pattern, layer.pattern.numpy(), atol=1e-5)


@pytest.mark.slow
def test_pick_scores_are_reproducible(shipped):
    """The shipped model's W on the rebuilt pooled sets equals best/pick.json's: the bar a new run must beat."""
    root = ROOT / DATA_ROOT
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
