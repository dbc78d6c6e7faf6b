"""The certification is right about data whose answer is known (built from the simulator)."""
import json
import time

import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.errors import PaperReproError
from paper_repro.evaluation import certification
from tests.helpers import ANGLE, SIZE, crops


@pytest.fixture(scope="module")
def sets():
    return {"validation": crops(1), "auxiliary": crops(2), "independent": crops(3),
            "gaussian": crops(4, model="gaussian"), "sigma8": crops(5, sigma_8=0.798 * 1.05)}


def _certify(gen, sets):
    return certification.certify(certification.prepare(gen, sets["validation"], sets["auxiliary"],
                                                       angle_deg=ANGLE))


def test_independent_simulations_are_certified(sets):
    rep = _certify(sets["independent"], sets)
    assert rep.passed, rep.summary()
    assert set(rep.criteria) == {"pixel_intensity", "power_spectrum", "correlation_matrices",
                                 "minkowski_functionals", "peak_counts", "covariance"}


def test_gaussian_field_with_same_power_fails_non_gaussian_statistics(sets):
    rep = _certify(sets["gaussian"], sets)
    assert not rep.criteria["minkowski_functionals"]["passed"], rep.summary()
    assert not rep.criteria["pixel_intensity"]["passed"], rep.summary()


def test_five_percent_higher_sigma8_fails_power_spectrum(sets):
    rep = _certify(sets["sigma8"], sets)
    assert not rep.criteria["power_spectrum"]["passed"], rep.summary()


def test_report_is_complete_json(sets, tmp_path):
    rep = _certify(sets["independent"], sets)
    rep.write(tmp_path / "r.json")
    d = json.loads((tmp_path / "r.json").read_text())
    ps = d["criteria"]["power_spectrum"]["detail"]
    assert len(ps["generated_vs_validation"]["components"]["ks_median_p"]) == 248
    assert "descriptive only" in ps["paper_style_tallies"]["generated_vs_validation"]["ks"]["label"]
    assert d["inputs"]["baseline_source"] == "auxiliary set"
    fm = d["descriptive"]["fourier_modes"]
    assert len(fm["worst"]) == 8 and fm["grid"]["period_pixels"] == 8
    # independent simulations: no mode far off, ring powers equal, no fixed pattern above noise
    assert max(abs(m["z"]) for m in fm["worst"]) < 6
    assert all(abs(r["ratio"] - 1) < 0.1 for r in fm["rings"])
    assert fm["fixed_pattern_rms"]["generated"] < 1.5 * fm["fixed_pattern_rms"]["noise_generated"]


def test_report_locates_a_checkerboard(sets):
    """A fixed pattern at the period-8 grid (as strided upsampling leaves) shows in the mode report,
    on the grid and as a fixed pattern, even where the binned statistics may not name it."""
    x = np.arange(SIZE)
    rms = float(sets["independent"].std())
    pattern = 0.2 * rms * np.cos(2 * np.pi * 8 * x / SIZE)[:, None] * np.cos(2 * np.pi * 16 * x / SIZE)[None, :]
    rep = _certify((sets["independent"] + pattern).astype(np.float32), sets)
    fm = rep.descriptive["fourier_modes"]
    top = fm["worst"][0]
    assert top["grid"] and sorted(map(abs, top["k"])) == [8, 16] and top["ratio"] > 1.5 and top["z"] > 10
    assert fm["grid"]["ratio"] > 1 and fm["fixed_pattern_rms"]["generated"] > 2 * fm["fixed_pattern_rms"]["noise_generated"]


def test_without_auxiliary_the_reference_is_split(sets):
    inp = certification.prepare(sets["independent"], sets["validation"], angle_deg=ANGLE)
    assert "half of the reference" in inp.baseline_source
    assert len(inp.validation) + len(inp.auxiliary) == len(sets["validation"])


def test_bad_inputs():
    good = np.zeros((60, 64, 64), np.float32)
    with pytest.raises(PaperReproError, match="same shape"):
        certification.prepare(np.zeros((60, 32, 32), np.float32), good, good, angle_deg=ANGLE)
    with pytest.raises(PaperReproError, match="angle is unknown"):
        certification.prepare(good, good, good)
    with pytest.raises(PaperReproError, match="generated set has 10 maps"):
        certification.prepare(good[:10], good, good, angle_deg=ANGLE)
    bad = good.copy()
    bad[3, 0, 0] = np.nan
    with pytest.raises(PaperReproError, match="map 3 contains NaN"):
        certification.prepare(bad, good, good, angle_deg=ANGLE)


@pytest.fixture(scope="module")
def files(sets, tmp_path_factory):
    d = tmp_path_factory.mktemp("v")
    for k, v in sets.items():
        np.save(d / f"{k}.npy", v)
    return d


def test_validate_cli_exit_codes(files, capsys, tmp_path):
    base = ["validate", "--reference", str(files / "validation.npy"), "--auxiliary",
            str(files / "auxiliary.npy"), "--angle", str(ANGLE)]
    assert main(base + ["--generated", str(files / "independent.npy"), "--report", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is True
    assert main(base + ["--generated", str(files / "gaussian.npy")]) == 1
    out = capsys.readouterr().out
    assert "minkowski_functionals" in out and "FAIL" in out
    np.save(tmp_path / "small.npy", np.zeros((5, 32, 32), np.float32))
    assert main(base + ["--generated", str(tmp_path / "small.npy")]) == 2
    assert "same shape" in capsys.readouterr().err
    assert main(base + ["--generated", str(tmp_path / "none.npy")]) == 2
    assert not (tmp_path / "none.npy").exists()


def test_memorisation_criterion_uses_parent_ids_beside_the_files(sets, tmp_path):
    """Index files (column 0: parent map) give the control its structure; copies fail, new maps pass."""
    train = crops(6)                       # 6 parents x 100 crops
    d = tmp_path
    for name, maps in (("validation", sets["validation"]), ("auxiliary", sets["auxiliary"]), ("train", train)):
        np.save(d / f"{name}.npy", maps)
        np.save(d / f"{name}_index.npy", np.stack([np.repeat(np.arange(6), 100), np.zeros(600, int),
                                                   np.zeros(600, int)], axis=1).astype(np.int32))
    rng = np.random.default_rng(0)
    copies = np.stack([np.roll(train[i], tuple(rng.integers(0, SIZE, 2)), axis=(0, 1))
                       for i in rng.permutation(600)[:150]])
    generated = {"new": sets["independent"],
                 "copying": np.concatenate([sets["independent"][:450], copies])}   # 25% copies
    verdicts = {}
    for name, gen in generated.items():
        inp = certification.prepare(gen, d / "validation.npy", d / "auxiliary.npy", d / "train.npy",
                                    angle_deg=ANGLE)
        np.testing.assert_array_equal(np.unique(inp.parents["auxiliary"]), np.arange(6, 12))
        verdicts[name] = certification.certify(inp).criteria["memorisation"]
    new, copying = verdicts["new"], verdicts["copying"]
    assert new["detail"]["parent_structure"] == "given parent ids"
    assert (new["detail"]["parents_per_set"], new["detail"]["maps_per_set"]) == (6, 600)
    assert new["passed"], new["headline"]
    assert not copying["passed"] and copying["criteria"][0]["value"] < 1e-6, copying["headline"]
    # the headline says how many maps stood out where, and the p-value: every copy, at a training set
    det = copying["detail"]
    assert det["training_tail"] == 150 and det["held_out_tail"] == 0 and det["n_generated"] == 600
    assert copying["headline"].startswith(f"p {det['p_value']:.3g} ") and "training 150 vs held-out 0" in copying["headline"]


def test_a_long_step_is_not_silent():
    """certify's memorisation search (minutes on the main job) says its elapsed time as it runs."""
    said = []
    with certification.ticking(said.append, "memorisation: searching", every=0.05):
        time.sleep(0.3)
    assert len(said) >= 3 and all(s.startswith("memorisation: searching") for s in said)
    assert said[0].endswith(" s") and "done in" in said[-1]
    with certification.ticking(None, "quiet"):
        pass                                   # no progress asked: nothing said, nothing started


def test_validate_clusters_by_the_parent_ids_beside_the_files(sets, tmp_path, capsys):
    """validate reads <split>_index.npy beside each file: validation and auxiliary maps are clustered
    by parent map (6 parents each), generated maps without an index count as independent; the JSON
    report and the summary say so. With the ids the worst mean is measured in larger standard errors."""
    ids = np.stack([np.repeat(np.arange(6), 100), np.zeros(600, int), np.zeros(600, int)], axis=1).astype(np.int32)
    for name in ("validation", "auxiliary", "independent"):
        np.save(tmp_path / f"{name}.npy", sets[name])
    for name in ("validation", "auxiliary"):
        np.save(tmp_path / f"{name}_index.npy", ids)
    args = ["validate", "--generated", str(tmp_path / "independent.npy"), "--reference",
            str(tmp_path / "validation.npy"), "--auxiliary", str(tmp_path / "auxiliary.npy"),
            "--angle", str(ANGLE), "--report", str(tmp_path / "r.json")]
    main(args)
    assert "clustered by parent map: generated independent, validation 6 parents" in capsys.readouterr().out
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["inputs"]["clusters"] == {"generated": "independent", "validation": 6, "auxiliary": 6}
    assert d["criteria"]["power_spectrum"]["detail"]["clusters"]["validation"] == 6
    naive = _certify(sets["independent"], sets).criteria["power_spectrum"]["detail"]
    clustered = d["criteria"]["power_spectrum"]["detail"]
    zc, zn = (np.abs(np.array(x["mean_z"], dtype=float)) for x in (clustered, naive))
    assert np.nanmedian(zc / zn) < 1
