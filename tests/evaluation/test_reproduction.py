"""The main job's pipeline on a tiny run: data simulated once, report, figures, exit status."""
import json

import pytest

from paper_repro.evaluation import reproduction
from paper_repro.config import CertificationConfig, get_preset
from paper_repro.gan.training import train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro")
    from paper_repro.maps.datasets import build_dataset
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
    from paper_repro.gan import runs
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


# ---- the training-set check before the memorisation test --------------------------------------
@pytest.fixture(scope="module")
def two_tiny_sets(tmp_path_factory):
    import dataclasses

    from paper_repro.config import get_dataset_preset
    from paper_repro.maps.datasets import build_dataset
    root = tmp_path_factory.mktemp("trainsets")
    build_dataset(root / "seed0", "tiny")
    build_dataset(root / "seed5", dataclasses.replace(get_dataset_preset("tiny"), seed=5))
    return root


def _record(run, **fields):
    run.mkdir(parents=True, exist_ok=True)
    (run / "training_data.json").write_text(json.dumps(fields))
    return run


def test_training_set_rebuilt_with_other_rounding_passes_by_fingerprint(two_tiny_sets, tmp_path):
    import numpy as np

    from paper_repro.maps.datasets import fingerprint, load_manifest, open_split
    train = two_tiny_sets / "seed0"
    sha = load_manifest(train)["splits"]["train"]["sha256"]
    reproduction._check_training_data(_record(tmp_path / "same", train_sha256=sha), train)
    # the set as another CPU rounds it: last bit of every 7th pixel changed, so another SHA-256
    maps = np.array(open_split(train, "train")).reshape(-1)
    maps[::7] = np.nextafter(maps[::7], np.float32(1))
    other_cpu = fingerprint(maps.reshape(open_split(train, "train").shape))
    reproduction._check_training_data(
        _record(tmp_path / "rounded", train_sha256="f" * 64, train_fingerprint=other_cpu), train)


def test_another_training_set_is_refused(two_tiny_sets, tmp_path):
    from paper_repro.maps.datasets import fingerprint, load_manifest, open_split
    from paper_repro.errors import PaperReproError
    other = two_tiny_sets / "seed5"
    record = dict(train_sha256=load_manifest(other)["splits"]["train"]["sha256"],
                  train_fingerprint=fingerprint(open_split(other, "train")))
    with pytest.raises(PaperReproError, match=r"is not the set a was trained on \(block statistics differ by"):
        reproduction._check_training_data(_record(tmp_path / "a", **record), two_tiny_sets / "seed0")
    # no fingerprint recorded: only the SHA-256 can say, and it differs
    with pytest.raises(PaperReproError, match="has SHA-256 .* but a was trained on"):
        reproduction._check_training_data(_record(tmp_path / "a", train_sha256=record["train_sha256"]),
                                          two_tiny_sets / "seed0")
    with pytest.raises(PaperReproError, match="train_fingerprint is malformed"):
        reproduction._check_training_data(
            _record(tmp_path / "c", train_sha256="f" * 64,
                    train_fingerprint={"shape": list(open_split(other, "train").shape)}), two_tiny_sets / "seed0")
    bad = _record(tmp_path / "b")
    (bad / "training_data.json").write_text("{not json")
    with pytest.raises(PaperReproError, match="not a training-data record"):
        reproduction._check_training_data(bad, two_tiny_sets / "seed0")


def test_fingerprint_shape_mismatch_is_infinite():
    import numpy as np

    from paper_repro.maps.datasets import fingerprint, fingerprint_difference
    a = np.random.default_rng(0).normal(size=(10, 8, 8)).astype("float32")
    assert fingerprint_difference(fingerprint(a), fingerprint(a)) == 0
    assert fingerprint_difference(fingerprint(a), fingerprint(a[:9])) == float("inf")
    assert fingerprint_difference(fingerprint(a), fingerprint(a * 1.001)) > 1e-4
