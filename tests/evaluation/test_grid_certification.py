"""paper_repro.evaluation.grid_certification: a conditional run certified at a node and over a grid."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.config import (
    PIXEL_DEG,
    CertificationConfig,
    CosmoGridConfig,
    DatasetConfig,
    SimulationConfig,
    SplitSizes,
)
from paper_repro.errors import PaperReproError
from paper_repro.evaluation import certification
from paper_repro.evaluation import grid_certification as gc
from paper_repro.evaluation.certification import CRITERIA
from paper_repro.gan.training import train
from paper_repro.maps.cosmo_grid import build_cosmo_grid, load_cosmo_grid

#: the tiny-cosmo box and geometry (the tiny-cond preset's), with 64 validation and 64 auxiliary
#: crops of 32^2 from 4 parents per node (the certification needs 50), 32 training crops from 2: 4 training
#: nodes and 1 held-out node
GRID = CosmoGridConfig(
    "test-cosmo", DatasetConfig("test-cosmo-node", SimulationConfig(map_size=256, angle_deg=256 * PIXEL_DEG),
                                crop_size=32, crops_per_map=16,
                                splits=SplitSizes(train=2, validation=4, development=0, auxiliary=4)),
    omega_m=(0.22, 0.32), sigma_8=(0.70, 0.90), held_out=((0.27, 0.80),),
    held_out_splits=SplitSizes(train=0, validation=4, development=0, auxiliary=4))
#: fewer bootstrap replicates than the documented 100, for speed (every rule as documented)
FAST = CertificationConfig(bootstrap_replicates=10)


@pytest.fixture
def fast(monkeypatch):
    """The commands certify with :data:`FAST`."""
    monkeypatch.setattr(certification, "CertificationConfig", lambda: FAST)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "test-cosmo"
    build_cosmo_grid(out, GRID)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory, grid):
    out = tmp_path_factory.mktemp("run") / "cond"
    train(out, "tiny-cond", grid, seed=3, epochs=1, progress=False)
    return out


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """Simulated maps standing in for an emulator at every node, 4 parents from seeds of their own."""
    return gc.simulate_stand_in(GRID, tmp_path_factory.mktemp("stand-ins"), progress=False)


def one_line_error(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_validate_at_a_node_generates_at_its_parameters_against_its_sets(tmp_path, grid, run, capsys, fast):
    report = tmp_path / "r.json"
    code = main(["validate", "--run", str(run), "--grid", str(grid), "--omega-m", "0.22", "--sigma-8", "0.9",
                 "--report", str(report)])
    assert code in (0, 1)
    out = capsys.readouterr().out
    assert "node node-01 (train)" in out
    r = json.loads(report.read_text())
    assert r["inputs"]["node"]["name"] == "node-01" and r["inputs"]["parameters"] == {"Omega_m": 0.22, "sigma_8": 0.9}
    assert r["inputs"]["n_generated"] == r["inputs"]["n_validation"] == 64
    assert "memorisation" in r["criteria"] and r["inputs"]["n_training"] == 32      # the node's training maps
    assert r["inputs"]["clusters"] == {"generated": "independent", "validation": 4, "auxiliary": 4}
    assert r["architecture"]["matches"] and r["passed"] == (code == 0)
    # the maps certified: the run's at the node's parameters (latent seed 20190101) against its validation maps
    std = r["descriptive"]["pixel_std"]
    assert std["generated"] == pytest.approx(float(gc.generate_at(run, (0.22, 0.9), 64, seed=20190101).std()), rel=1e-5)
    assert std["generated"] != pytest.approx(float(gc.generate_at(run, (0.32, 0.7), 64).std()), rel=1e-5)
    val = load_cosmo_grid(grid).split("node-01", "validation")[0]
    assert std["validation"] == pytest.approx(float(np.asarray(val).std()), rel=1e-6)


def test_validate_given_maps_at_a_held_out_node(tmp_path, grid, stand_ins, capsys, fast):
    report = tmp_path / "r.json"
    maps = stand_ins / "held-00.npy"
    assert main(["validate", "--generated", str(maps), "--grid", str(grid), "--node", "held-00",
                 "--report", str(report)]) in (0, 1)
    r = json.loads(report.read_text())
    assert r["inputs"]["node"]["role"] == "held_out" and "memorisation" not in r["criteria"]
    assert r["inputs"]["clusters"]["generated"] == 4          # the parent ids beside the maps
    assert r["inputs"]["sources"]["generated"].endswith("held-00.npy") and r["architecture"] is None


def test_validate_at_a_node_refuses_what_it_cannot_do(tmp_path, grid, run, capsys):
    base = ["validate", "--run", str(run)]
    one_line_error(capsys, base, "is a conditional run: certify it at a node")
    one_line_error(capsys, base + ["--grid", str(grid), "--node", "node-99"], "no node 'node-99'")
    one_line_error(capsys, base + ["--grid", str(grid), "--omega-m", "0.25", "--sigma-8", "0.8"],
                   "(Omega_m, sigma_8) = (0.25, 0.8) is not a node of")
    one_line_error(capsys, base + ["--node", "node-00"], "give --grid GRID too")
    one_line_error(capsys, base + ["--grid", str(grid), "--omega-m", "0.25"], "both --omega-m and --sigma-8")
    one_line_error(capsys, base + ["--grid", str(grid), "--node", "node-00", "--omega-m", "0.32", "--sigma-8", "0.9"],
                   "not at the parameters given")
    one_line_error(capsys, ["validate", "--run", "paper_repro/reference_model", "--grid", str(grid),
                            "--node", "node-00"], "is an unconditional run")
    # parameters off the nodes are certified only against maps given for them
    one_line_error(capsys, base + ["--omega-m", "0.25", "--sigma-8", "0.8", "--reference",
                                   str(grid / "nodes" / "node-00" / "validation.npy")], "needs --auxiliary maps")


def check_table(table, out, names, memorisation=True):
    """The table of ``names`` certified in ``out``: rows as their reports, counts as the rows."""
    assert [n["name"] for n in table["nodes"]] == ["node-00", "node-01", "node-02", "node-03", "held-00"]
    assert table["certified"] == len(names)
    for n in table["nodes"]:
        r = n["result"]
        if n["name"] not in names:
            assert r is None
            continue
        tested = memorisation and n["role"] == "train"
        assert set(r["criteria"]) == set(CRITERIA) - (set() if tested else {"memorisation"})
        report = json.loads((out / "nodes" / f"{n['name']}.json").read_text())
        assert report["inputs"]["clusters"] == {"generated": 4, "validation": 4, "auxiliary": 4}
        for crit, c in r["criteria"].items():
            assert c["passed"] == report["criteria"][crit]["passed"] == (not c["failed"])
            assert c["passed"] == (c["tightest"]["margin"] <= 1)
    for crit in CRITERIA + ("all",):
        for role, label in gc.ROLES.items():
            rows = [n["result"] for n in table["nodes"] if n["role"] == role and n["result"] is not None]
            rows = [r for r in rows if crit == "all" or crit in r["criteria"]]
            passing = sum(r["passed"] if crit == "all" else r["criteria"][crit]["passed"] for r in rows)
            assert table["counts"][crit][label]["passing"] == passing
            assert table["counts"][crit][label]["certified"] == len(rows)
    md = (out / gc.MARKDOWN).read_text()
    assert md.count("| node-") == 4 and "| held-00 | held-out | 0.27 | 0.8 |" in md
    assert (out / gc.FIGURE).stat().st_size > 10_000


def test_certify_grid_with_simulated_stand_ins_writes_the_table_and_resumes(tmp_path, grid, stand_ins, monkeypatch):
    out = tmp_path / "cert"
    names, kw = ["node-02", "held-00"], dict(config=FAST, memorisation=False, progress=False)
    table = gc.certify_grid(grid, out, generated_from=stand_ins, nodes=names, **kw)
    check_table(table, out, names, memorisation=False)
    # a rerun skips the finished nodes; other settings are refused
    monkeypatch.setattr(gc, "certify_node", lambda *a, **k: pytest.fail("certified again"))
    assert gc.certify_grid(grid, out, generated_from=stand_ins, nodes=names, **kw) == table
    with pytest.raises(PaperReproError, match="holds results of other settings .*n differ"):
        gc.certify_grid(grid, out, generated_from=stand_ins, n=60, **kw)


@pytest.mark.slow
def test_certify_grid_at_every_node_of_simulated_stand_ins(tmp_path, grid, stand_ins):
    out = tmp_path / "cert"
    table = gc.certify_grid(grid, out, generated_from=stand_ins, progress=False)
    check_table(table, out, ["node-00", "node-01", "node-02", "node-03", "held-00"])


def test_maps_of_another_cosmology_fail_at_the_node(tmp_path, grid, stand_ins):
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for suffix in (".npy", "_index.npy"):      # node-00's (0.22, 0.70) maps offered as node-01's (0.22, 0.90)
        (wrong / f"node-01{suffix}").write_bytes((stand_ins / f"node-00{suffix}").read_bytes())
    table = gc.certify_grid(grid, tmp_path / "cert", generated_from=wrong, nodes=["node-01"], config=FAST,
                            memorisation=False, progress=False)
    row = next(n["result"] for n in table["nodes"] if n["name"] == "node-01")
    assert table["certified"] == 1 and not row["passed"]
    assert not row["criteria"]["power_spectrum"]["passed"] and row["criteria"]["power_spectrum"]["worst_abs_z"] > 4
    assert table["counts"]["all"]["training"] == {"passing": 0, "certified": 1, "nodes": 4}
    with pytest.raises(PaperReproError, match="no maps for node.*node-00"):
        gc.certify_grid(grid, tmp_path / "other", generated_from=wrong, progress=False)


def test_certify_grid_cli_on_a_run_by_node_subsets(tmp_path, grid, run, capsys, fast):
    out = tmp_path / "cert"
    base = ["certify-grid", "--run", str(run), "--grid", str(grid), "--out", str(out), "--no-memorisation"]
    assert main(base + ["--nodes", "node-03"]) in (0, 1)
    text = capsys.readouterr().out
    assert "[1/1] node-03 (training, Omega_m 0.32, sigma_8 0.9)" in text
    table = json.loads((out / gc.TABLE).read_text())
    assert table["certified"] == 1 and table["counts"]["all"]["training"]["certified"] == 1
    report = json.loads((out / "nodes" / "node-03.json").read_text())
    assert report["inputs"]["sources"]["generated"].endswith("at the node, latent seed 20190101")
    assert report["inputs"]["n_generated"] == 64 and report["architecture"]["matches"]
    assert math.isclose(report["inputs"]["node"]["sigma_8"], 0.9)
    assert main(base + ["--nodes", "node-03"]) == (0 if report["passed"] else 1)      # nothing left to do
    assert "1 already certified" in capsys.readouterr().out
    one_line_error(capsys, ["certify-grid", "--grid", str(grid), "--out", str(tmp_path / "x")],
                   "give a conditional run (--run) or a folder of maps")
    one_line_error(capsys, base + ["--nodes", "node-99"], "no node 'node-99'")
    one_line_error(capsys, base + ["--n", "50"], "holds results of other settings (n differ)")


def test_diagnose_scores_a_conditional_discriminator_with_the_maps_parameters(grid, run, capsys):
    from paper_repro.gan.diagnostics import discriminator_overfitting, discriminator_verdict, held_out_pairs

    assert main(["diagnose", "--run", str(run), "--n", "64", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "training minus held-out" in out and "generated" in out
    r = discriminator_overfitting(run, n=64, seed=2)
    assert {k: v["n"] for k, v in r.items()} == {"training": 64, "training, rotated 90 deg": 64, "held-out": 64,
                                                 "generated": 64}
    held, params = held_out_pairs(load_cosmo_grid(grid))       # no development split: the validation maps
    assert len(held) == 4 * 64 and sorted({tuple(p) for p in params}) == sorted(
        (n["Omega_m"], n["sigma_8"]) for n in load_cosmo_grid(grid).nodes if n["role"] == "train")
    one_line_error(capsys, ["diagnose", "--run", str(run), "--heldout", str(grid / "train.npy")], "drop --heldout")
    # the parameters reach D's verdict: other parameters, other logits
    from paper_repro.gan import runs
    from paper_repro.gan.conditional import ConditionalCosmoGAN, normalise_parameters

    info = runs.read_run_info(run)
    gan = ConditionalCosmoGAN.from_preset(info.preset, seed=0)
    gan.set_state(runs.load_checkpoint(runs.latest_checkpoint(run))[0])
    y = normalise_parameters(params[:64], info.preset.parameters)
    a, b = (discriminator_verdict(gan.discriminator, held[:64], 1.0, p) for p in (y, -y))
    assert a["mean_logit"] != b["mean_logit"]


def test_pick_of_a_conditional_run_needs_development_maps(tmp_path, run, capsys):
    """The pick scores candidates on the training nodes' development maps: a grid without them is a
    one-line error before anything is written (tests/gan/test_conditional_calibration.py picks)."""
    one_line_error(capsys, ["pick", "--run", str(run), "--out", str(tmp_path / "pick")],
                   "has no development maps, which the pick scores on")
    one_line_error(capsys, ["pick", "--run", str(run), "--out", str(tmp_path / "pick"), "--development", "d.npy"],
                   "picked on its grid's development maps; drop --development")
    assert not (tmp_path / "pick").exists()
