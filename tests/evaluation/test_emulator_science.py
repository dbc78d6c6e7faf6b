"""paper-repro emulator-science on a 3 x 3 grid of tiny maps: the simulator stand-in reproduces the grid,
gives paired responses and recovers the held-out nodes; a conditional run's generator goes through the
same path; bad input is a one-line error."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.config import SplitSizes, get_cosmo_grid_preset, get_preset
from paper_repro.evaluation import emulator_science, emulators
from paper_repro.evaluation.emulator_science import data_vector
from paper_repro.maps.cosmo_grid import build_cosmo_grid, load_cosmo_grid

TINY = get_cosmo_grid_preset("tiny-cosmo")
#: the tiny maps on a 3 x 3 grid through (0.27, 0.80), inside the tiny-cond box; one held-out node on its edge
GRID = dataclasses.replace(
    TINY, name="test-cosmo",
    node=dataclasses.replace(TINY.node, crops_per_map=16, splits=SplitSizes(train=10, validation=10, development=0,
                                                                            auxiliary=10)),
    omega_m=(0.22, 0.27, 0.32), sigma_8=(0.70, 0.80, 0.90), held_out=((0.25, 0.76), (0.32, 0.85)),
    held_out_splits=SplitSizes(train=0, validation=20, development=0, auxiliary=0))


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "test-cosmo"
    build_cosmo_grid(out, GRID)
    return out


def test_simulator_stand_in_reproduces_the_grid_and_pairs_its_draws(grid):
    g = load_cosmo_grid(grid)
    emu = emulators.SimulatorEmulator.from_grid(g)
    node = g.nodes[4]
    want = g.split(node["name"], "validation")[0]
    got, parents = emu.maps((node["Omega_m"], node["sigma_8"]), 40, node["seed"])
    np.testing.assert_allclose(got, want[:40], rtol=1e-5, atol=1e-7)      # the node's own seed: its own maps
    np.testing.assert_array_equal(parents, g.node(node["name"]).index("validation")[:40, 0])
    other, _ = emu.maps((node["Omega_m"], 0.9), 40, node["seed"])
    assert np.corrcoef(other.ravel(), got.ravel())[0, 1] > 0.9 and other.std() > got.std()   # same fields, more power
    with pytest.raises(Exception, match="integer >= 2"):
        emu.maps((0.27, 0.8), 1, 0)
    with pytest.raises(Exception, match="positive and finite"):
        emu.maps((float("nan"), 0.8), 4, 0)


def test_command_with_the_simulator_stand_in(grid, tmp_path, capsys):
    out = tmp_path / "science"
    assert main(["emulator-science", "--grid", str(grid), "--simulator", "--out", str(out), "--n-maps", "160",
                 "--degree", "1", "--quiet", "--keep-statistics"]) == 0
    printed = capsys.readouterr().out
    assert "response amplitude" in printed and "held-01" in printed
    for name in ("responses.json", "responses.md", "recovery.json", "recovery.md", "summary.json",
                 "sigma8_row.png", "power_ratio.png", "posteriors.png", "posteriors.txt"):
        assert (out / name).stat().st_size > 0, name
    resp = json.loads((out / "responses.json").read_text())
    assert resp["centre"]["name"] == "node-04"
    power = resp["statistics"]["power"]
    for p in ("Omega_m", "sigma_8"):
        assert np.all(np.array(power[p]["emulator_se"]) < np.array(power[p]["simulator_se"]))   # paired draws
        assert np.all(np.array(power[p]["simulator"]) > 0)                  # more matter, more power
    rec = json.loads((out / "recovery.json").read_text())
    assert [n["name"] for n in rec["nodes"]] == ["held-00", "held-01"]
    assert list(rec["models"]) == ["simulator", "training maps", "emulator"]
    assert "- training maps: the simulator known only through" in (out / "recovery.md").read_text()
    for node in rec["nodes"]:
        assert list(node["models"]) == ["simulator", "training maps", "emulator"]
        # the training maps are other simulations than the validation and auxiliary sets: another posterior
        assert node["models"]["training maps"]["Omega_m"]["mean"] != node["models"]["simulator"]["Omega_m"]["mean"]
        # tiny noisy sets: the plumbing recovers the truth (marginal biases under 3 sd, the truth inside the
        # 99.9% region); the calibration to ~1 sd is tests/evaluation/test_inference.py's, on synthetic surveys
        for model in ("simulator", "training maps", "emulator"):
            r = node["models"][model]
            assert abs(r["Omega_m"]["bias_sd"]) < 3 and abs(r["sigma_8"]["bias_sd"]) < 3
            assert r["mass_above_truth"] < 0.999 and r["resolved"]
        for p in ("Omega_m", "sigma_8"):              # the same simulator: widths alike (tiny sets: noisy)
            assert 0.67 < node["width_ratio"]["emulator"][p] < 1.5
            assert 0.67 < node["width_ratio"]["training maps"][p] < 1.5
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["power_ratio"]) == 11 and summary["seconds"]["total"] > 0
    assert summary["statistics_file"] is None and (out / "statistics.npz").stat().st_size > 0


def test_kept_statistics_give_the_same_reports_without_generating(grid, tmp_path, capsys, monkeypatch):
    first = tmp_path / "first"
    assert main(["emulator-science", "--grid", str(grid), "--simulator", "--out", str(first), "--n-maps", "40",
                 "--seed", "5", "--degree", "1", "--quiet", "--keep-statistics"]) == 0
    monkeypatch.chdir(tmp_path)                      # records name the file relative to the working directory
    # the second analysis must not generate: no collection, and the stand-in makes only the figure's row
    monkeypatch.setattr(emulator_science, "collect", lambda *a, **k: pytest.fail("collected statistics"))
    row = {"n": 0}

    def row_maps(self, params, n, seed):            # the sigma_8 row of the figure: 2 maps a point
        row["n"] += 1
        assert n == 2
        return np.zeros((n, 32, 32), np.float32), None
    monkeypatch.setattr(emulators.SimulatorEmulator, "maps", row_maps)
    again = tmp_path / "again"
    assert main(["emulator-science", "--grid", str(grid), "--simulator", "--out", str(again), "--degree", "1",
                 "--quiet", "--statistics", str(first / "statistics.npz")]) == 0
    assert row["n"] == 3                             # one map per sigma_8 of the grid, nothing else generated
    for name in ("recovery.json", "responses.json"):
        assert json.loads((again / name).read_text()) == json.loads((first / name).read_text()), name
    summary = json.loads((again / "summary.json").read_text())
    assert summary["statistics_file"] == "first/statistics.npz" and summary["maps_per_point"] == 40
    assert summary["seed"] == 5
    capsys.readouterr()
    run = tiny_cond_run(tmp_path / "run")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    (tmp_path / "cut.npz").write_bytes((first / "statistics.npz").read_bytes()[:5000])      # a truncated copy
    for argv, message in (
            (["--simulator", "--statistics", "first/statistics.npz", "--n-maps", "40"], "leave out --n-maps, --seed"),
            (["--run", str(run), "--statistics", "first/statistics.npz"],
             "first/statistics.npz: statistics of simulator stand-in, not of emulator (run)"),
            (["--simulator", "--statistics", "junk.npz"], "junk.npz: not a statistics file of emulator-science"),
            (["--simulator", "--statistics", "cut.npz"], "cut.npz: not a statistics file of emulator-science"),
            (["--simulator", "--statistics", "none.npz"], "none.npz: not a statistics file of emulator-science")):
        code = main(["emulator-science", "--grid", str(grid), *argv, "--out", "bad", "--degree", "1", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()


def test_training_maps_model_needs_enough_maps_and_says_why(grid, tmp_path):
    g = load_cosmo_grid(grid)
    data = emulator_science.collect(grid, emulators.SimulatorEmulator.from_grid(g), n_maps=160, progress=False)
    node = data["train"][0]["name"]
    learned = data["training_maps"][node]
    maps, parents = g.training_node(node)
    assert len(learned["groups"]) == len(maps) == 10 * 16
    np.testing.assert_array_equal(learned["groups"], parents)
    # too few training maps at one node for the covariance of the data vector: no model, the reason recorded
    k = len(data_vector(learned["stats"])[1][0])
    learned["stats"] = {s: (lab, v[:k]) for s, (lab, v) in learned["stats"].items()}
    learned["groups"] = learned["groups"][:k]
    rec = emulator_science.analyse(data, emulators.SimulatorEmulator.from_grid(g), tmp_path / "out", degree=1,
                                   progress=False)["recovery"]
    assert all(list(n["models"]) == ["simulator", "emulator"] for n in rec["nodes"])
    assert rec["models"]["training maps"].startswith(f"not built: {k} training maps at some node, fewer than")


def tiny_cond_run(path):
    """A conditional run directory holding an untrained tiny-cond generator (the machinery, not a model)."""
    from paper_repro.gan import runs
    from paper_repro.gan.conditional import build_conditional_generator

    preset = get_preset("tiny-cond")
    runs.write_run_info(path, runs.RunInfo(preset, None, None, 1))
    runs.save_generator(build_conditional_generator(preset, seed=1), path / "generator.keras")
    return path


@pytest.mark.slow
def test_command_with_a_conditional_run(grid, tmp_path):
    out = tmp_path / "science"
    assert main(["emulator-science", "--grid", str(grid), "--run", str(tiny_cond_run(tmp_path / "run")),
                 "--out", str(out), "--n-maps", "64", "--degree", "1", "--quiet"]) == 0
    rec = json.loads((out / "recovery.json").read_text())
    assert rec["emulator"].startswith("emulator") and len(rec["nodes"]) == 2
    assert json.loads((out / "responses.json").read_text())["statistics"]["power"]["labels"]


def test_generator_emulator_pairs_latents_and_bad_input(grid, tmp_path, capsys):
    run = tiny_cond_run(tmp_path / "run")
    emu = emulators.GeneratorEmulator.from_run(run)
    assert emu.name == f"emulator ({tmp_path.name}/run)"     # no absolute path of the machine in records
    a, groups = emu.maps((0.27, 0.8), 8, 5)
    assert groups is None and a.shape == (8, 32, 32)
    np.testing.assert_array_equal(a, emu.maps((0.27, 0.8), 8, 5)[0])        # one seed, one set of latents
    assert not np.array_equal(a, emu.maps((0.27, 0.9), 8, 5)[0])            # the parameters reach the maps
    capsys.readouterr()
    for argv, message in ((["--grid", str(tmp_path / "none"), "--simulator"], "no manifest.json"),
                          (["--grid", str(grid), "--run", str(tmp_path / "none")], "no such run directory"),
                          (["--grid", str(grid), "--run", str(run), "--degree", "3"], "needs at least 10 nodes")):
        code = main(["emulator-science", *argv, "--out", str(tmp_path / "bad"), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit):                # argparse: at least 3 maps per point
        main(["emulator-science", "--grid", str(grid), "--simulator", "--out", str(tmp_path / "bad"), "--n-maps", "2"])
    assert "expected a >= 3 integer, got 2" in capsys.readouterr().err
