"""Presets and typed configuration."""
import json
from pathlib import Path

import pytest

import paper_repro
from paper_repro import PaperReproError, get_preset
from paper_repro.config import ModelConfig, Preset, TrainingConfig


def test_paper_preset_matches_sect_2_3():
    p = get_preset("paper")
    m, t = p.model, p.training
    assert (m.image_size, m.latent_dim, m.base_filters, m.n_strided, m.kernel_size) == (256, 64, 64, 4, 5)
    assert (t.batch_size, t.learning_rate, t.beta_1, t.flip_prob) == (64, 2e-4, 0.5, 0.01)
    assert (t.epochs, t.selection_epochs) == (45, 2)
    assert (m.bn_momentum, m.bn_epsilon) == (0.9, 1e-5)
    assert p.training.data_scale == 1.0
    assert p.angle_deg == pytest.approx(0.866, abs=1e-3)


def test_cpu_presets_share_topology():
    for name in ("cpu64", "tiny"):
        m = get_preset(name).model
        assert m.n_strided == 4 and m.kernel_size == 5
    assert get_preset("cpu64").model.image_size == 64


def test_unknown_preset_names_the_choices():
    with pytest.raises(PaperReproError, match="unknown preset 'huge'.*cpu64.*paper.*tiny"):
        get_preset("huge")


@pytest.mark.parametrize("kwargs, match", [
    ({"image_size": 100}, "multiple of 2\\*\\*n_strided=16"),
    ({"latent_dim": 0}, "latent_dim"),
    ({"bn_momentum": 1.0}, "bn_momentum"),
])
def test_invalid_model_values(kwargs, match):
    with pytest.raises(PaperReproError, match=match):
        ModelConfig(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size"), ({"flip_prob": 1.5}, "flip_prob"),
    ({"learning_rate": -1}, "learning_rate"), ({"data_scale": 0}, "data_scale"),
    ({"anneal_epochs": -1}, "anneal_epochs"), ({"anneal_epochs": 1.5}, "anneal_epochs"),
    ({"anneal_factor": 0}, "anneal_factor"), ({"anneal_factor": 1.5}, "anneal_factor"),
    ({"selection_candidates": 0}, "selection_candidates"), ({"selection_candidates": 2.0}, "selection_candidates"),
])
def test_invalid_training_values(kwargs, match):
    with pytest.raises(PaperReproError, match=match):
        TrainingConfig(**kwargs)


def test_learning_rate_schedule():
    t = TrainingConfig(learning_rate=1e-3, epochs=5, selection_epochs=2, anneal_epochs=2, anneal_factor=0.1)
    got = [t.learning_rate_at(e) for e in range(t.total_epochs)]
    assert got == pytest.approx([1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-4, 1e-4])
    assert {TrainingConfig(epochs=5).learning_rate_at(e) for e in range(7)} == {2e-4}  # the paper: constant
    short = TrainingConfig(epochs=2, anneal_epochs=4)   # more annealed epochs than epochs: all annealed
    assert short.learning_rate_at(0) == pytest.approx(2e-5)


def test_round_trip_through_json():
    p = get_preset("cpu64").replace(epochs=7)
    q = Preset.from_dict(json.loads(p.to_json()))
    assert q == p and q.training.epochs == 7


def test_replace_validates():
    with pytest.raises(PaperReproError, match="batch_size"):
        get_preset("tiny").replace(batch_size=-3)


def test_the_shipped_models_record_loads_as_the_cpu64_preset():
    d = json.loads((Path(paper_repro.__file__).parent / "reference_model" / "config.json").read_text())
    assert Preset.from_dict(d["preset"]) == get_preset("cpu64")


def test_a_run_recorded_with_retired_settings_off_still_loads():
    d = get_preset("cpu64").to_dict()
    d["training"].update(spectral_decay=0.0, minkowski_weight=0.0, minkowski_from_epoch=3,
                         minkowski_decay=0.98, confirmation_maps=4096)
    assert Preset.from_dict(d) == get_preset("cpu64")


@pytest.mark.parametrize("field, value, feature", [
    ("minkowski_weight", 0.5, "the Minkowski loss term"),
    ("spectral_decay", 0.9, "the averaged spectral term"),
])
def test_a_run_that_used_a_retired_feature_is_refused_in_one_line(field, value, feature):
    d = get_preset("tiny").to_dict()
    d["training"][field] = value
    with pytest.raises(PaperReproError) as err:
        Preset.from_dict(d)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"this run used {feature}, removed from paper_repro")
    assert f"{field} = {value}" in msg and msg.endswith("it can be resumed with commit 3ae79eb")
    # an unknown field is still an error (not silently dropped)
    d = get_preset("tiny").to_dict()
    d["training"]["banana"] = 1
    with pytest.raises(PaperReproError, match="invalid configuration.*banana"):
        Preset.from_dict(d)
