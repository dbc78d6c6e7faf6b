"""paper_repro.maps.datasets: random crops, seeds, dataset build, manifests and loading."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from paper_repro.config import DatasetConfig, SimulationConfig, SplitSizes, get_dataset_preset, get_preset
from paper_repro.errors import PaperReproError
from paper_repro.maps import datasets as data
from paper_repro.maps.datasets import (
    MANIFEST,
    build_dataset,
    load_dataset,
    load_manifest,
    open_split,
    parent_crops,
    parent_map,
    parent_seed,
    random_crops,
)
from paper_repro.maps.io import sha256_file

TINY = get_dataset_preset("tiny")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "tiny"
    build_dataset(out, "tiny")
    return out


def maps(n=3, size=16, seed=0):
    return np.random.default_rng(seed).normal(0, 0.02, (n, size, size)).astype(np.float32)


# ----------------------------------------------------------------------- crops
def test_random_crops_are_seeded_slices_inside_the_map():
    image = np.arange(40 * 40, dtype=np.float32).reshape(40, 40)
    crops, corners = random_crops(image, 8, 50, 3)
    again, corners2 = random_crops(image, 8, 50, 3)
    np.testing.assert_array_equal(crops, again)
    assert crops.shape == (50, 8, 8)
    assert corners.min() >= 0 and corners.max() <= 32
    for c, (r, col) in zip(crops, corners):
        np.testing.assert_array_equal(c, image[r:r + 8, col:col + 8])
    assert len({tuple(x) for x in corners}) > 40           # positions vary
    assert random_crops(image, 40, 2, 0)[1].tolist() == [[0, 0], [0, 0]]
    with pytest.raises(PaperReproError, match="crop size"):
        random_crops(image, 41, 1, 0)
    with pytest.raises(PaperReproError, match="crop size"):
        random_crops(image, 0, 1, 0)
    with pytest.raises(PaperReproError, match="number of crops"):
        random_crops(image, 4, -1, 0)


# ----------------------------------------------------------------------- dataset build
def test_dataset_files_manifest_and_checksums(tiny_dataset):
    manifest = load_manifest(tiny_dataset)
    ds = load_dataset(tiny_dataset, verify_checksum=True, check_finite=True)
    assert ds.splits == ["train", "validation", "development", "auxiliary"]
    assert ds.config == TINY
    assert manifest["field_model"] == "lognormal" and manifest["z_source"] == 1.0
    assert manifest["shift"] == pytest.approx(0.0588, abs=5e-4)
    assert manifest["angle_deg"] == pytest.approx(TINY.crop_size * 3.464 / 1024)
    assert manifest["pixel_arcmin"] == pytest.approx(3.464 * 60 / 1024)
    assert manifest["cosmology"]["Omega_m"] == 0.26 and manifest["cosmology"]["sigma_8"] == 0.798
    assert set(manifest["versions"]) >= {"numpy", "scipy", "pyccl", "astropy", "paper_repro"}
    for split, n_parent in TINY.splits.items():
        entry = manifest["splits"][split]
        n = n_parent * TINY.crops_per_map
        assert entry["shape"] == [n, TINY.crop_size, TINY.crop_size] and entry["n_maps"] == n
        assert entry["sha256"] == sha256_file(tiny_dataset / entry["file"])
        arr = ds[split]
        assert arr.dtype == np.float32 and arr.shape == (n, TINY.crop_size, TINY.crop_size)
        assert entry["pixel_stats"]["std"] == pytest.approx(float(np.std(arr)), rel=1e-5)
    # nothing but the dataset's own files, no leftovers of the atomic writes
    names = sorted(p.name for p in tiny_dataset.iterdir())
    assert names == sorted([MANIFEST] + [f"{s}{x}" for s, _ in TINY.splits.items()
                                         for x in (".npy", "_index.npy")])


def test_crops_come_from_their_parent_maps_and_splits_share_none(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    cfg = ds.config
    seeds = {}
    for split, n_parent in cfg.splits.items():
        index = ds.index(split)
        arr = ds[split]
        assert np.array_equal(np.unique(index[:, 0]), np.arange(n_parent))
        for i in range(n_parent):
            ss = parent_seed(cfg, split, i)
            seeds[(split, i)] = (ss.entropy, tuple(ss.spawn_key))
            rows = np.flatnonzero(index[:, 0] == i)
            crops, corners = parent_crops(cfg, split, i)
            np.testing.assert_array_equal(arr[rows], crops)
            np.testing.assert_array_equal(index[rows, 1:], corners)
        parent = parent_map(cfg, split, 0)
        r, c = index[0, 1:]
        np.testing.assert_array_equal(arr[0], parent[r:r + cfg.crop_size, c:c + cfg.crop_size])
    # every parent map has its own seed: no parent belongs to two splits
    assert len(set(seeds.values())) == len(seeds)
    assert seeds[("auxiliary", 0)][0] != seeds[("train", 0)][0]      # independent root seed
    # and the parent maps themselves differ across splits
    firsts = [parent_map(cfg, s, 0) for s, _ in cfg.splits.items()]
    for a in range(len(firsts)):
        for b in range(a + 1, len(firsts)):
            assert abs(np.corrcoef(firsts[a].ravel(), firsts[b].ravel())[0, 1]) < 0.1


def test_same_seed_same_bytes_other_seed_other_bytes(tiny_dataset, tmp_path):
    cfg = dataclasses.replace(TINY, splits=SplitSizes(train=2, validation=1, development=0,
                                                      auxiliary=0))
    build_dataset(tmp_path / "a", cfg)
    build_dataset(tmp_path / "b", cfg)
    build_dataset(tmp_path / "c", dataclasses.replace(cfg, seed=1))
    for name in ("train.npy", "validation.npy", "train_index.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
    # a build's first parents do not depend on how many parents the split has
    full = np.load(tiny_dataset / "train.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "train.npy"), full[:2 * TINY.crops_per_map])
    assert not (tmp_path / "a" / "development.npy").exists()


@pytest.mark.parametrize("fail_at", [1, 5])
def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch, fail_at):
    calls = {"n": 0}
    real = data.random_crops

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == fail_at:                    # 5: after the whole train split was written
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "random_crops", flaky)
    out = tmp_path / "ds"
    with pytest.raises(KeyboardInterrupt):
        build_dataset(out, "tiny")
    assert not out.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        build_dataset(existing, "tiny")
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]


def test_build_refuses_existing_dataset_and_bad_configs(tiny_dataset, tmp_path):
    with pytest.raises(PaperReproError, match="already holds a dataset"):
        build_dataset(tiny_dataset, "tiny")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(PaperReproError, match="not a directory"):
        build_dataset(f, "tiny")
    with pytest.raises(PaperReproError, match="unknown dataset preset"):
        build_dataset(tmp_path / "x", "huge")
    with pytest.raises(PaperReproError, match="larger than map_size"):
        DatasetConfig(simulation=SimulationConfig(map_size=64), crop_size=128)
    with pytest.raises(PaperReproError, match="crops_per_map"):
        DatasetConfig(crops_per_map=-1)
    with pytest.raises(PaperReproError, match="split train"):
        SplitSizes(train=-2)
    with pytest.raises(PaperReproError, match="at least one split"):
        SplitSizes(0, 0, 0, 0)
    with pytest.raises(PaperReproError, match="seed"):
        DatasetConfig(seed=-1)
    assert not (tmp_path / "x").exists()


def test_overwrite_replaces_the_whole_dataset(tmp_path):
    out = tmp_path / "ds"
    build_dataset(out, "tiny")
    small = dataclasses.replace(TINY, seed=3, splits=SplitSizes(train=1, validation=0,
                                                                development=0, auxiliary=0))
    build_dataset(out, small, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "train.npy", "train_index.npy"]
    ds = load_dataset(out, verify_checksum=True)
    assert ds.splits == ["train"] and ds.config.seed == 3


def test_presets_are_what_the_paper_and_cpu_training_need():
    paper = get_dataset_preset("paper")
    assert paper.splits.train * paper.crops_per_map == 200_000
    assert paper.crop_size == 256 and paper.simulation.map_size == 1024
    assert paper.simulation.fine_size == 2048 and paper.crop_angle_deg == pytest.approx(0.866)
    cpu = get_dataset_preset("cpu")
    assert cpu.crop_size == get_preset("cpu64").model.image_size
    assert cpu.crop_angle_deg == pytest.approx(get_preset("cpu64").angle_deg)
    assert 20_000 <= cpu.n_crops("train") <= 60_000
    assert all(1000 <= cpu.n_crops(s) <= 10_000 for s in ("validation", "development", "auxiliary"))


# ----------------------------------------------------------------------- loading errors
def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_loader_errors_are_clear(tiny_dataset, tmp_path):
    with pytest.raises(PaperReproError, match="no such dataset directory"):
        load_dataset(tmp_path / "nope")
    nomani = tmp_path / "nomanifest"
    nomani.mkdir()
    np.save(nomani / "train.npy", maps())
    with pytest.raises(PaperReproError, match="no manifest.json"):
        load_dataset(nomani)

    d = _copy(tiny_dataset, tmp_path / "broken_json")
    (d / MANIFEST).write_text("{ not json")
    with pytest.raises(PaperReproError, match="not valid JSON"):
        load_dataset(d)

    d = _copy(tiny_dataset, tmp_path / "wrong_format")
    m = json.loads((d / MANIFEST).read_text())
    m["format"] = 99
    (d / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(PaperReproError, match="manifest format"):
        load_dataset(d)

    with pytest.raises(PaperReproError, match="no split 'test'"):
        open_split(tiny_dataset, "test")

    d = _copy(tiny_dataset, tmp_path / "missing")
    (d / "validation.npy").unlink()
    with pytest.raises(PaperReproError, match="validation.npy: missing"):
        load_dataset(d)

    d = _copy(tiny_dataset, tmp_path / "truncated")
    raw = (d / "train.npy").read_bytes()
    (d / "train.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(PaperReproError, match="truncated"):
        load_dataset(d)
    (d / "train.npy").write_bytes(b"")
    with pytest.raises(PaperReproError, match="train.npy"):
        open_split(d, "train")

    d = _copy(tiny_dataset, tmp_path / "tampered")
    raw = bytearray((d / "train.npy").read_bytes())
    raw[-5] ^= 0xFF                                     # same size, other value
    (d / "train.npy").write_bytes(bytes(raw))
    load_dataset(d)                                      # the fast path checks structure only
    with pytest.raises(PaperReproError, match="checksum mismatch"):
        load_dataset(d, verify_checksum=True)

    d = _copy(tiny_dataset, tmp_path / "nan")
    arr = np.load(d / "development.npy")
    arr[3, 1, 1] = np.nan
    np.save(d / "development.npy", arr)                 # same size, NaN inside
    with pytest.raises(PaperReproError, match="map 3 contains NaN"):
        open_split(d, "development")

    d = _copy(tiny_dataset, tmp_path / "reshaped")
    arr = np.load(d / "auxiliary.npy")
    np.save(d / "auxiliary.npy", np.zeros((arr.shape[0] * 4, 16, 16), np.float32))  # same bytes
    with pytest.raises(PaperReproError, match="auxiliary.npy: expected 32x32"):
        load_dataset(d)
