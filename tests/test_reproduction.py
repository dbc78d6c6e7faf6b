"""The main job's pipeline on a tiny run: data simulated once, report, figures, exit status."""
import json

import pytest

from paper_repro import reproduction
from paper_repro.config import CertificationConfig, get_preset
from paper_repro.training import train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro")
    from paper_repro.data import build_dataset
    build_dataset(root / "data" / "tiny", "tiny")
    run = train(root / "run", get_preset("tiny").replace(epochs=1, selection_epochs=0),
                root / "data" / "tiny" / "train.npy", seed=0, progress=False)
    return root, run


def test_reproduce_writes_report_and_figures(tiny_run, capsys):
    root, run = tiny_run
    out = root / "figures"
    small = CertificationConfig(min_maps=8, bootstrap_replicates=10)   # the tiny sets hold 32 maps
    code = reproduction.reproduce(out, run=run, data_root=root / "data", reference_preset="tiny",
                                  training_preset="tiny", progress=False, config=small)
    rep = json.loads((out / "report.json").read_text())
    assert code == (0 if rep["passed"] else 1)
    assert set(rep["criteria"]) >= {"pixel_intensity", "power_spectrum", "correlation_matrices",
                                    "minkowski_functionals", "memorisation"}
    assert rep["speed"]["maps_per_s"] > 0
    for name in ("fig1", "fig2", "fig3a", "fig3b", "fig4", "fig5", "fig6", "fig7", "fig8"):
        assert (out / f"{name}.png").stat().st_size > 0
    assert "certification:" in capsys.readouterr().out
    # the generated maps are reused when asked for again with the same run, n and seed
    stamp = root / "data" / "tiny" / "generated.json"
    before = stamp.stat().st_mtime_ns
    reproduction.default_inputs(False, run=run, data_root=root / "data", reference_preset="tiny",
                                training_preset="tiny")
    assert stamp.stat().st_mtime_ns == before
    # ... and made again when the generator changed
    from paper_repro import runs
    model, _ = runs.load_generator(run)
    model.get_layer("dense").kernel.assign(model.get_layer("dense").kernel * 1.01)
    runs.save_generator(model, run / "generator.keras")
    reproduction.default_inputs(False, run=run, data_root=root / "data", reference_preset="tiny",
                                training_preset="tiny")
    assert stamp.stat().st_mtime_ns != before


def test_missing_model_is_a_clear_error(tmp_path):
    from paper_repro.errors import PaperReproError
    with pytest.raises(PaperReproError, match="generator to certify is missing"):
        reproduction.default_inputs(False, run=tmp_path / "none", data_root=tmp_path)
