"""The pick (paper-repro pick): each kept candidate calibrated and scored by its worst mean |z| (W),
the lowest written as a new run; or, with --checkpoint, one named generator calibrated unscored."""
import json

import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.config import get_preset
from paper_repro.errors import PaperReproError
from paper_repro.evaluation.certification import STATISTICS, statistics_of
from paper_repro.evaluation.selection import WorstMeanScorer, pick_calibrated
from paper_repro.gan import calibration, runs
from paper_repro.gan.models import build_generator
from paper_repro.gan.training import train
from paper_repro.stats.twosample import mean_z
from tests.helpers import smooth_maps, weights_scorer


def _worst_mean_scorer(n_ref=400, seed=1):
    return WorstMeanScorer.from_maps(smooth_maps(n_ref, 32, seed), get_preset("tiny"), n_maps=64, seeds=(1,))


def test_worst_mean_is_the_largest_mean_z_of_the_three_statistics():
    scorer = _worst_mean_scorer()
    same = smooth_maps(400, 32, 2)
    got = scorer.worst_means(same)
    stats = statistics_of(same, scorer.angle_deg, scorer.edges)
    direct = {k: np.nanmax(np.abs(mean_z(stats[k][1], scorer.reference[k]))) for k in STATISTICS}
    assert set(got["statistics"]) == set(STATISTICS)
    for k in STATISTICS:
        np.testing.assert_allclose(got["statistics"][k]["worst_abs_z"], direct[k], rtol=1e-12)
    np.testing.assert_allclose(got["W"], max(direct.values()), rtol=1e-12)
    # maps from the same process: no component mean off by 4 standard errors
    assert got["W"] < 4
    # a shift of 0.2 sd moves the one-point statistics (pixel histogram, Minkowski functionals at
    # fixed kappa thresholds) far off, and leaves the power spectrum (ell > 0) as it was
    shifted = scorer.worst_means(same + np.float32(0.01))
    per = {k: v["worst_abs_z"] for k, v in shifted["statistics"].items()}
    assert per["pixel_intensity"] > 10 and per["minkowski_functionals"] > 10
    np.testing.assert_allclose(per["power_spectrum"], direct["power_spectrum"], rtol=1e-6)
    assert shifted["W"] == max(per.values())


def test_worst_mean_scorer_rejects_too_little():
    with pytest.raises(PaperReproError, match="at least 2"):
        WorstMeanScorer.from_maps(smooth_maps(1, 32, 0), get_preset("tiny"))
    with pytest.raises(PaperReproError, match="one seed"):
        WorstMeanScorer.from_maps(smooth_maps(8, 32, 0), get_preset("tiny"), seeds=())


@pytest.fixture(scope="module")
def candidate_run(tmp_path_factory, tiny_data):
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=1,
                                        selection_candidates=3)
    run = train(tmp_path_factory.mktemp("pick") / "run", preset, tiny_data, seed=4,
                scorer=weights_scorer, progress=False)
    dev = tmp_path_factory.mktemp("dev")
    for i in (1, 2):
        np.save(dev / f"dev{i}.npy", smooth_maps(32, 32, 10 + i))
    return run, [str(dev / "dev1.npy"), str(dev / "dev2.npy")]


def test_pick_cli_writes_the_calibrated_lowest_w_candidate(tmp_path, candidate_run, capsys):
    run, dev = candidate_run
    out = tmp_path / "picked"
    assert main(["pick", "--run", str(run), "--out", str(out), "--development", *dev, "--maps", "64",
                 "--calibration-maps", "64", "--seeds", "1", "--quiet"]) == 0
    assert "calibrated; W" in capsys.readouterr().out
    rec = json.loads((out / "best" / "pick.json").read_text())
    kept = runs.list_candidates(run)
    assert sorted(int(s) for s in rec["candidates"]) == sorted(kept) and len(kept) == 3
    ws = {int(s): r["W"] for s, r in rec["candidates"].items()}
    assert rec["global_step"] == min(ws, key=ws.get) and rec["W"] == ws[rec["global_step"]]
    assert rec["reference_maps"] == 64 and rec["seeds"] == [1] and rec["maps"] == 64
    fit = json.loads((out / "best" / "calibration.json").read_text())
    assert fit["checkpoint"] == f"candidates/step-{rec['global_step']:09d}.weights.h5"
    # the written model is the one that was scored: the same W recomputed from the output run
    model, _ = runs.load_generator(out)
    pooled = np.concatenate([np.load(d) for d in dev])
    scorer = WorstMeanScorer.from_maps(pooled, get_preset("tiny"), n_maps=64, seeds=(1,))
    np.testing.assert_allclose(scorer(model), rec["W"], rtol=1e-6)
    # and the candidate's network inside the calibration
    snap = build_generator(runs.read_run_info(run).preset)
    snap.load_weights(kept[rec["global_step"]])
    inner = calibration.uncalibrated(model)
    assert all(np.array_equal(a, b) for a, b in zip(inner.get_weights(), snap.get_weights()))


def test_pick_cli_errors_are_one_line(tmp_path, candidate_run, tiny_data, capsys):
    run, dev = candidate_run
    # a run without kept candidates
    bare = train(tmp_path / "bare", get_preset("tiny").replace(epochs=1, selection_epochs=0), tiny_data,
                 seed=4, progress=False)
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("")
    cases = [
        (["--run", str(bare), "--out", str(tmp_path / "o1"), "--development", dev[0]], "no kept candidates"),
        (["--run", str(run), "--out", str(tmp_path / "o2"), "--development", str(tmp_path / "nope.npy")],
         "nope.npy"),
        (["--run", str(run), "--out", str(full), "--development", dev[0]], "not empty"),
        # refused before any work: a pick inside the run (its record copy would hold itself)
        (["--run", str(run), "--out", str(run / "o4"), "--development", dev[0]], "outside"),
        (["--run", str(run), "--out", str(tmp_path / "o3"), "--development", dev[0], "--maps", "1"],
         "at least 2"),
    ]
    for extra, message in cases:
        assert main(["pick", *extra, "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err, err
    assert not any((tmp_path / o).exists() for o in ("o1", "o2", "o3")) and not (run / "o4").exists()
    assert [f.name for f in full.iterdir()] == ["x"]



def test_pick_reports_a_truncated_candidate_in_one_line(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=2,
                                        selection_candidates=2)
    run = train(tmp_path / "run", preset, tiny_data, seed=4, scorer=weights_scorer, progress=False)
    step, path = next(iter(runs.list_candidates(run).items()))
    path.write_bytes(path.read_bytes()[:200])
    dev = tmp_path / "dev.npy"
    np.save(dev, smooth_maps(32, 32, 5))
    with pytest.raises(PaperReproError, match=f"step-{step:09d}.weights.h5"):
        pick_calibrated(run, tmp_path / "out", [dev], n_maps=16, calibration_maps=16, progress=False)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------ pick --checkpoint: one generator, calibrated unscored
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_data):
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=0)
    return train(tmp_path_factory.mktemp("cal") / "run", preset, tiny_data, seed=2, progress=False)


def _files(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_pick_checkpoint_writes_a_calibrated_run_that_loads_and_generates(tmp_path, tiny_run, capsys):
    out = tmp_path / "calibrated"
    before = _files(tiny_run)
    assert main(["pick", "--run", str(tiny_run), "--out", str(out), "--checkpoint", "last",
                 "--calibration-maps", "64", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "the last generator" in printed and "mode gains" in printed
    assert _files(tiny_run) == before                              # the source run is not changed
    fit = json.loads((out / "best" / "calibration.json").read_text())
    assert fit["n_generated"] == 64 and fit["seed"] == calibration.CALIBRATION_SEED
    assert not (out / "best" / "pick.json").exists()               # not scored
    model, preset = runs.load_generator(out)
    assert calibration.is_calibrated(model) and preset == runs.read_run_info(tiny_run).preset
    a = runs.generate_maps(out, 16, seed=1)
    b = runs.generate_maps(out, 16, seed=1)
    base = runs.generate_maps(tiny_run, 16, seed=1)
    assert a.shape == base.shape and np.array_equal(a, b) and not np.allclose(a, base)
    # saved and loaded, the layer keeps its pattern and gain
    layer = model.get_layer("calibration")
    assert layer.gain.numpy()[0, 0] == 1.0 and np.ptp(layer.gain.numpy()) > 0
    # a second time into the same place: refused, nothing changed
    written = (out / "best" / "generator.keras").read_bytes()
    assert main(["pick", "--run", str(tiny_run), "--out", str(out), "--checkpoint", "last",
                 "--calibration-maps", "64", "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "best" / "generator.keras").read_bytes() == written


def test_pick_checkpoint_calibrates_a_kept_candidate_by_step(tmp_path, tiny_data, capsys):
    """--checkpoint step-N calibrates that selection snapshot, not best/; the source's score is not copied."""
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=1, selection_candidates=3)
    run = train(tmp_path / "run", preset, tiny_data, seed=4, scorer=weights_scorer, progress=False)
    best_step = json.loads((run / "best" / "score.json").read_text())["global_step"]
    other = max(s for s in runs.list_candidates(run) if s != best_step)
    out = tmp_path / "cal"
    assert main(["pick", "--run", str(run), "--out", str(out), "--checkpoint", f"step-{other}",
                 "--calibration-maps", "64", "--quiet"]) == 0
    assert f"the step-{other} generator of" in capsys.readouterr().out
    fit = json.loads((out / "best" / "calibration.json").read_text())
    assert fit["checkpoint"] == f"candidates/step-{other:09d}.weights.h5"
    assert not (out / "best" / "score.json").exists()
    # the calibrated network is the candidate's: its inner weights equal the snapshot's
    snap = build_generator(preset)
    snap.load_weights(runs.candidate_path(run, other))
    model, _ = runs.load_generator(out)
    inner = calibration.uncalibrated(model)
    assert all(np.array_equal(a, b) for a, b in zip(inner.get_weights(), snap.get_weights()))
    # an unknown step: one line naming the kept ones, nothing written
    assert main(["pick", "--run", str(run), "--out", str(tmp_path / "x"), "--checkpoint", "step-999"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such candidate" in err and str(other) in err
    assert not (tmp_path / "x").exists()
    assert main(["pick", "--run", str(run), "--out", str(tmp_path / "x"), "--checkpoint", "step-x"]) == 2
    assert "integer step" in capsys.readouterr().err
    # into the run itself: refused (the copy of its record would hold itself)
    assert main(["pick", "--run", str(run), "--out", str(run / "cal"), "--checkpoint", "best"]) == 2
    assert "outside" in capsys.readouterr().err and not (run / "cal").exists()


@pytest.mark.parametrize("extra, message", [
    (["--data", "BAD"], "error"),                             # maps of another size
    (["--development", "BAD"], "--development would not be used"),
    (["--seeds", "3", "--maps", "8"], "--maps, --seeds would not be used"),
    (["--calibration-maps", "1"], "at least 2"),
])
def test_pick_checkpoint_errors_are_one_line(tmp_path, tiny_run, capsys, extra, message):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 8, 8), np.float32))
    extra = [str(bad) if a == "BAD" else a for a in extra]
    assert main(["pick", "--run", str(tiny_run), "--out", str(tmp_path / "o"), "--checkpoint", "last",
                 "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()
    assert main(["pick", "--run", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--checkpoint", "last"]) == 2
    assert "no such run directory" in capsys.readouterr().err
