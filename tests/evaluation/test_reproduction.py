"""The one path from maps to verdict on a tiny run: inputs resolved once, data simulated once (and
said first), the report and the figures of one certified sample, nothing else written."""
import contextlib
import dataclasses
import io
import json
import os
import stat

import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.config import CertificationConfig, get_dataset_preset, get_preset
from paper_repro.errors import PaperReproError
from paper_repro.evaluation import reproduction
from paper_repro.evaluation.figures import FIGURES, SHARED_INPUTS
from paper_repro.gan import runs
from paper_repro.gan.training import train
from paper_repro.maps.datasets import build_dataset, fingerprint, fingerprint_difference, load_manifest, open_split

#: the tiny sets hold 32 maps: certify them with a small bootstrap
SMALL = CertificationConfig(min_maps=8, bootstrap_replicates=10)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A folder as a user's working directory: a tiny run trained on data/tiny, with the record of
    its training set (as the shipped model's training_data.json)."""
    root = tmp_path_factory.mktemp("repro")
    build_dataset(root / "data" / "tiny", "tiny")
    run = train(root / "run", get_preset("tiny").replace(epochs=1, selection_epochs=0),
                root / "data" / "tiny" / "train.npy", seed=0, progress=False)
    sha = load_manifest(root / "data" / "tiny")["splits"]["train"]["sha256"]
    (run / "training_data.json").write_text(json.dumps({"dataset_preset": "tiny", "train_sha256": sha}))
    return root, run


@pytest.fixture(scope="module")
def reproduced(job):
    """``reproduce`` run once in the job's folder: (exit code, printed output, report, captions)."""
    root, run = job
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    umask = os.umask(0o022)
    try:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = reproduction.reproduce("figures", run=run, data_root="data", progress=False, config=SMALL)
    finally:
        os.umask(umask)
        mp.undo()
    out = root / "figures"
    return code, buf.getvalue(), json.loads((out / "report.json").read_text()), \
        json.loads((out / "captions.json").read_text())


def test_reproduce_writes_the_report_and_figures(job, reproduced):
    root, _ = job
    code, printed, rep, _ = reproduced
    assert code == (0 if rep["passed"] else 1)
    assert set(rep["criteria"]) == {"pixel_intensity", "power_spectrum", "correlation_matrices",
                                    "minkowski_functionals", "peak_counts", "covariance",
                                    "memorisation"}
    assert rep["speed"]["maps_per_s"] > 0
    out = root / "figures"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.json", "captions.json"] + [f"fig{f}.{ext}" for f in FIGURES for ext in ("png", "pdf", "txt")])
    assert "certification:" in printed and "wrote figures/report.json, figures/captions.json" in printed
    # the working directory gains only what the job says it writes: figures/ and data/
    assert sorted(p.name for p in root.iterdir()) == ["data", "figures", "run"]


def test_figures_are_readable_by_everyone(job, reproduced):
    root, _ = job
    for path in (root / "figures").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044, (path.name, oct(path.stat().st_mode))


def test_captions_and_report_describe_one_sample(reproduced):
    """Every number the captions share with report.json is the report's: sizes, sources, p-values,
    tallies and the correlation-matrix distances."""
    _, _, rep, caps = reproduced
    for key in SHARED_INPUTS:
        assert caps["inputs"][key] == rep["inputs"][key], key
    assert rep["inputs"]["sources"] == {"generated": "data/tiny/generated.npy", "reference": "data/tiny/validation.npy",
                                        "auxiliary": "data/tiny/auxiliary.npy", "training": "data/tiny/train.npy"}
    assert caps["inputs"]["latent_seed"] == reproduction.GENERATION_SEED and caps["inputs"]["run"] == "run"
    for fid in ("1", "2", "3a", "3b", "4", "5", "6"):
        num = caps[f"fig{fid}"]["numbers"]
        assert num.get("n_generated", rep["inputs"]["n_generated"]) == rep["inputs"]["n_generated"] == 32, fid
        assert num.get("n_validation", rep["inputs"]["n_validation"]) == rep["inputs"]["n_validation"] == 32, fid
    ps = rep["criteria"]["power_spectrum"]["detail"]
    comps = ps["generated_vs_validation"]["components"]
    shown = caps["fig3b"]["numbers"]["modes_shown"]
    assert shown and all(m["pvalues"] == {"KS": comps["ks_valid_p"][m["bin"]], "AD": comps["ad_valid_p"][m["bin"]]}
                         for m in shown)
    assert caps["fig3b"]["numbers"]["paper_style_tallies"] == {
        "KS": ps["paper_style_tallies"]["generated_vs_validation"]["ks"],
        "AD": ps["paper_style_tallies"]["generated_vs_validation"]["ad"]}
    mf = rep["criteria"]["minkowski_functionals"]["detail"]["generated_vs_validation"]["components"]
    nu = caps["fig6"]["numbers"]["thresholds_shown"]
    labels = mf["label"]                                  # "V0@-1.9", ... (19 thresholds per functional)
    for name in ("V0", "V1", "V2"):
        for row in caps["fig6"]["numbers"]["pvalues"][name]:
            i = labels.index(f"{name}@{row['nu']:.4g}")
            assert row["pvalues"] == {"KS": mf["ks_valid_p"][i], "AD": mf["ad_valid_p"][i]}, (name, row["nu"])
    assert len(nu) == 4
    corr = rep["criteria"]["correlation_matrices"]["criteria"][0]
    diffs = caps["fig4"]["numbers"]["differences"]
    assert diffs["validation - generated"]["p99_abs"] == pytest.approx(corr["value"], rel=1e-9)
    assert diffs["validation - auxiliary"]["p99_abs"] == pytest.approx(corr["baseline"], rel=1e-9)


def test_nothing_written_holds_an_absolute_path(job, reproduced):
    root, _ = job
    written = list((root / "figures").glob("*.json")) + list((root / "figures").glob("*.txt")) + [
        root / "data" / "tiny" / "generated.json"]
    for path in written:
        text = path.read_text()
        assert str(root) not in text and str(root.resolve()) not in text, path


def test_generated_maps_are_made_once_per_generator(job, reproduced, monkeypatch, capsys):
    root, run = job
    monkeypatch.chdir(root)
    stamp = root / "data" / "tiny" / "generated.json"
    before = stamp.stat().st_mtime_ns
    with reproduction.job_inputs(run=run, data_root="data", progress=False) as src:
        assert src.generated == reproduction.DATA_ROOT / "tiny" / "generated.npy"
        assert src.training == reproduction.DATA_ROOT / "tiny" / "train.npy"      # from the run's record
    assert stamp.stat().st_mtime_ns == before
    assert "simulating" not in capsys.readouterr().out              # the datasets exist: nothing said
    # ... and made again when the generator changed
    model, _ = runs.load_generator(run)
    model.get_layer("dense").kernel.assign(model.get_layer("dense").kernel * 1.01)
    runs.save_generator(model, run / "generator.keras")
    with reproduction.job_inputs(run=run, data_root="data", progress=False):
        pass
    assert stamp.stat().st_mtime_ns != before
    assert "generating 32 maps with run (latent seed 20190101) into data/tiny/generated.npy" in capsys.readouterr().out


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PaperReproError, match="generator to certify is missing"):
        with reproduction.job_inputs(run=tmp_path / "none"):
            pass
    monkeypatch.setattr(reproduction, "REFERENCE_MODEL", tmp_path / "reference_model")
    with pytest.raises(PaperReproError, match="missing .*shipped reference model"):
        with reproduction.job_inputs():
            pass
    assert list(tmp_path.iterdir()) == []                            # nothing simulated first


# ---- simulating: said first (what, where, how big), and where the user says ------------------------
class _Stop(PaperReproError):
    pass


def _no_simulation(directory, config, progress=True):
    raise _Stop(f"would simulate {config.name} into {directory}")


def test_validate_says_what_it_simulates_where_and_how_big_before_doing_it(tmp_path, monkeypatch, capsys):
    """Outside the repository, validate's default reference set is announced before any work."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(reproduction, "build_dataset", _no_simulation)
    gen = tmp_path / "g.npy"
    np.save(gen, np.zeros((60, 64, 64), np.float32))
    assert main(["validate", "--generated", str(gen)]) == 2
    out, err = capsys.readouterr()
    n, size = reproduction.dataset_bytes("reference")
    assert (n, round(size / 1e6)) == (8000, 131)
    assert "simulating the 'reference' dataset: 8,000 maps of 64^2 px, about 131 MB, into data/reference/" in out
    assert "would simulate reference into data/reference" in err
    # --data-root puts it elsewhere
    assert main(["validate", "--generated", str(gen), "--data-root", str(tmp_path / "sims")]) == 2
    out, err = capsys.readouterr()
    assert "into sims/reference/" in out and str(tmp_path / "sims" / "reference") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.npy"]


def test_dataset_bytes_are_what_a_dataset_writes(tmp_path):
    cfg = dataclasses.replace(get_dataset_preset("tiny"),
                              splits={"train": 1, "validation": 1, "development": 0, "auxiliary": 0})
    build_dataset(tmp_path / "d", cfg, progress=False)
    written = sum(p.stat().st_size for p in (tmp_path / "d").glob("*.npy"))
    n, size = reproduction.dataset_bytes(cfg)
    assert n == 32 and abs(written - size) < 1024                     # .npy headers aside


# ---- the training-set check before the memorisation test --------------------------------------
@pytest.fixture(scope="module")
def two_tiny_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainsets")
    build_dataset(root / "seed0", "tiny")
    build_dataset(root / "seed5", dataclasses.replace(get_dataset_preset("tiny"), seed=5))
    return root


def _record(run, **fields):
    run.mkdir(parents=True, exist_ok=True)
    (run / "training_data.json").write_text(json.dumps(fields))
    return run


def test_training_set_rebuilt_with_other_rounding_passes_by_fingerprint(two_tiny_sets, tmp_path):
    train = two_tiny_sets / "seed0"
    sha = load_manifest(train)["splits"]["train"]["sha256"]
    reproduction.check_training_data(_record(tmp_path / "same", train_sha256=sha), train)
    # the set as another CPU rounds it: last bit of every 7th pixel changed, so another SHA-256
    maps = np.array(open_split(train, "train")).reshape(-1)
    maps[::7] = np.nextafter(maps[::7], np.float32(1))
    other_cpu = fingerprint(maps.reshape(open_split(train, "train").shape))
    reproduction.check_training_data(
        _record(tmp_path / "rounded", train_sha256="f" * 64, train_fingerprint=other_cpu), train)


def test_another_training_set_is_refused(two_tiny_sets, tmp_path):
    other = two_tiny_sets / "seed5"
    record = dict(train_sha256=load_manifest(other)["splits"]["train"]["sha256"],
                  train_fingerprint=fingerprint(open_split(other, "train")))
    with pytest.raises(PaperReproError, match=r"is not the set a was trained on \(block statistics differ by"):
        reproduction.check_training_data(_record(tmp_path / "a", **record), two_tiny_sets / "seed0")
    # no fingerprint recorded: only the SHA-256 can say, and it differs
    with pytest.raises(PaperReproError, match="has SHA-256 .* but a was trained on"):
        reproduction.check_training_data(_record(tmp_path / "a", train_sha256=record["train_sha256"]),
                                         two_tiny_sets / "seed0")
    with pytest.raises(PaperReproError, match="train_fingerprint is malformed"):
        reproduction.check_training_data(
            _record(tmp_path / "c", train_sha256="f" * 64,
                    train_fingerprint={"shape": list(open_split(other, "train").shape)}), two_tiny_sets / "seed0")
    bad = _record(tmp_path / "b")
    (bad / "training_data.json").write_text("{not json")
    with pytest.raises(PaperReproError, match="not a training-data record"):
        reproduction.check_training_data(bad, two_tiny_sets / "seed0")


def test_fingerprint_shape_mismatch_is_infinite():
    a = np.random.default_rng(0).normal(size=(10, 8, 8)).astype("float32")
    assert fingerprint_difference(fingerprint(a), fingerprint(a)) == 0
    assert fingerprint_difference(fingerprint(a), fingerprint(a[:9])) == float("inf")
    assert fingerprint_difference(fingerprint(a), fingerprint(a * 1.001)) > 1e-4
