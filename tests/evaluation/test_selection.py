"""Checkpoint selection during training: the scores (chi-square, statistics) and the kept candidates."""
import json

import numpy as np
import pytest

from paper_repro.config import TrainingConfig, get_preset
from paper_repro.errors import PaperReproError
from paper_repro.evaluation.selection import PowerSpectrumScorer, StatisticsScorer, scorer_for
from paper_repro.gan import runs
from paper_repro.gan.training import train
from tests.helpers import KillAfter, Killed, smooth_maps, weights_scorer


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
    """A development set and the scorer factory the CLI passes (the preset's score) turn selection on."""
    dev = tmp_path / "dev.npy"
    np.save(dev, smooth_maps(64, 32, seed=5))
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=3)
    run = train(tmp_path / "run", preset, tiny_data, seed=2, development=dev, scorer_factory=scorer_for,
                progress=False)
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
    run = train(tmp_path / "run", preset, tiny_data, seed=2, development=dev, scorer_factory=scorer_for,
                progress=False)
    rows = (run / "selection.csv").read_text().splitlines()[1:]
    scores = [float(r.split(",")[2]) for r in rows]
    best = json.loads((run / "best" / "score.json").read_text())
    assert len(scores) == 2 and best["score"] == pytest.approx(min(scores), rel=1e-7)
    assert "Minkowski" in best["metric"]


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
    run = tmp_path / "run"
    with pytest.raises(Killed):     # killed after step 9; the last checkpoint is step 8
        train(run, preset, tiny_data, seed=4, scorer=weights_scorer, progress=False, callbacks=[KillAfter(9)])
    assert max(runs.list_candidates(run)) == 9          # a snapshot later than the checkpoint ...
    train(run, resume=True, scorer=weights_scorer, progress=False)
    got, want = _candidate_weights(run), _candidate_weights(whole)
    assert sorted(got) == sorted(want)                  # ... dropped and taken again: the same set
    for step in want:
        for x, y in zip(got[step], want[step]):
            np.testing.assert_array_equal(x, y)


def test_a_malformed_selection_csv_is_a_one_line_error(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(epochs=1, selection_epochs=1, selection_every=2,
                                        selection_candidates=2)
    run = train(tmp_path / "run", preset, tiny_data, seed=4, scorer=weights_scorer, progress=False)
    assert len(runs.selection_scores(run)) == 3               # every second step of the selection epoch
    with open(run / "selection.csv", "a") as fh:
        fh.write("17,2\n")                       # a row cut short
    with pytest.raises(PaperReproError, match=r"selection.csv, line \d+: expected global_step,epoch,score"):
        runs.selection_scores(run)
