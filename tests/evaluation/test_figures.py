"""make-figures and the figure_N functions: every file from a tiny run, captions, bad input, a fresh clone."""
import dataclasses
import json
import os
import shutil
import stat

import numpy as np
import pytest

from paper_repro.cli import make_figures_main
from paper_repro.config import DATASET_PRESETS, get_preset
from paper_repro.errors import PaperReproError
from paper_repro.evaluation import figures, reproduction
from paper_repro.evaluation.figures_maps import figure_1, figure_7, figure_8
from paper_repro.evaluation.figures_morphology import figure_2, figure_5, figure_6, pixel_values_pvalue
from paper_repro.evaluation.figures_power import DEFAULT_MODES, figure_3a, figure_3b, figure_4, select_modes
from paper_repro.evaluation.plots import asinh_ticks, map_norm
from paper_repro.gan import runs
from paper_repro.gan.training import train
from paper_repro.maps.datasets import build_dataset, load_dataset
from paper_repro.stats import morphology, power
from tests.helpers import smooth_maps

#: generated maps of the tiny run; the dataset holds 64 validation and 64 auxiliary maps, enough
#: for the certification's bootstrap (50), so make-figures runs with its defaults
N = 60
FILES = [f"fig{f}.{ext}" for f in figures.FIGURES for ext in ("png", "pdf", "txt")] + ["captions.json"]
#: the tiny dataset preset with 32 crops per parent map (64 validation maps)
TINY64 = dataclasses.replace(DATASET_PRESETS["tiny"], crops_per_map=32)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("figdata") / "ds"
    build_dataset(out, TINY64)
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_dataset):
    run = tmp_path_factory.mktemp("figrun") / "run"
    train(run, "tiny", tiny_dataset / "train.npy", epochs=1, seed=0, progress=False)
    return run


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_run, tiny_dataset):
    out = tmp_path_factory.mktemp("figs") / "figures"
    umask = os.umask(0o022)
    try:
        rc = make_figures_main(["--run", str(tiny_run), "--data", str(tiny_dataset), "--out", str(out),
                                "--n", str(N), "--seed", "3", "--quiet"])
    finally:
        os.umask(umask)
    assert rc == 0
    return out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("make-figures: error: ")
    return err[0]


# ------------------------------------------------------------------------------- the whole run
def test_every_figure_file_is_written_nonempty_and_readable_by_everyone(made):
    names = sorted(p.name for p in made.iterdir())
    assert names == sorted(FILES)                       # nothing else: no temporary files left
    for f in figures.FIGURES:
        png, pdf = made / f"fig{f}.png", made / f"fig{f}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000
    for path in made.iterdir():     # not a temporary file's 0600: the umask's 0644
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, (path.name, oct(path.stat().st_mode))


def test_pngs_are_not_blank(made):
    import matplotlib.image

    for f in figures.FIGURES:
        img = matplotlib.image.imread(made / f"fig{f}.png")
        assert img.ndim == 3 and min(img.shape[:2]) > 200
        # a figure with content has many distinct colours, not a uniform canvas
        rgb = (img[..., :3] * 255).round().astype(np.int64)
        packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        assert np.unique(packed).size > 50, f


def test_captions_state_the_numbers(made, tiny_dataset):
    caps = json.loads((made / "captions.json").read_text())
    angle = load_dataset(tiny_dataset).angle_deg
    n_val = 64
    assert caps["inputs"]["n_generated"] == N and caps["inputs"]["n_validation"] == n_val
    assert caps["inputs"]["angle_deg"] == pytest.approx(angle) and caps["inputs"]["latent_seed"] == 3
    assert caps["inputs"]["sources"]["reference"] == "ds/validation.npy"     # no absolute path
    for f in ("1", "2", "3a", "3b", "4", "5", "6"):
        entry = caps[f"fig{f}"]
        assert entry["numbers"]["n_generated"] == N, f
        assert f"N = {N}" in entry["caption"] and f"N = {n_val}" in entry["caption"], f
        text = (made / f"fig{f}.txt").read_text()
        assert f"N = {N}" in text and entry["caption"] in text
    assert caps["fig7"]["numbers"]["n_examples"] == 4
    assert caps["fig7"]["numbers"]["n_training"] == 128           # the dataset's train split
    assert caps["fig8"]["numbers"]["n_paths"] == 3 and caps["fig8"]["numbers"]["n_steps"] == 8
    # p-values behind Figures 2, 3b and 6 are probabilities
    ps = [caps["fig2"]["numbers"]["pvalue"]]
    ps += [m["pvalue"] for m in caps["fig3b"]["numbers"]["modes_shown"]]
    ps += [r["pvalue"] for rows in caps["fig6"]["numbers"]["pvalues"].values() for r in rows]
    assert all(0.0 <= p <= 1.0 for p in ps), ps
    assert "of the certification" in caps["fig3b"]["numbers"]["test"]
    assert f"{angle:.4g}" in caps["fig1"]["caption"]


def test_figure_7_distances_are_the_nearest_training_maps(made, tiny_run, tiny_dataset):
    num = json.loads((made / "captions.json").read_text())["fig7"]["numbers"]
    gen = runs.generate_maps(tiny_run, 4, seed=3)              # the first 4 of the certified maps
    train_maps = np.load(tiny_dataset / "train.npy")
    d = np.sqrt(((gen[:, None].astype(np.float64) - train_maps[None]) ** 2).sum(axis=(2, 3)))
    np.testing.assert_array_equal(num["index_pixel"], d.argmin(axis=1))
    np.testing.assert_allclose(num["distance_pixel"], d.min(axis=1), rtol=1e-5)


# ---------------------------------------------------------------------------------- bad input
def test_missing_run_exits_2_with_one_line_and_no_files(tmp_path, capsys, tiny_dataset):
    out = tmp_path / "figs"
    rc = make_figures_main(["--run", str(tmp_path / "nope"), "--data", str(tiny_dataset),
                            "--out", str(out), "--quiet"])
    assert rc == 2
    assert "nope" in _one_line_error(capsys)
    assert not out.exists()


def test_missing_data_exits_2_with_one_line_and_no_files(tmp_path, capsys, tiny_run):
    out = tmp_path / "figs"
    rc = make_figures_main(["--run", str(tiny_run), "--data", str(tmp_path / "nodata"), "--out", str(out),
                            "--quiet"])
    assert rc == 2
    assert "nodata" in _one_line_error(capsys)
    assert not out.exists()


def test_dataset_of_another_geometry_is_refused(tmp_path, capsys, tiny_run, tiny_dataset):
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["angle_deg"] = 0.5
    (other / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "figs"
    assert make_figures_main(["--run", str(tiny_run), "--data", str(other), "--out", str(out), "--quiet"]) == 2
    assert "deg" in _one_line_error(capsys)
    assert not out.exists()


def test_no_reference_model_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(reproduction, "REFERENCE_MODEL", tmp_path / "reference_model")
    monkeypatch.chdir(tmp_path)
    assert make_figures_main(["--quiet"]) == 2
    assert "shipped reference model" in _one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []                  # no figures/, no data/


def test_a_real_import_error_is_not_hidden(monkeypatch):
    """make-figures reports a user's mistake in one line, and lets a broken install fail loudly."""
    def broken(*a, **k):
        raise ImportError("cannot import name 'x' from 'paper_repro.stats'")

    monkeypatch.setattr(reproduction, "draw_figures", broken)
    with pytest.raises(ImportError, match="cannot import name"):
        make_figures_main(["--quiet"])


def test_failure_midway_leaves_no_partial_files(tmp_path, monkeypatch, tiny_run, tiny_dataset):
    out = tmp_path / "figs"
    out.mkdir()
    (out / "fig1.png").write_bytes(b"previous")          # an older figure stays as it was

    def boom(*a, **k):
        raise PaperReproError("injected failure")

    monkeypatch.setattr(figures, "figure_6", boom)
    with pytest.raises(PaperReproError, match="injected"):
        reproduction.draw_figures(out, run=tiny_run, data=tiny_dataset, n=50, n_paths=1, n_steps=2,
                                  progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["fig1.png"]
    assert (out / "fig1.png").read_bytes() == b"previous"


def test_make_figures_on_a_fresh_clone_simulates_what_it_needs_and_says_so(tmp_path, monkeypatch, capsys,
                                                                           tiny_run):
    """With no arguments and no data/: the reference-geometry dataset is simulated (announced with
    its size and place), the maps generated, the figures drawn; only data/ and figures/ appear."""
    monkeypatch.setattr(reproduction, "REFERENCE_MODEL", tiny_run)
    monkeypatch.setitem(DATASET_PRESETS, "tiny", TINY64)
    monkeypatch.chdir(tmp_path)
    assert make_figures_main(["--quiet", "--paths", "1", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "simulating the 'tiny' dataset: 288 maps of 32^2 px, about 1 MB, into data/tiny/" in out
    assert "generating 64 maps with" in out and "wrote 28 files to figures" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "figures"]
    caps = json.loads((tmp_path / "figures" / "captions.json").read_text())
    assert caps["inputs"]["sources"]["generated"] == "data/tiny/generated.npy"
    assert caps["inputs"]["latent_seed"] == reproduction.GENERATION_SEED
    ds = load_dataset(tmp_path / "data" / "tiny")
    info = runs.read_run_info(tiny_run)
    assert ds.manifest["crop_size"] == info.preset.model.image_size
    assert ds.angle_deg == pytest.approx(info.preset.angle_deg)
    assert get_preset("tiny").model.image_size == 32


# ------------------------------------------------------------------------------ array interface
@pytest.fixture(scope="module")
def two_sets():
    a, b = smooth_maps(40, 32, seed=1), smooth_maps(40, 32, seed=2)
    a[:, 3, 3] += 0.5                                       # a heavy positive tail (a "halo")
    return a, b


def test_figure_functions_take_arrays(two_sets):
    from matplotlib.figure import Figure

    gen, val = two_sets
    angle = 32 * 3.464 / 1024
    ell, Pg = power.power_spectrum(gen, angle)
    _, Pv = power.power_spectrum(val, angle)
    modes = power.count_modes(32, angle)
    nu, *mg = morphology.minkowski_functionals(gen)
    _, *mv = morphology.minkowski_functionals(val)
    made = [figure_1(gen, val, angle_deg=angle), figure_2(gen, val),
            figure_3a(ell, Pg, Pv, modes=modes), figure_3b(ell, Pg, Pv, modes=modes),
            figure_4(Pv, Pg, None, ell=ell, modes=modes), figure_5(nu, mg, mv),
            figure_6(nu, mg, mv), figure_7(gen[:2], val[:2], val[2:4]),
            figure_8(np.stack([gen[:5], val[:5]]))]
    for fig in made:
        assert isinstance(fig, Figure) and fig.caption.startswith("Figure ")
        assert isinstance(fig.numbers, dict)
    assert made[0].numbers["vmax"] > 0.1                   # the tail is inside the colour range
    assert made[3].numbers["n_generated"] == 40
    # Fig. 4 without an auxiliary set still compares validation and generated
    assert list(made[4].numbers["differences"]) == ["validation - generated"]


def test_identical_sets_give_p_value_one_and_zero_differences(two_sets):
    gen, _ = two_sets
    ell, P = power.power_spectrum(gen, 0.2)
    fig = figure_3b(ell, P, P.copy(), modes=power.count_modes(32, 0.2))
    assert all(m["pvalue"] == pytest.approx(1.0) for m in fig.numbers["modes_shown"])
    fig4 = figure_4(P, P.copy(), P.copy(), modes=power.count_modes(32, 0.2))
    assert all(v["max_abs"] == 0.0 for v in fig4.numbers["differences"].values())


def test_shifted_power_spectrum_gives_small_p_values(two_sets):
    gen, val = two_sets
    modes = power.count_modes(32, 0.2)
    ell, Pv = power.power_spectrum(val, 0.2)
    shown = figure_3b(ell, Pv * 3.0, Pv, modes=modes).numbers["modes_shown"]   # 3x the power
    # a bin with one mode has an exponential distribution: 3x the power still overlaps much there
    assert sum(m["n_modes"] >= 3 for m in shown) >= 2
    assert all(m["pvalues"]["KS"] < 1e-4 and m["pvalues"]["AD"] < 1e-4 for m in shown if m["n_modes"] >= 3)
    shown = figure_3b(ell, Pv * 10.0, Pv, modes=modes).numbers["modes_shown"]
    assert all(m["pvalues"]["KS"] < 1e-3 and m["pvalues"]["AD"] < 1e-3 for m in shown)
    assert shown[0]["ell"] < shown[-1]["ell"]


def test_select_modes_clips_to_existing_bins():
    edges = power.DEFAULT_L_EDGES
    ell = 0.5 * (edges[:-1] + edges[1:])
    modes = power.count_modes(256, 0.866)
    idx = select_modes(ell, DEFAULT_MODES, modes=modes)
    np.testing.assert_allclose(ell[idx], [3300, 23300, 43300])          # the authors' slides
    small = power.count_modes(32, 0.108)
    idx = select_modes(ell, (100.0, 1e6), modes=small)
    nonempty = np.flatnonzero(small > 0)
    assert idx == [nonempty[0], nonempty[-1]]
    assert len(select_modes(ell, (3300.0, 3301.0), modes=modes)) == 1      # no duplicates


def test_asinh_ticks_cover_the_tails(two_sets):
    gen, val = two_sets
    norm = map_norm([gen, val])
    ticks = asinh_ticks(norm)
    assert 0.0 in ticks and ticks == sorted(ticks)
    assert all(norm.vmin <= t <= norm.vmax for t in ticks)
    pos = np.array([float(norm(t)) for t in ticks])
    assert np.all(np.diff(pos) >= 0.07 - 1e-12)
    assert max(ticks) >= 0.1                                            # a tick in the tail


def test_bad_arrays_raise_paper_repro_error():
    with pytest.raises(PaperReproError, match="expected float maps"):
        figure_1(np.zeros((2, 8, 9), np.float32), np.zeros((2, 8, 8), np.float32))
    with pytest.raises(PaperReproError, match="P_generated"):
        figure_3a(np.arange(5.0), np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(PaperReproError, match="expected \\(V0, V1, V2\\)"):
        figure_5(np.arange(3.0), [np.ones((3, 3))], [np.ones((3, 3))] * 3)
    with pytest.raises(PaperReproError, match="strips"):
        figure_8(np.zeros((2, 1, 8, 8), np.float32))


def test_pixel_pvalue_is_calibrated_and_has_power():
    # independent sets from one distribution: p-values spread over [0, 1] (valid under the null)
    ps = np.array([pixel_values_pvalue(smooth_maps(30, 32, seed=100 + 2 * i),
                                               smooth_maps(30, 32, seed=101 + 2 * i),
                                               n_permutations=300, seed=i)[0] for i in range(20)])
    assert np.mean(ps < 0.1) <= 0.3 and np.mean(ps > 0.5) >= 0.25, ps
    # a 30% larger amplitude is detected
    p, test, d = pixel_values_pvalue(smooth_maps(30, 32, seed=1), 1.3 * smooth_maps(30, 32, seed=2),
                                             n_permutations=300)
    assert p < 0.01 and d > 0 and "permutations" in test
