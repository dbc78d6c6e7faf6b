"""``paper-repro ingest`` and FITS map sets: a user's maps written with LensTools' conventions (the map
in the primary HDU, its side in degrees in ``ANGLE``) become datasets and certification inputs."""
import json
import re

import numpy as np
import pytest
from astropy.io import fits

from paper_repro.cli import main
from paper_repro.errors import PaperReproError
from paper_repro.maps import ingest
from paper_repro.maps.datasets import load_dataset
from tests.helpers import smooth_maps, untimed

#: parent maps of the round trip: side (px) and angle (deg), a pixel scale of no preset
PARENT, ANGLE = 80, 0.4
SPLITS = "train=3,validation=2,development=1,auxiliary=1"


def write_fits(path, kappa, angle=ANGLE):
    """One map as LensTools saves it: data in the primary HDU, ANGLE (deg) in its header."""
    hdu = fits.PrimaryHDU(kappa)
    if angle is not None:
        hdu.header["ANGLE"] = angle
    hdu.writeto(path)
    return path


@pytest.fixture(scope="module")
def parents(tmp_path_factory):
    """8 parent maps (80^2, float64 as many ray-tracing codes write them) in a folder of FITS files."""
    d = tmp_path_factory.mktemp("fits")
    maps = smooth_maps(8, PARENT, seed=3).astype(np.float64)
    for i, m in enumerate(maps):
        write_fits(d / f"kappa_{i:03d}.fits", m)
    return d, maps


def _ingest(parents, out, seed=7, *extra):
    folder, _ = parents
    return main(["ingest", str(folder), "--out", str(out), "--crop", "24", "--crops-per-map", "5",
                 "--splits", SPLITS, "--seed", str(seed), "--quiet", *extra])


def test_ingest_round_trips_lenstools_fits(parents, tmp_path):
    """Crops are the source pixels at the recorded corners of the recorded parent; splits are
    disjoint by parent; the manifest names sources relatively, with checksums, angle and pixel scale."""
    folder, maps = parents
    assert _ingest(parents, tmp_path / "ds") == 0
    ds = load_dataset(tmp_path / "ds", verify_checksum=True, check_finite=True)
    m = ds.manifest
    assert m["crop_size"] == 24 and m["angle_deg"] == pytest.approx(24 * ANGLE / PARENT, rel=1e-12)
    assert m["pixel_arcmin"] == pytest.approx(ANGLE * 60 / PARENT)
    names = sorted(p.name for p in folder.iterdir())
    assert [s["file"] for s in m["sources"]] == names          # relative names, never a machine path
    assert all(s["angle_deg"] == ANGLE and len(s["sha256"]) == 64 for s in m["sources"])
    assert m["sources"][2]["sha256"] == ingest.sha256_file(folder / names[2])
    used = []
    for split, n_parents in (("train", 3), ("validation", 2), ("development", 1), ("auxiliary", 1)):
        crops, index, pids = ds[split], ds.index(split), m["splits"][split]["parents"]
        assert crops.shape == (5 * n_parents, 24, 24) and len(pids) == n_parents
        np.testing.assert_array_equal(index[:, 0], np.repeat(np.arange(n_parents), 5))
        for crop, (i, r, c) in zip(crops, index):
            source = maps[pids[i]].astype(np.float32)
            np.testing.assert_array_equal(crop, source[r:r + 24, c:c + 24])
        used += pids
    assert len(set(used)) == len(used) == 7                    # every parent in one split only
    assert m["unused_sources"] == sorted(set(range(8)) - set(used))


def test_ingest_is_seeded(parents, tmp_path):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        assert _ingest(parents, tmp_path / name, seed) == 0
    read = {k: (np.load(tmp_path / k / "train.npy"), json.loads((tmp_path / k / "manifest.json").read_text()))
            for k in "abc"}
    np.testing.assert_array_equal(read["a"][0], read["b"][0])
    assert read["a"][1]["splits"]["train"]["sha256"] == read["b"][1]["splits"]["train"]["sha256"]
    assert read["a"][1]["splits"]["train"]["sha256"] != read["c"][1]["splits"]["train"]["sha256"]


def test_npy_parents_with_angle_and_any_size(tmp_path):
    """A .npy stack of parents (with --angle) of another size and pixel scale: each map one parent."""
    stack = smooth_maps(4, 50, seed=1)
    np.save(tmp_path / "stack.npy", stack)
    assert main(["ingest", str(tmp_path / "stack.npy"), "--out", str(tmp_path / "ds"), "--crop", "50",
                 "--crops-per-map", "1", "--splits", "train=2,validation=2", "--angle", "1.5", "--quiet"]) == 0
    m = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert m["angle_deg"] == pytest.approx(1.5) and [s["item"] for s in m["sources"]] == [0, 1, 2, 3]
    got = np.concatenate([np.load(tmp_path / "ds" / "train.npy"), np.load(tmp_path / "ds" / "validation.npy")])
    np.testing.assert_array_equal(np.sort(got.reshape(4, -1), axis=0), np.sort(stack.reshape(4, -1), axis=0))


@pytest.mark.parametrize("case, match", [
    ("no_angle", r"bad\.fits: no ANGLE keyword .*--angle"),
    ("nan", r"bad\.fits: 1 of 6400 pixels are NaN or inf"),
    ("cube", r"bad\.fits: expected a 2-D map in the primary HDU, found shape \(2, 80, 80\)"),
    ("non_square", r"bad\.fits: expected square maps, found 80x60"),
    ("small_crop", r"bad\.fits: the map is 20x20 px, smaller than the 24 px crop"),
    ("pixel_scale", r"bad\.fits: pixels of .* arcmin, but .* one dataset needs one pixel scale"),
    ("few_parents", r"too few parent maps: the splits \(.*\) need 7, the inputs hold 2"),
    ("npy_no_angle", r"bad\.npy: a \.npy map has no angle; pass --angle DEG"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, case, match):
    good = smooth_maps(1, PARENT, seed=0)[0]
    write_fits(tmp_path / "good.fits", good)
    bad = tmp_path / "bad.fits"
    sources = [tmp_path / "good.fits", bad]
    if case == "no_angle":
        write_fits(bad, good, angle=None)
    elif case == "nan":
        nan = good.copy()
        nan[3, 4] = np.nan
        write_fits(bad, nan)
    elif case == "cube":
        write_fits(bad, np.stack([good, good]))
    elif case == "non_square":
        write_fits(bad, good[:, :60])
    elif case == "small_crop":
        write_fits(bad, good[:20, :20], angle=ANGLE / 4)
    elif case == "pixel_scale":
        write_fits(bad, good, angle=2 * ANGLE)
    elif case == "few_parents":
        write_fits(bad, good)
    else:
        bad = tmp_path / "bad.npy"
        np.save(bad, good)
        sources = [bad]
    out = tmp_path / "ds"
    code = main(["ingest", *map(str, sources), "--out", str(out), "--crop", "24", "--crops-per-map", "2",
                 "--splits", "train=1" if case != "few_parents" else SPLITS, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("paper-repro ingest: error: ")
    assert re.search(match, err), err
    assert not out.exists()                                     # nothing half-written


def test_angle_option_stands_in_for_a_missing_angle_and_must_agree(tmp_path, capsys):
    good = smooth_maps(1, PARENT, seed=0)[0]
    write_fits(tmp_path / "a.fits", good, angle=None)
    write_fits(tmp_path / "b.fits", good)
    args = ["ingest", str(tmp_path / "a.fits"), str(tmp_path / "b.fits"), "--crop", "24", "--crops-per-map", "1",
            "--splits", "train=2", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "ok"), "--angle", str(ANGLE)]) == 0
    assert main(args + ["--out", str(tmp_path / "no"), "--angle", "1.0"]) == 2
    assert "b.fits: ANGLE 0.4 deg in the header, but --angle 1" in capsys.readouterr().err


def test_splits_need_counts_and_a_dataset_is_not_overwritten(parents, tmp_path, capsys):
    folder, _ = parents
    base = ["ingest", str(folder), "--out", str(tmp_path / "ds"), "--crop", "24", "--quiet"]
    assert main(base + ["--splits", "train,validation=1"]) == 2
    assert "give the number of parent maps of train" in capsys.readouterr().err
    assert main(base + ["--splits", "train=2"]) == 0
    assert main(base + ["--splits", "train=2"]) == 2
    assert "already holds a dataset" in capsys.readouterr().err
    assert main(base + ["--splits", "train=3", "--overwrite"]) == 0
    assert np.load(tmp_path / "ds" / "train.npy").shape[0] == 3 * 200


def test_stack_maps_reuses_its_own_and_refuses_others(parents, tmp_path):
    folder, maps = parents
    paths, angle = ingest.stack_maps({"train": folder}, tmp_path / "s")
    assert angle == ANGLE
    np.testing.assert_array_equal(np.load(paths["train"]), maps.astype(np.float32))
    before = paths["train"].stat().st_mtime_ns
    assert ingest.stack_maps({"train": folder}, tmp_path / "s")[0] == paths
    assert paths["train"].stat().st_mtime_ns == before                # same sources: reused
    with pytest.raises(PaperReproError, match="already holds maps stacked from other files"):
        ingest.stack_maps({"train": folder / "kappa_000.fits"}, tmp_path / "s")
    with pytest.raises(PaperReproError, match=r"80x80 px map, expected 32x32 .*ingest --crop 32"):
        ingest.stack_maps({"train": folder}, tmp_path / "t", size=32)


def test_validate_accepts_fits_folders_and_bins_with_their_angle(tmp_path, capsys):
    """FITS folders as generated, reference and auxiliary sets: same report as the .npy files with
    --angle, the angle taken from ANGLE; an angle that disagrees with a manifest is refused."""
    sets = {name: smooth_maps(60, 32, seed=s) for name, s in (("gen", 1), ("ref", 2), ("aux", 3))}
    angle = 0.3
    for name, maps in sets.items():
        (tmp_path / name).mkdir()
        for i, m in enumerate(maps):
            write_fits(tmp_path / name / f"{i:02d}.fits", m, angle=angle)
        np.save(tmp_path / f"{name}.npy", maps)
    report = {}
    for kind, args in (("fits", [str(tmp_path / n) for n in sets]),
                       ("npy", [str(tmp_path / f"{n}.npy") for n in sets] + ["--angle", str(angle)])):
        flags = ["--generated", args[0], "--reference", args[1], "--auxiliary", args[2], *args[3:]]
        assert main(["validate", *flags, "--report", str(tmp_path / f"{kind}.json")]) in (0, 1)
        report[kind] = json.loads((tmp_path / f"{kind}.json").read_text())
    assert report["fits"]["inputs"]["angle_deg"] == angle
    assert untimed(report["fits"]["criteria"]) == untimed(report["npy"]["criteria"])
    capsys.readouterr()
    (tmp_path / "sim").mkdir()
    np.save(tmp_path / "sim" / "validation.npy", sets["ref"])
    (tmp_path / "sim" / "manifest.json").write_text(json.dumps({
        "format": 1, "splits": {"validation": {"file": "validation.npy", "shape": [60, 32, 32],
                                               "dtype": "float32", "bytes": 0, "sha256": ""}},
        "angle_deg": 0.2, "crop_size": 32, "config": {}}))
    assert main(["validate", "--generated", str(tmp_path / "gen"), "--reference",
                 str(tmp_path / "sim" / "validation.npy")]) == 2
    err = capsys.readouterr().err
    assert "the FITS maps are 0.3 deg on a side, the reference maps" in err and "0.2 deg" in err


def test_train_accepts_a_fits_folder_and_keeps_its_angle(tmp_path, capsys):
    """train --data FOLDER: the maps stacked into RUN/maps/, the run's preset angle the maps' ANGLE;
    maps larger than the model's are a one-line error pointing at ingest."""
    (tmp_path / "maps").mkdir()
    for i, m in enumerate(smooth_maps(32, 32, seed=4)):
        write_fits(tmp_path / "maps" / f"{i:02d}.fits", m, angle=0.3)
    run = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--data", str(tmp_path / "maps"), "--out", str(run),
                 "--seed", "1", "--epochs", "1"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["preset"]["angle_deg"] == 0.3 and config["data"].endswith("run/maps/train.npy")
    np.testing.assert_array_equal(np.load(run / "maps" / "train.npy"), smooth_maps(32, 32, seed=4))
    write_fits(tmp_path / "big.fits", smooth_maps(1, 64, seed=0)[0])
    capsys.readouterr()
    assert main(["train", "--preset", "tiny", "--data", str(tmp_path / "big.fits"), "--out",
                 str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err.strip()
    assert "big.fits: a 64x64 px map, expected 32x32 (the model's maps); cut 32^2 crops with " \
           "'paper-repro ingest --crop 32'" in err and "\n" not in err


def test_train_bins_an_ingested_dataset_with_its_crop_angle(parents, tmp_path, capsys):
    """train --data DS/train.npy of an ingested dataset: the preset's angle becomes the manifest's."""
    import argparse

    from paper_repro import cli

    assert _ingest(parents, tmp_path / "ds", 7, "--crop", "32") == 0
    args = argparse.Namespace(preset="tiny", data=str(tmp_path / "ds" / "train.npy"), development=None,
                              angle=None, resume=False, out=str(tmp_path / "run"))
    preset, data, _ = cli._train_inputs(args)
    assert preset.angle_deg == pytest.approx(32 * ANGLE / PARENT) and data == args.data
    assert "the run's statistics use that angle" in capsys.readouterr().out
    args.angle = -1.0
    with pytest.raises(PaperReproError, match="--angle must be a positive number"):
        cli._train_inputs(args)
