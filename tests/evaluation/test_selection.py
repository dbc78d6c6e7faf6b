"""Checkpoint selection: the chi-square score and keeping the best generator."""
import json

import numpy as np
import pytest

from tests.helpers import smooth_maps, weights_scorer
from paper_repro.gan import runs
from paper_repro.config import TrainingConfig, get_preset
from paper_repro.errors import PaperReproError
from paper_repro.evaluation.selection import PowerSpectrumScorer, StatisticsScorer, rescore_epochs, scorer_for
from paper_repro.gan.training import train


def test_score_ranks_a_power_change():
    preset = get_preset("tiny")
    dev = smooth_maps(400, 32, seed=1)
    scorer = PowerSpectrumScorer.from_maps(dev, preset)
    same = scorer.score_maps(smooth_maps(400, 32, seed=2))
    louder = scorer.score_maps(1.3 * smooth_maps(400, 32, seed=2))
    assert same < louder
    assert scorer.score_maps(dev) == 0.0


def test_selection_keeps_lowest_score(tmp_path, tiny_data):
    scores = iter([5.0, 3.0, 4.0, 1.5, 2.0, 9.0])
    seen = []

    def scorer(generator):
        s = next(scores)
        seen.append((s, [w.numpy().copy() for w in generator.weights]))
        return s

    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=1)
    run = train(tmp_path / "run", preset, tiny_data, seed=2, scorer=scorer, progress=False)
    best = json.loads((run / "best" / "score.json").read_text())
    assert best["score"] == 1.5 and best["global_step"] == 6 + 4
    curve = (run / "selection.csv").read_text().splitlines()
    assert [float(r.split(",")[2]) for r in curve[1:]] == [5.0, 3.0, 4.0, 1.5, 2.0, 9.0]
    model, _ = runs.load_generator(run)  # best by default
    want = dict(seen)[1.5]
    for w, x in zip(model.weights, want):
        np.testing.assert_array_equal(w.numpy(), x)


def test_development_file_enables_selection(tmp_path, tiny_data):
    dev = tmp_path / "dev.npy"
    np.save(dev, smooth_maps(64, 32, seed=5))
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=3)
    run = train(tmp_path / "run", preset, tiny_data, seed=2, development=dev, progress=False)
    assert len((run / "selection.csv").read_text().splitlines()) == 1 + 2
    assert (run / "best" / "generator.keras").exists()


def test_extending_a_selected_run_selects_again(tmp_path, tiny_data):
    scores = iter([1.0, 2.0, 5.0, 4.0])
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=3)
    run = train(tmp_path / "run", preset, tiny_data, seed=2, scorer=lambda g: next(scores), progress=False)
    assert json.loads((run / "best" / "score.json").read_text())["score"] == 1.0
    train(run, resume=True, epochs=2, scorer=lambda g: next(scores), progress=False)
    best = json.loads((run / "best" / "score.json").read_text())
    assert best["score"] == 4.0 and best["epoch"] == 3   # chosen in the new selection epoch


def test_statistics_score_is_about_one_for_matching_maps_and_grows_with_each_departure():
    preset = get_preset("tiny")
    dev = smooth_maps(400, 32, seed=1)
    scorer = StatisticsScorer.from_maps(dev, preset)
    same = scorer.components(smooth_maps(400, 32, seed=2))
    assert set(same) == {"pixel_intensity", "power_spectrum", "minkowski_functionals"}
    assert all(0.2 < v < 3.0 for v in same.values()), same   # mean z^2 of independent draws ~ 1
    shifted = scorer.components(smooth_maps(400, 32, seed=2) + 0.01)   # pixel mean off by 0.2 sigma
    assert shifted["pixel_intensity"] > 20 * same["pixel_intensity"]
    assert shifted["power_spectrum"] == pytest.approx(same["power_spectrum"], rel=0.2)  # P(ell>0) blind to it
    louder = scorer.components(1.3 * smooth_maps(400, 32, seed=2))
    assert louder["power_spectrum"] > 20 * same["power_spectrum"]
    assert scorer.score_maps(smooth_maps(400, 32, seed=2)) == pytest.approx(np.mean(list(same.values())))


def test_scorer_for_follows_the_preset(tmp_path):
    dev = tmp_path / "dev.npy"
    np.save(dev, smooth_maps(64, 32, seed=5))
    tiny = get_preset("tiny")
    assert isinstance(scorer_for(tiny, dev), PowerSpectrumScorer)
    assert isinstance(scorer_for(tiny.replace(selection_score="statistics"), dev), StatisticsScorer)
    assert get_preset("cpu64").training.selection_score == "statistics"
    with pytest.raises(PaperReproError, match="unknown selection_score 'fid'"):
        TrainingConfig(selection_score="fid")


def test_statistics_selection_in_training(tmp_path, tiny_data):
    dev = tmp_path / "dev.npy"
    np.save(dev, smooth_maps(64, 32, seed=5))
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=3,
                                        selection_score="statistics")
    run = train(tmp_path / "run", preset, tiny_data, seed=2, development=dev, progress=False)
    rows = (run / "selection.csv").read_text().splitlines()[1:]
    scores = [float(r.split(",")[2]) for r in rows]
    best = json.loads((run / "best" / "score.json").read_text())
    assert len(scores) == 2 and best["score"] == pytest.approx(min(scores), rel=1e-7)
    assert "Minkowski" in best["metric"]


def test_select_rescores_saved_epochs_and_keeps_the_lowest(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(epochs=3, selection_epochs=0)
    run = train(tmp_path / "run", preset, tiny_data, seed=2, progress=False)
    fixed = {1: 4.0, 2: 1.0, 3: 3.0}
    # a scorer that recognises each epoch's weights: the mean of the first kernel, looked up
    from paper_repro.gan.models import build_generator
    g = build_generator(preset)
    key = {}
    for e in fixed:
        g.load_weights(run / "generators" / f"epoch-{e:04d}.weights.h5")
        key[round(float(np.mean(g.weights[0].numpy())), 9)] = fixed[e]

    def scorer(model):
        return key[round(float(np.mean(model.weights[0].numpy())), 9)]

    r = rescore_epochs(run, scorer=scorer, progress=False)
    assert r["scores"] == fixed and r["best_epoch"] == 2 and r["replaced"]
    best = json.loads((run / "best" / "score.json").read_text())
    assert best["epoch"] == 2 and best["score"] == 1.0
    model, _ = runs.load_generator(run)   # best/ holds epoch 2's weights
    assert scorer(model) == 1.0
    assert (run / "selection-epochs.csv").read_text().splitlines() == ["epoch,score", "1,4", "2,1", "3,3"]
    # the incumbent (now epoch 2, 1.0) is kept against epoch 3 alone
    r = rescore_epochs(run, first_epoch=3, scorer=scorer, progress=False)
    assert not r["replaced"] and r["incumbent_score"] == 1.0


def test_select_errors_are_one_line(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=0)
    run = train(tmp_path / "run", preset, tiny_data, seed=2, progress=False)
    with pytest.raises(PaperReproError, match="no development set"):
        rescore_epochs(run, progress=False)
    with pytest.raises(PaperReproError, match="no saved epoch generators from epoch 5"):
        rescore_epochs(run, first_epoch=5, scorer=lambda g: 0.0, progress=False)
    from paper_repro.cli import main
    assert main(["select", "--run", str(tmp_path / "nope"), "--quiet"]) == 2


def test_select_reports_an_unreadable_best_in_one_line(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=0)
    run = train(tmp_path / "run", preset, tiny_data, seed=2, progress=False)
    (run / "best").mkdir()
    (run / "best" / "generator.keras").write_bytes(b"truncated")
    with pytest.raises(PaperReproError, match="cannot load the current best generator"):
        rescore_epochs(run, scorer=lambda g: 0.0, progress=False)
    assert (run / "best" / "generator.keras").read_bytes() == b"truncated"   # nothing replaced


def _candidate_weights(run):
    from paper_repro.gan.models import build_generator
    g = build_generator(runs.read_run_info(run).preset)
    out = {}
    for step, path in runs.list_candidates(run).items():
        g.load_weights(path)
        out[step] = [w.numpy().copy() for w in g.weights]
    return out


def test_training_keeps_the_lowest_scoring_candidates(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=1,
                                        selection_candidates=3, checkpoint_every=2)
    run = train(tmp_path / "run", preset, tiny_data, seed=4, scorer=weights_scorer, progress=False)
    rows = [r.split(",") for r in (run / "selection.csv").read_text().splitlines()[1:]]
    scores = {int(r[0]): float(r[2]) for r in rows}
    assert len(scores) == 6                                     # every step of the selection epoch
    lowest = sorted(scores, key=scores.get)[:3]
    assert sorted(runs.list_candidates(run)) == sorted(lowest)
    best = json.loads((run / "best" / "score.json").read_text())
    assert best["global_step"] == lowest[0]


def test_candidates_survive_a_resume_unchanged(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=1,
                                        selection_candidates=3, checkpoint_every=2)
    whole = train(tmp_path / "whole", preset, tiny_data, seed=4, scorer=weights_scorer, progress=False)
    from paper_repro.gan.training import _StopForTest
    run = tmp_path / "run"
    with pytest.raises(_StopForTest):     # killed after step 9; the last checkpoint is step 8
        train(run, preset, tiny_data, seed=4, scorer=weights_scorer, progress=False, _stop_after=9)
    assert max(runs.list_candidates(run)) == 9          # a snapshot later than the checkpoint ...
    train(run, resume=True, scorer=weights_scorer, progress=False)
    got, want = _candidate_weights(run), _candidate_weights(whole)
    assert sorted(got) == sorted(want)                  # ... dropped and taken again: the same set
    for step in want:
        for x, y in zip(got[step], want[step]):
            np.testing.assert_array_equal(x, y)


def test_select_confirms_candidates_on_another_score(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=1,
                                        selection_candidates=3)
    run = train(tmp_path / "run", preset, tiny_data, seed=4, scorer=weights_scorer, progress=False)
    kept = sorted(runs.list_candidates(run))
    training_best = json.loads((run / "best" / "score.json").read_text())["global_step"]
    # a confirmation score that ranks the candidates the other way round: the training-time
    # winner scores worst, the third-ranked candidate best
    training = {int(r.split(",")[0]): float(r.split(",")[2])
                for r in (run / "selection.csv").read_text().splitlines()[1:]}
    order = sorted(kept, key=training.get)
    confirm = {weights_scorer(w): 10.0 - i for i, w in enumerate(_as_models(run, order))}

    calls = []

    def confirmer(model):
        calls.append(1)
        return confirm.get(weights_scorer(model), 100.0)

    r = rescore_epochs(run, first_epoch=2, scorer=confirmer, progress=False)
    assert r["replaced"] and r["winner"] == f"step {order[-1]}" and order[0] == training_best
    # best/ was the training-time winner, a kept candidate: its score is reused, not recomputed
    assert len(calls) == 1 + len(kept) and r["incumbent_score"] == 10.0
    assert r["candidate_scores"] == {s: confirm[weights_scorer(m)] for s, m in zip(order, _as_models(run, order))}
    best = json.loads((run / "best" / "score.json").read_text())
    assert best["global_step"] == order[-1] and best["score"] == 8.0
    assert best["training_score"] == pytest.approx(training[order[-1]], rel=1e-7)
    model, _ = runs.load_generator(run)
    assert confirmer(model) == 8.0
    lines = (run / "selection-candidates.csv").read_text().splitlines()
    assert lines[0] == "global_step,epoch,training_score,score" and len(lines) == 4


def _as_models(run, steps):
    from paper_repro.gan.models import build_generator
    out = []
    for s in steps:
        g = build_generator(runs.read_run_info(run).preset)
        g.load_weights(runs.candidate_path(run, s))
        out.append(g)
    return out


def test_confirmation_scorer_uses_fresh_latents(tmp_path):
    from paper_repro.evaluation.selection import CONFIRMATION_SEED, SELECTION_SEED, confirmation_scorer
    dev = tmp_path / "dev.npy"
    np.save(dev, smooth_maps(64, 32, seed=5))
    plain = get_preset("tiny").replace(selection_score="statistics")
    s = confirmation_scorer(plain, dev)
    assert (s.n_maps, s.seed) == (plain.training.selection_maps, SELECTION_SEED)
    confirming = plain.replace(confirmation_maps=128)
    s = confirmation_scorer(confirming, dev)
    assert (s.n_maps, s.seed) == (128, CONFIRMATION_SEED) and SELECTION_SEED != CONFIRMATION_SEED
    s = confirmation_scorer(plain, dev, n_maps=32, seed=9)
    assert (s.n_maps, s.seed) == (32, 9)


def test_select_cli_rejects_too_few_maps(tmp_path, tiny_data, capsys):
    from paper_repro.cli import main
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=0)
    run = train(tmp_path / "run", preset, tiny_data, seed=2, progress=False)
    assert main(["select", "--run", str(run), "--maps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--maps" in err[0]


def test_select_reports_a_truncated_candidate_in_one_line(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=2,
                                        selection_candidates=2)
    run = train(tmp_path / "run", preset, tiny_data, seed=4, scorer=weights_scorer, progress=False)
    before = (run / "best" / "generator.keras").read_bytes()
    step, path = next(iter(runs.list_candidates(run).items()))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(PaperReproError, match=f"step-{step:09d}.weights.h5: cannot load generator"):
        rescore_epochs(run, first_epoch=2, scorer=weights_scorer, progress=False)
    assert (run / "best" / "generator.keras").read_bytes() == before   # nothing replaced


def test_select_reports_a_malformed_selection_csv_in_one_line(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=2,
                                        selection_candidates=2)
    run = train(tmp_path / "run", preset, tiny_data, seed=4, scorer=weights_scorer, progress=False)
    with open(run / "selection.csv", "a") as fh:
        fh.write("17,2\n")                       # a row cut short
    with pytest.raises(PaperReproError, match=r"selection.csv, line \d+: expected global_step,epoch,score"):
        rescore_epochs(run, first_epoch=2, scorer=weights_scorer, progress=False)


def _run_files(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_score_gives_select_s_score_and_changes_nothing(tmp_path, tiny_data):
    dev = tmp_path / "dev.npy"
    np.save(dev, smooth_maps(64, 32, seed=5))
    preset = get_preset("tiny").replace(epochs=2, selection_epochs=0, selection_score="statistics")
    run = train(tmp_path / "run", preset, tiny_data, seed=2, development=dev, progress=False)
    from paper_repro.evaluation.selection import score_generator
    before = _run_files(run)
    r = score_generator(run, checkpoint=2, n_maps=48, seed=7)
    assert _run_files(run) == before                   # read-only
    assert set(r["components"]) == {"pixel_intensity", "power_spectrum", "minkowski_functionals"}
    assert r["score"] == pytest.approx(np.mean(list(r["components"].values())), rel=1e-12)
    assert (r["maps"], r["seed"]) == (48, 7) and r["generator"].endswith("epoch-0002.weights.h5")
    # the same generator, latents and maps give select's number for it
    selected = rescore_epochs(run, first_epoch=1, n_maps=48, seed=7, progress=False)
    assert r["score"] == pytest.approx(selected["scores"][2], rel=1e-9)
    assert score_generator(run, checkpoint=1, n_maps=48, seed=7)["score"] == pytest.approx(
        selected["scores"][1], rel=1e-9)
    # another latent seed is another draw of maps: another number
    assert score_generator(run, checkpoint=2, n_maps=48, seed=8)["score"] != r["score"]


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory, tiny_data):
    """A one-epoch tiny run without a development set, and development maps to score it against."""
    base = tmp_path_factory.mktemp("scored")
    dev = base / "dev.npy"
    np.save(dev, smooth_maps(64, 32, seed=5))
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=0, selection_score="statistics")
    return train(base / "run", preset, tiny_data, seed=2, progress=False), dev


def test_score_cli_prints_and_writes_json(tmp_path, scored_run, capsys):
    from paper_repro.cli import main
    run, dev = scored_run
    out = tmp_path / "score.json"
    assert main(["score", "--run", str(run), "--development", str(dev), "--maps", "32",
                 "--latent-seed", "3", "--json", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    got = json.loads(out.read_text())
    assert f"score {got['score']:.4g} (pixel_intensity" in line and "on 32 maps, latent seed 3" in line
    assert got["development"] == str(dev) and got["seed"] == 3


@pytest.mark.parametrize("extra, message", [
    ([], "has no development set"),
    (["--development", "DEV", "--maps", "1"], "--maps must be at least 2"),
    (["--development", "DEV", "--json", "out.txt"], "--json must name a .json file"),
    (["--development", "DEV", "--checkpoint", "9"], "no such generator"),
])
def test_score_cli_errors_are_one_line(tmp_path, scored_run, capsys, monkeypatch, extra, message):
    from paper_repro.cli import main
    run, dev = scored_run
    monkeypatch.chdir(tmp_path)
    extra = [str(dev) if a == "DEV" else a for a in extra]
    assert main(["score", "--run", str(run)] + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- the pick (W)
def _worst_mean_scorer(n_ref=400, seed=1):
    from paper_repro.evaluation.selection import WorstMeanScorer
    return WorstMeanScorer.from_maps(smooth_maps(n_ref, 32, seed), get_preset("tiny"), n_maps=64, seeds=(1,))


def test_worst_mean_is_the_largest_mean_z_of_the_three_statistics():
    from paper_repro.evaluation.certification import STATISTICS, statistics_of
    from paper_repro.stats.twosample import mean_z

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
    from paper_repro.evaluation.selection import WorstMeanScorer
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
    from paper_repro.gan import calibration
    from paper_repro.cli import main
    from paper_repro.evaluation.selection import WorstMeanScorer

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
    from paper_repro.gan.models import build_generator
    snap = build_generator(runs.read_run_info(run).preset)
    snap.load_weights(kept[rec["global_step"]])
    inner = calibration.uncalibrated(model)
    assert all(np.array_equal(a, b) for a, b in zip(inner.get_weights(), snap.get_weights()))


def test_pick_cli_errors_are_one_line(tmp_path, candidate_run, tiny_data, capsys):
    from paper_repro.cli import main

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
