"""Checkpoint selection: the chi-square score and keeping the best generator."""
import json

import numpy as np
import pytest

from conftest import smooth_maps
from paper_repro import runs
from paper_repro.config import get_preset
from paper_repro.selection import PowerSpectrumScorer, chi2_distance, histograms
from paper_repro.training import train


def test_chi2_distance_known_values():
    a = np.array([[0.5, 0.5, 0.0]])
    b = np.array([[0.25, 0.25, 0.5]])
    assert chi2_distance(a, a)[0] == 0
    assert chi2_distance(a, b)[0] == pytest.approx(2 * 0.0625 / 0.75 + 0.25 / 0.5)


def test_histograms_count_every_value():
    v = np.random.default_rng(0).normal(size=(100, 3))
    edges = np.tile(np.array([-np.inf, -1, 0, 1, np.inf]), (3, 1))
    h = histograms(v, edges)
    np.testing.assert_allclose(h.sum(1), 1)
    np.testing.assert_allclose(h[0], np.histogram(v[:, 0], [-1e9, -1, 0, 1, 1e9])[0] / 100)


def test_score_ranks_a_power_change():
    preset = get_preset("tiny")
    dev = smooth_maps(400, 32, seed=1)
    scorer = PowerSpectrumScorer.from_maps(dev, preset)
    same = scorer.score_maps(smooth_maps(400, 32, seed=2))
    louder = scorer.score_maps(1.3 * smooth_maps(400, 32, seed=2))
    assert same < louder


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
