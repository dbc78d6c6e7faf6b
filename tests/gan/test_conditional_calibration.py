"""The conditional output calibration: pattern and mode gains as polynomials in the parameters,
fitted over the training nodes, applied by a serialisable layer, written by ``pick --checkpoint``."""
import json

import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.config import get_preset
from paper_repro.errors import PaperReproError
from paper_repro.evaluation import architecture
from paper_repro.gan import calibration, runs
from paper_repro.gan import conditional_calibration as cc
from paper_repro.gan.conditional import build_conditional_generator
from paper_repro.gan.latents import generate

PRESET = get_preset("tiny-cond")
SIZE = PRESET.model.image_size
SCALE = PRESET.training.data_scale


def test_monomials_and_degree():
    assert cc.monomials(2, 2) == [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]
    x = cc.design_matrix(np.array([[0.5, -2.0]]), 2)
    np.testing.assert_allclose(x, [[1, 0.5, -2.0, 0.25, -1.0, 4.0]])
    assert cc.default_degree(30) == 2 and cc.default_degree(4) == 0 and cc.default_degree(6) == 1


def symmetric(rng, shape):
    """Random real fields, symmetric under k -> -k (as the log gains of real maps are)."""
    a = rng.standard_normal(shape)
    return 0.5 * (a + np.roll(a[..., ::-1, ::-1], 1, axis=(-2, -1)))


def test_layer_applies_the_polynomials_at_each_maps_parameters():
    """G'(z, u) = F^-1[exp(L(u)) F(G(z, u) - P(u))] for degree 1, each map at its own parameters;
    the model saves and loads as a .keras file with the same output."""
    g = build_conditional_generator(PRESET, seed=1)
    rng = np.random.default_rng(2)
    pattern = 0.01 * rng.standard_normal((3, SIZE, SIZE)).astype(np.float32)
    log_gain = (0.05 * symmetric(rng, (3, SIZE, SIZE))).astype(np.float32)
    model = cc.calibrated_conditional(g, pattern, log_gain, 1)
    z = rng.standard_normal((4, PRESET.model.latent_dim)).astype(np.float32)
    u = np.array([[-1, -1], [1, -1], [0.3, 0.7], [1, 1]], np.float32)
    out = np.asarray(model([z, u], training=False))[..., 0]
    raw = np.asarray(g([z, u], training=False))[..., 0].astype(np.float64)
    for i in range(4):
        f = np.array([1.0, u[i, 0], u[i, 1]])
        p = np.tensordot(f, pattern, 1)
        gain = np.exp(np.tensordot(f, log_gain, 1))
        want = np.real(np.fft.ifft2(np.fft.fft2(raw[i] - p) * gain))
        np.testing.assert_allclose(out[i], want, atol=2e-5)
    assert calibration.is_calibrated(model)
    inner = calibration.uncalibrated(model)
    np.testing.assert_allclose(np.asarray(inner([z, u]))[..., 0], raw, atol=1e-6)
    with pytest.raises(PaperReproError, match="symmetric"):
        cc.calibrated_conditional(g, pattern, (0.05 * rng.standard_normal((3, SIZE, SIZE))).astype(np.float32), 1)
    with pytest.raises(PaperReproError, match="already calibrated"):
        cc.calibrated_conditional(model, pattern, log_gain, 1)


def test_fit_recovers_a_parameter_dependent_amplitude():
    """Real maps that are the generator's own maps (other latents, pattern removed) scaled by
    exp(0.1 + 0.2 u1 - 0.1 u2): a degree-1 fit over 4 nodes finds those log gains at every mode
    (to its sampling noise) and the generator's own pattern, and the calibrated maps' power matches."""
    g = build_conditional_generator(PRESET, seed=4)
    us = [np.array(u, np.float32) for u in ((-1, -1), (1, -1), (-1, 1), (1, 1))]
    coef = np.array([0.1, 0.2, -0.1])
    nodes = []
    for j, u in enumerate(us):
        own = np.concatenate(list(generate(g, 1024, 50 + j, params=u)))
        scale = np.exp(coef @ [1.0, u[0], u[1]])
        nodes.append((f"n{j}", u, (scale * (own - own.mean(axis=0))) / SCALE))
    pattern, log_gain, fit = cc.fit_conditional(g, nodes, data_scale=SCALE, degree=1, n_maps=1024, seed=9)
    assert pattern.shape == log_gain.shape == (3, SIZE, SIZE) and fit.degree == 1 and fit.nodes == ["n0", "n1", "n2", "n3"]
    off = np.ones((SIZE, SIZE), bool)
    off[0, 0] = False
    for t in range(3):
        assert abs(np.median(log_gain[t][off]) - coef[t]) < 0.02, (t, np.median(log_gain[t][off]))
    assert fit.rms_log_power_error > 0.3 and fit.rms_log_power_error_after < fit.rms_log_power_error
    own = np.concatenate(list(generate(g, 1024, 9, params=us[0]))).astype(np.float64)
    at_u0 = (pattern[0] - pattern[1] - pattern[2]).ravel()          # the fitted pattern at u = (-1, -1)
    assert np.corrcoef(at_u0, (own.mean(axis=0) - own.mean()).ravel())[0, 1] > 0.9
    model = cc.calibrated_conditional(g, pattern, log_gain, 1)
    made = np.concatenate(list(generate(model, 1024, 77, params=us[3])))
    ratio = np.var(made) / np.var(nodes[3][2] * SCALE)
    assert abs(np.log(ratio)) < 0.05, ratio
    with pytest.raises(PaperReproError, match="needs at least 6 nodes"):
        cc.fit_conditional(g, nodes, data_scale=SCALE, degree=2, n_maps=16)


def test_fit_matches_the_map_mean_level_and_spread():
    """Real maps that are the generator's own maps with their mean level moved to c(u) = c0 (1 + 0.2 u1)
    and the spread of their map means times 1.35 (every other mode untouched), at 3 nodes (a degree-1
    fit through them is exact there): the calibrated maps' mean level and map-mean spread are the real
    ones at a node, to their standard errors, where the uncalibrated generator's level is 3 spreads off;
    between the nodes at least 80% of the level's error is gone (the rest is the generator's own level,
    not linear in u there) and the spread is the real one; the fit records the offset and spread it found."""
    g = build_conditional_generator(PRESET, seed=5)
    us = [np.array(u, np.float32) for u in ((-1, -1), (1, -1), (-1, 1))]
    probe = np.concatenate(list(generate(g, 512, 60, params=us[0]))).astype(np.float64)
    sd0 = probe.mean(axis=(1, 2)).std()
    c0, spread = 3 * sd0, 1.35

    def level(u):
        return c0 * (1 + 0.2 * u[0])

    nodes = []
    for j, u in enumerate(us):
        own = np.concatenate(list(generate(g, 4096, 70 + j, params=u))).astype(np.float64)
        own -= own.mean(axis=0)                                   # ensemble mean map 0
        m = own.mean(axis=(1, 2), keepdims=True)
        nodes.append((f"n{j}", u, ((own - m) + spread * m + level(u)) / SCALE))
    pattern, log_gain, fit = cc.fit_conditional(g, nodes, data_scale=SCALE, degree=1, n_maps=4096, seed=9)
    assert fit.mean_offset > 2 and abs(fit.mean_sd_ratio_min - 1 / spread) < 0.08 and \
        abs(fit.mean_sd_ratio_max - 1 / spread) < 0.08, fit
    assert set(fit.per_node["n0"]) == {"rms_log_power_error", "after", "mean_offset", "mean_sd_ratio"}
    model = cc.calibrated_conditional(g, pattern, log_gain, 1)
    for u, node in ((us[1], True), (np.array([-0.3, -0.3], np.float32), False)):
        raw = np.concatenate(list(generate(g, 4096, 88, params=u))).astype(np.float64).mean(axis=(1, 2))
        made = np.concatenate(list(generate(model, 4096, 88, params=u))).astype(np.float64).mean(axis=(1, 2))
        se = made.std() / np.sqrt(len(made))
        assert abs(raw.mean() - level(u)) > 2 * spread * raw.std(), (raw.mean(), level(u), raw.std())
        limit = 4 * se if node else 0.2 * abs(raw.mean() - level(u))
        assert abs(made.mean() - level(u)) < limit, (made.mean(), level(u), limit)
        # 4 sd of the sampling noise of the three sds compared (4,096 maps each): 0.08
        assert abs(made.std() / (spread * raw.std()) - 1) < 0.08, (made.std(), raw.std())


def test_each_node_draws_its_own_latents():
    """Two nodes at the same parameters with the same real maps are measured on different generated
    maps (a latent set shared by all nodes would make them equal, and its sampling error would pass
    into the fit whole); each node's set is reproducible from the base seed and its index."""
    g = build_conditional_generator(PRESET, seed=6)
    u = np.array([0.2, -0.4], np.float32)
    real = np.concatenate(list(generate(g, 512, 80, params=u))) / SCALE
    nodes = [(f"n{j}", u, real) for j in range(2)]
    _, _, fit = cc.fit_conditional(g, nodes, data_scale=SCALE, degree=0, n_maps=256, seed=9)
    a, b = fit.per_node["n0"], fit.per_node["n1"]
    assert a["mean_offset"] != b["mean_offset"] and a["rms_log_power_error"] != b["rms_log_power_error"]
    again = cc.node_measurements(g, real, u, data_scale=SCALE, n_maps=256, seed=cc.node_seed(9, 1))
    assert again["mean_offset"] == pytest.approx(b["mean_offset"], rel=1e-9, abs=1e-12)
    assert len({cc.node_seed(9, j) for j in range(30)} | {cc.node_seed(10, j) for j in range(30)}) == 60


def test_pick_checkpoint_calibrates_a_conditional_run_over_its_grid(tmp_path, tiny_cosmo_grid, capsys):
    """``pick --checkpoint last`` on a conditional run: a calibrated run whose generator takes the
    parameters, loads, generates at given parameters, matches its preset's architecture with the
    calibration reported apart, and records the fit; ranking a conditional run stays an error."""
    from paper_repro.gan.training import train

    run = tmp_path / "cond"
    train(run, "tiny-cond", tiny_cosmo_grid, seed=3, epochs=1, progress=False)
    out = tmp_path / "cal"
    assert main(["pick", "--run", str(run), "--out", str(out), "--checkpoint", "last",
                 "--calibration-maps", "256", "--quiet"]) == 0
    said = capsys.readouterr().out
    assert "calibrated over 4 training nodes" in said and "degree 0" in said
    rec = json.loads((out / "best" / "calibration.json").read_text())
    assert rec["nodes"] and rec["n_generated_per_node"] == 256 and rec["checkpoint"] == "generator.keras"
    assert not rec["source"].startswith("/")
    model, preset = runs.load_generator(out)
    assert calibration.is_calibrated(model) and len(model.inputs) == 2
    maps = runs.generate_maps(out, 8, 5, params=(0.26, 0.8))
    assert maps.shape == (8, SIZE, SIZE) and np.isfinite(maps).all()
    entry = architecture.run_architecture(out, None)
    assert entry["matches"], entry["mismatches"]
    assert entry["calibration"]["non_trainable"] == 2 * 1 * SIZE * SIZE
    assert main(["pick", "--run", str(run), "--out", str(tmp_path / "x"), "--development",
                 str(tmp_path / "d.npy")]) == 2
    assert "picked on its grid's development maps" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_pick_compares_epoch_generators_calibrated_over_the_grid(tmp_path, capsys):
    """``pick`` on a conditional run: each of its last epoch-end generators calibrated over the grid
    and scored on every training node's development maps; the lowest mean W is written with its
    calibration and ``pick.json`` (every candidate's W per node)."""
    from paper_repro.config import PIXEL_DEG, CosmoGridConfig, DatasetConfig, SimulationConfig, SplitSizes
    from paper_repro.gan.training import train
    from paper_repro.maps.cosmo_grid import build_cosmo_grid

    grid = tmp_path / "grid"
    build_cosmo_grid(grid, CosmoGridConfig(
        "dev-cosmo", DatasetConfig("dev-cosmo-node", SimulationConfig(map_size=256, angle_deg=256 * PIXEL_DEG),
                                   crop_size=32, crops_per_map=16,
                                   splits=SplitSizes(train=2, validation=1, development=2, auxiliary=1)),
        omega_m=(0.22, 0.32), sigma_8=(0.70, 0.90), held_out=((0.27, 0.80),),
        held_out_splits=SplitSizes(train=0, validation=1, development=0, auxiliary=1)), progress=False)
    run = tmp_path / "cond"
    train(run, "tiny-cond", grid, seed=3, epochs=2, progress=False)
    out = tmp_path / "picked"
    assert main(["pick", "--run", str(run), "--out", str(out), "--maps", "64", "--seeds", "5",
                 "--calibration-maps", "128", "--quiet"]) == 0
    said = capsys.readouterr().out
    rec = json.loads((out / "best" / "pick.json").read_text())
    assert set(rec["candidates"]) == {"1", "2"} and rec["seeds"] == [5] and rec["maps_per_node"] == 64
    ws = {e: r["W"] for e, r in rec["candidates"].items()}
    assert rec["W"] == min(ws.values()) and ws[str(rec["epoch"])] == rec["W"]
    for r in rec["candidates"].values():
        assert len(r["nodes"]) == 4 and np.isclose(r["W"], np.mean(list(r["nodes"].values())))
    assert f"epoch {rec['epoch']} of" in said
    cal = json.loads((out / "best" / "calibration.json").read_text())
    assert cal["checkpoint"] == f"generators/epoch-{rec['epoch']:04d}.weights.h5"
    model, _ = runs.load_generator(out)
    assert calibration.is_calibrated(model)
    assert main(["pick", "--run", str(run), "--out", str(tmp_path / "again"), "--epochs", "1", "--maps", "64",
                 "--seeds", "5", "--calibration-maps", "128", "--quiet"]) == 0
    assert set(json.loads((tmp_path / "again" / "best" / "pick.json").read_text())["candidates"]) == {"2"}
