"""paper_repro.maps.cosmo_grid: datasets at a grid of (Omega_m, sigma_8) nodes and their reader."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.config import COSMO_GRID_PRESETS, CosmoGridConfig, get_cosmo_grid_preset
from paper_repro.errors import PaperReproError
from paper_repro.maps.cosmo_grid import build_cosmo_grid, grid_nodes, load_cosmo_grid
from paper_repro.maps.datasets import parent_crops
from paper_repro.maps.simulation import get_simulator

TINY = get_cosmo_grid_preset("tiny-cosmo")


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "tiny-cosmo"
    build_cosmo_grid(out, "tiny-cosmo")
    return out


def test_grid_preset_nodes_cover_the_box_around_the_fiducial():
    grid = COSMO_GRID_PRESETS["cosmo-grid"]
    nodes = grid.training_nodes()
    assert 15 <= len(nodes) <= 30 and (0.26, 0.798) in nodes
    assert grid.low == (0.20, 0.65) and grid.high[0] == 0.35 and grid.high[1] <= 0.95
    inside = [(lo < om < hi_m and lo_s < s8 < hi_s) for om, s8 in grid.held_out
              for lo, hi_m, lo_s, hi_s in [(grid.low[0], grid.high[0], grid.low[1], grid.high[1])]]
    assert any(inside) and not all(inside)        # interior held-out nodes and at least one on the edge
    assert not set(grid.held_out) & set(nodes)


def test_every_node_has_its_own_seeds_and_cosmology():
    nodes = grid_nodes("cosmo-grid")
    seeds = [s for n in nodes for s in (n.config.seed, n.config.aux_seed)]
    assert len(set(seeds)) == len(seeds)
    for n in nodes:
        cos = n.config.simulation.cosmology
        assert (cos.Omega_m, cos.sigma_8) == n.params
        assert cos.baryon_fraction == pytest.approx(0.046 / 0.26)
    # the log-normal shift follows the cosmology (empty-beam convergence grows with Omega_m)
    lo, hi = (get_simulator(n.config.simulation).shift for n in grid_nodes(TINY)[:3:2])
    assert hi > lo


def test_bad_grids_are_one_line_errors():
    with pytest.raises(PaperReproError, match="outside the training grid's hull"):
        dataclasses.replace(TINY, held_out=((0.40, 0.8),))
    with pytest.raises(PaperReproError, match="is a training node"):
        dataclasses.replace(TINY, held_out=((0.22, 0.7),))
    with pytest.raises(PaperReproError, match="increasing finite"):
        dataclasses.replace(TINY, sigma_8=(0.9, float("nan")))
    with pytest.raises(PaperReproError, match="unknown cosmology-grid preset"):
        get_cosmo_grid_preset("nope")
    assert isinstance(TINY, CosmoGridConfig)


def test_reader_pairs_each_map_with_its_own_parameters(grid_dir):
    grid = load_cosmo_grid(grid_dir, verify_checksum=True)
    maps, params = grid.training()
    manifest = json.loads((grid_dir / "manifest.json").read_text())
    index = np.load(grid_dir / "train_index.npy")
    nodes = grid_nodes(TINY)
    assert len(maps) == len(params) == len(index) == 4 * TINY.node.splits.train * TINY.node.crops_per_map
    for entry, node in zip(manifest["nodes"], nodes):
        assert (entry["Omega_m"], entry["sigma_8"]) == node.params
        if node.role != "train":
            continue
        a, b = entry["train_rows"]
        assert np.all(params[a:b] == node.params)
        # the node's rows are exactly the train split its own dataset config builds
        crops, corners = parent_crops(node.config, "train", 1)
        rows = np.flatnonzero((index[:, 0] == nodes.index(node)) & (index[:, 1] == 1))
        np.testing.assert_array_equal(maps[rows], crops)
        np.testing.assert_array_equal(index[rows, 2:], corners)
    # batches carry each map's own parameters: find every batch map among the training maps
    flat = maps.reshape(len(maps), -1)
    for x, y in grid.batches(8, seed=3):
        for m, p in zip(x, y):
            row = np.flatnonzero((flat == m.reshape(-1)).all(axis=1))
            assert len(row) == 1 and np.allclose(params[row[0]], p)
    # one node's training maps and parents: its own rows of the combined set, parents as the index has them
    first = manifest["nodes"][0]
    a, b = first["train_rows"]
    own, parents = grid.training_node(first["name"])
    np.testing.assert_array_equal(own, maps[a:b])
    np.testing.assert_array_equal(parents, index[a:b, 1])
    assert len(np.unique(parents)) == TINY.node.splits.train and len(own) == b - a
    held = grid.node_names("held_out")[0]
    with pytest.raises(PaperReproError, match=f"node '{held}' is held out; it has no training maps"):
        grid.training_node(held)
    # different cosmologies give different maps: sigma_8 0.9 maps vary more than 0.7 ones
    lo, hi = (maps[params[:, 1] == s].std() for s in (0.7, 0.9))
    assert hi > lo


def test_node_splits_pair_with_their_parameters_and_differ_between_nodes(grid_dir):
    grid = load_cosmo_grid(grid_dir)
    assert grid.node_names("held_out") == ["held-00", "held-01"]
    x0, p0 = grid.split("held-00", "validation")
    x1, p1 = grid.split("held-01", "validation")
    assert np.all(p0 == (0.27, 0.80)) and np.all(p1 == (0.32, 0.80)) and len(p0) == len(x0)
    assert not np.array_equal(x0, x1)
    xa, _ = grid.split("held-00", "auxiliary")
    assert not np.array_equal(x0, xa)            # auxiliary from its own seed
    with pytest.raises(PaperReproError, match="no split 'train'"):
        grid.split("held-00", "train")
    with pytest.raises(PaperReproError, match="no node 'nope'"):
        grid.split("nope", "validation")


def test_damaged_grid_is_a_one_line_error(grid_dir, tmp_path):
    with pytest.raises(PaperReproError, match="no manifest.json"):
        load_cosmo_grid(tmp_path)
    with pytest.raises(PaperReproError, match="already holds a dataset"):
        build_cosmo_grid(grid_dir, TINY)
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("manifest.json", "train.npy", "train_index.npy"):
        (bad / f).write_bytes((grid_dir / f).read_bytes())
    params = np.load(grid_dir / "train_params.npy")
    params[0] = (0.3, 0.8)
    np.save(bad / "train_params.npy", params)
    with pytest.raises(PaperReproError, match="do not hold node node-00's parameters"):
        load_cosmo_grid(bad).training()
    with pytest.raises(PaperReproError, match="checksum mismatch"):
        load_cosmo_grid(bad, verify_checksum=True).training()


def test_cli_simulate_grid(tmp_path, capsys):
    assert main(["simulate", "--preset", "tiny-cosmo", "--out", str(tmp_path / "g"), "--quiet"]) == 0
    assert "4 training nodes" in capsys.readouterr().out
    assert len(load_cosmo_grid(tmp_path / "g").training()[0]) == 64
    assert main(["simulate", "--preset", "tiny-cosmo", "--out", str(tmp_path / "h"), "--seed", "3"]) == 2
    assert "drop --seed" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()


def test_training_node_reads_its_index_once_and_refuses_a_damaged_one(grid_dir, tmp_path):
    """The combined training set is read and checked once per grid; a truncated or missing parent index
    is a one-line error naming the file, not a traceback."""
    grid = load_cosmo_grid(grid_dir)
    first = grid.node_names("train")[0]
    assert grid.training()[0] is grid.training()[0]
    with pytest.raises(ValueError):                 # the cached parameters cannot be changed by a caller
        grid.training()[1][0] = (0.3, 0.8)
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("manifest.json", "train.npy", "train_params.npy"):
        (bad / f).write_bytes((grid_dir / f).read_bytes())
    with pytest.raises(PaperReproError, match="train_index.npy: cannot read the training maps' index"):
        load_cosmo_grid(bad).training_node(first)
    np.save(bad / "train_index.npy", np.load(grid_dir / "train_index.npy")[:5])
    with pytest.raises(PaperReproError, match=r"train_index.npy: expected \d+ index rows, found shape \(5, 4\)"):
        load_cosmo_grid(bad).training_node(first)
