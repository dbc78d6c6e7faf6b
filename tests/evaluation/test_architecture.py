"""The expected architecture of a preset, from its configuration alone, against the paper's Tables 1-2,
the documented totals and built models; a generator that does not match its preset is refused."""
import dataclasses
import re
from pathlib import Path

import pytest

from paper_repro.cli import main
from paper_repro.config import ModelConfig, Preset, get_preset
from paper_repro.errors import PaperReproError
from paper_repro.evaluation import architecture
from paper_repro.evaluation.architecture import (
    PAPER_TABLE_1,
    PAPER_TABLE_2,
    LayerSpec,
    agrees_with_print,
    expected_discriminator,
    expected_generator,
    table_rows,
    totals,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def _documented_totals() -> dict[str, tuple[int, int]]:
    """{preset: (G, D) trainable parameters} from the README's preset table."""
    out = {}
    for name, g, d in re.findall(r"^\| `(\w+)` \|[^|]*\| ([\d,]+) / ([\d,]+) trainable", README.read_text(), re.M):
        out[name] = (int(g.replace(",", "")), int(d.replace(",", "")))
    return out


@pytest.mark.parametrize("preset", ["paper", "cpu64"])
def test_expected_totals_are_the_documented_ones(preset):
    cfg = get_preset(preset).model
    documented = _documented_totals()
    assert set(documented) >= {"paper", "cpu64"}
    assert (totals(expected_generator(cfg))[0], totals(expected_discriminator(cfg))[0]) == documented[preset]


def test_paper_preset_is_tables_1_and_2_row_by_row():
    cfg = get_preset("paper").model
    for layers, table in ((expected_generator(cfg), PAPER_TABLE_1), (expected_discriminator(cfg), PAPER_TABLE_2)):
        rows = table_rows(layers)
        assert len(rows) == len(table)
        for (name, shape, count), (kind, t_shape, printed) in zip(rows, table):
            assert shape == t_shape, (name, kind)
            assert agrees_with_print(count, printed), (name, count, printed)
    # the paper's rounding, and that a different count does not pass for it
    assert agrees_with_print(8_519_680, "8.5M") and not agrees_with_print(8_619_680, "8.5M")
    assert agrees_with_print(1601, "1601") and not agrees_with_print(1602, "1601")
    assert agrees_with_print(204_864, "205K") and not agrees_with_print(203_000, "205K")


@pytest.mark.parametrize("preset", ["paper", "cpu64", "tiny"])
def test_expected_architecture_is_what_models_builds(preset):
    """Independent arithmetic and Keras agree layer by layer (names, kinds, shapes, both counts)."""
    from paper_repro.gan.models import build_discriminator, build_generator

    cfg = get_preset(preset).model
    assert architecture.found_layers(build_generator(cfg)) == expected_generator(cfg)
    assert architecture.found_layers(build_discriminator(cfg)) == expected_discriminator(cfg)


@pytest.mark.parametrize("preset", ["cpu64-cond", "cpu64-film"])
def test_a_conditional_generator_is_checked_with_its_conditioning(preset):
    """A conditional generator built from its preset matches it (film layers included), and one of the
    other conditioning does not: the check sees the 1,920 scale and shift weights."""
    from paper_repro.gan.conditional import build_conditional_generator

    p = get_preset(preset)
    found = architecture.found_layers(build_conditional_generator(p, seed=0))
    film = p.conditioning == "film"
    assert found == expected_generator(p.model, 2, film=film)
    assert architecture.compare(found, p)["matches"]
    other = dataclasses.replace(p, conditioning="concat" if film else "film")
    entry = architecture.compare(found, other)
    assert not entry["matches"]
    assert ("unexpected layer film0 (ConditionalAffine, 1,024 trainable parameters)" if film
            else "layer film0 (ConditionalAffine) is missing") in entry["mismatches"]
    assert totals(found)[0] - totals(expected_generator(p.model, 2))[0] == (1_920 if film else 0)


def test_the_shipped_model_is_cpu64_plus_its_calibration():
    from paper_repro.evaluation.reproduction import REFERENCE_MODEL

    entry = architecture.check_run(REFERENCE_MODEL)
    assert entry["matches"] and entry["preset"] == "cpu64" and entry["mismatches"] == []
    assert entry["trainable"] == entry["expected_trainable"] == _documented_totals()["cpu64"][0]
    assert entry["calibration"] == {"name": "calibration", "kind": "SpectralCalibration",
                                    "output_shape": [64, 64, 1], "trainable": 0, "non_trainable": 2 * 64 * 64}
    assert entry["paper_table_1"] is None
    assert "matches preset 'cpu64' (1,343,425 trainable" in architecture.summary_line(entry)


def _changed(layers, name, **fields):
    return [LayerSpec(**{**x.__dict__, **fields}) if x.name == name else x for x in layers]


def test_compare_names_each_difference():
    preset = get_preset("tiny")
    good = expected_generator(preset.model)
    assert architecture.compare(good, preset)["matches"]
    cases = {
        "layer deconv1: output shape (4, 4, 16), expected (4, 4, 32)":
            _changed(good, "deconv1", output_shape=(4, 4, 16)),
        "layer bn2: trainable 10, expected 32": _changed(good, "bn2", trainable=10),
        "layer tanh: kind Activation(sigmoid), expected Activation(tanh)": _changed(good, "tanh", kind="Activation(sigmoid)"),
        "layer relu1 (ReLU) is missing": [x for x in good if x.name != "relu1"],
        "unexpected layer extra (Dense, 5 trainable parameters)": good + [LayerSpec("extra", "Dense", (3,), 5)],
    }
    for message, layers in cases.items():
        entry = architecture.compare(layers, preset, source="g.keras")
        assert not entry["matches"] and message in entry["mismatches"], entry["mismatches"]
        with pytest.raises(PaperReproError, match=r"^g\.keras: the generator does not match its preset 'tiny': ") as exc:
            architecture.require_match(entry)
        assert "\n" not in str(exc.value)
    # a calibration layer is reported apart, and only as the last layer
    cal = LayerSpec("calibration", "SpectralCalibration", (32, 32, 1), 0, 2048)
    entry = architecture.compare(good + [cal], preset)
    assert entry["matches"] and entry["calibration"]["non_trainable"] == 2048
    assert entry["trainable"] == totals(good)[0]
    assert not architecture.compare([good[0], cal] + good[1:], preset)["matches"]
    # a run that records a built-in preset's name with another network is not that preset
    renamed = Preset("tiny", ModelConfig(image_size=32, latent_dim=16, base_filters=4))
    entry = architecture.compare(expected_generator(renamed.model), renamed)
    assert not entry["matches"] and "base_filters=4 (preset: 8)" in entry["mismatches"][0]


def _run(root, tiny_data, model: ModelConfig):
    """A run directory of the tiny preset whose generator.keras is an untrained network of ``model``."""
    from paper_repro.gan import runs
    from paper_repro.gan.models import build_generator

    runs.write_run_info(root, runs.RunInfo(get_preset("tiny"), str(tiny_data), None, 0))
    runs.save_generator(build_generator(model, seed=0), root / "generator.keras")
    return root


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory, tiny_data):
    """A tiny-preset run whose generator has twice the preset's layer width."""
    return _run(tmp_path_factory.mktemp("arch") / "run", tiny_data,
                ModelConfig(image_size=32, latent_dim=16, base_filters=16))


def test_resolved_inputs_carry_the_checked_architecture(tmp_path, tiny_data):
    from paper_repro.evaluation import reproduction

    run = _run(tmp_path / "run", tiny_data, get_preset("tiny").model)
    with reproduction.resolve_inputs(run=run, reference=tiny_data, n=8, progress=False) as src:
        assert src.architecture["matches"] and src.architecture["preset"] == "tiny"
        assert src.architecture["trainable"] == totals(expected_generator(get_preset("tiny").model))[0]


def test_a_generator_of_another_width_fails_validate_in_one_line(wide_run, tiny_data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["validate", "--run", str(wide_run), "--reference", str(tiny_data), "--angle", "0.11",
                 "--report", "r.json", "--html", "r.html"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("paper-repro validate: error: ") and "does not match its preset 'tiny'" in err
    assert "layer dense: output shape (512), expected (256)" in err and "(and " in err
    assert list(tmp_path.iterdir()) == []              # refused before generating or writing anything
