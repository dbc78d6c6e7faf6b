"""paper_repro.maps.simulation: theory C_ell, log-normal and Gaussian fields, and ``paper-repro simulate``.

Maps here are 256^2 at the paper's 0.203 arcmin pixels (0.866 deg, generated on 512^2 and averaged
2x2) so the statistical checks run in seconds; a few checks use the paper's 1024^2 geometry.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.integrate import simpson
from scipy.special import erfc

from paper_repro import cli
from paper_repro.config import CosmologyConfig, SimulationConfig, get_dataset_preset
from paper_repro.errors import PaperReproError
from paper_repro.maps.datasets import load_dataset
from paper_repro.maps.simulation import (
    ConvergenceSimulator,
    averaging_window,
    ccl_cosmology,
    cl_spline,
    empty_beam_convergence,
    get_simulator,
    lensing_tracer,
    lenstools_bin,
    map_seeds,
    simulate_map,
    simulate_maps,
    theory_cl,
)
from paper_repro.stats.morphology import minkowski_functionals

PIX_DEG = 3.464 / 1024
SMALL = SimulationConfig(map_size=256, angle_deg=256 * PIX_DEG)
N_MAPS = 48


def measure_power(maps: np.ndarray, angle_deg: float, l_edges) -> tuple[np.ndarray, np.ndarray]:
    """LensTools' power spectrum: (theta_rad / N^2)^2 |rfft2|^2, binned as LensTools (per map)."""
    n = maps.shape[-1]
    ft = np.fft.rfft2(maps.astype(np.float64))
    p = (math.radians(angle_deg) / n ** 2) ** 2 * (ft.real ** 2 + ft.imag ** 2)
    return lenstools_bin(p, angle_deg, l_edges)


def skewness(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64).ravel()
    d = x - x.mean()
    return float((d ** 3).mean() / (d ** 2).mean() ** 1.5)


@pytest.fixture(scope="module", params=["lognormal", "gaussian"])
def model_maps(request):
    cfg = dataclasses.replace(SMALL, model=request.param)
    sim = get_simulator(cfg)
    return request.param, sim, sim.maps(N_MAPS, seed=123)


# ----------------------------------------------------------------------------------- theory
def test_theory_cl_is_positive_plausible_and_cached():
    ell = np.array([100.0, 1000.0, 1e4, 1e5])
    before = cl_spline.cache_info().hits
    cl = theory_cl(ell)
    theory_cl(ell)
    assert cl_spline.cache_info().hits >= before + 1
    assert np.all(cl > 0) and np.all(np.diff(cl) < 0)
    d = ell * (ell + 1) * cl / (2 * np.pi)
    # z_s = 1 lensing: l(l+1)C/2pi ~ 1e-5 at l = 100, a few 1e-5 to 1e-4 at l = 1e3-1e4
    assert 3e-6 < d[0] < 3e-5 and 2e-5 < d[1] < 2e-4 and d[2] > d[1]
    assert theory_cl(np.array([0.0]))[0] == 0.0


def test_single_plane_tracer_matches_a_narrow_source_distribution():
    import pyccl

    cos = CosmologyConfig()
    c = ccl_cosmology(cos)
    z = np.linspace(0.9, 1.1, 801)
    wl = pyccl.WeakLensingTracer(c, dndz=(z, np.exp(-0.5 * ((z - 1.0) / 0.005) ** 2)))
    ell = np.geomspace(100, 3e4, 12)
    ratio = pyccl.angular_cl(c, wl, wl, ell) / theory_cl(ell, cos, 1.0)
    np.testing.assert_allclose(ratio, 1.0, atol=2e-3)


def test_empty_beam_convergence_is_minus_the_integrated_kernel():
    import pyccl

    cos = CosmologyConfig()
    kmin = empty_beam_convergence(cos, 1.0)
    chi_s = pyccl.comoving_radial_distance(ccl_cosmology(cos), 0.5)
    chi = np.linspace(0.0, chi_s, 8001)
    kernel = np.asarray(lensing_tracer(cos, 1.0).get_kernel(chi))[0]
    assert kmin == pytest.approx(-simpson(kernel, x=chi), rel=1e-5)
    assert -0.08 < kmin < -0.04
    assert empty_beam_convergence(cos, 2.0) < kmin          # deeper sources, emptier beam


def test_larger_sigma8_raises_power_as_theory_says():
    lo, hi = CosmologyConfig(), CosmologyConfig(sigma_8=0.85)
    ell = np.array([20.0, 100.0, 1000.0, 1e4])
    r = theory_cl(ell, hi) / theory_cl(ell, lo)
    linear = (0.85 / 0.798) ** 2
    assert r[0] == pytest.approx(linear, rel=0.02)           # linear scales: C ~ sigma_8^2
    assert np.all(r >= linear * 0.99) and r[-1] > r[0]       # non-linear scales grow faster
    sims = [get_simulator(dataclasses.replace(SMALL, cosmology=c)) for c in (lo, hi)]
    assert sims[1].pixel_variance > sims[0].pixel_variance * linear
    var = [s.maps(8, seed=5).var() for s in sims]
    assert var[1] > var[0]


def test_averaging_window_limits():
    dx = 1e-4
    assert averaging_window(0.0, 0.0, dx, 2) == pytest.approx(1.0)
    sampling = 2 * np.pi / (2 * dx)                          # coarse pixel 2 dx
    assert averaging_window(sampling, 0.0, dx, 2) == pytest.approx(0.0, abs=1e-20)
    assert averaging_window(1.0, 2.0, dx, 1) == pytest.approx(1.0)
    # 2x2 mean: per axis cos^2(ell dx / 2)
    ell = np.array([1e3, 7e3, 2e4])
    np.testing.assert_allclose(averaging_window(ell, 0.0, dx, 2), np.cos(ell * dx / 2) ** 2)


def test_binning_and_normalisation_match_lenstools(lenstools_fixture):
    fx = lenstools_fixture
    ell, p = measure_power(fx["maps"], float(fx["angle_deg"]), fx["l_edges"])
    np.testing.assert_allclose(ell, fx["ell"])
    np.testing.assert_allclose(p, fx["P"], rtol=1e-9, atol=0)


# ----------------------------------------------------------------------------------- fields
def test_lognormal_transform_keeps_the_input_cl():
    for cfg in (SMALL, SimulationConfig()):
        sim = get_simulator(cfg)
        assert sim.shift == pytest.approx(abs(empty_beam_convergence()), rel=1e-12)
        assert sim.lognormal_power_error < 1e-3               # realised vs input C_ell, every mode
        assert sim.clipped_power_fraction < 1e-3
        ell, expected = sim.expected_power(np.geomspace(300, 2e4, 10))
        _, target = sim.target_power(np.geomspace(300, 2e4, 10))
        ok = target > 0
        # below ~0.4 of the map's Nyquist multipole aliasing of the fine grid is < 2%
        np.testing.assert_allclose(expected[ok] / target[ok], 1.0, atol=0.02)


def test_mean_power_spectrum_matches_theory_with_pixel_window(model_maps):
    model, sim, maps = model_maps
    angle = sim.config.angle_deg
    edges = np.geomspace(600, 52000, 16)
    ell, p = measure_power(maps, angle, edges)
    _, expected = sim.expected_power(edges)
    _, target = sim.target_power(edges)
    ok = expected > 0
    assert ok.sum() >= 14
    mean = p[:, ok].mean(axis=0)
    sem = p[:, ok].std(axis=0, ddof=1) / np.sqrt(len(p))
    ratio = mean / expected[ok]
    rel_sem = sem / expected[ok]
    # every bin within 4 standard errors (+1%), and within 3% wherever the error is < 1%
    assert np.all(np.abs(ratio - 1) < 4 * rel_sem + 0.01), (ratio, rel_sem)
    tight = rel_sem < 0.01
    assert tight.sum() >= 6
    assert np.all(np.abs(ratio[tight] - 1) < 0.03), (ratio, rel_sem)
    # against the pyccl input times the averaging window (no aliasing) at ell below 20000
    low = ell[ok] < 20000
    assert np.all(np.abs(mean[low] / target[ok][low] - 1) < 4 * rel_sem[low] + 0.03)


def test_pixel_variance_matches_expectation(model_maps):
    _, sim, maps = model_maps
    per_map = maps.reshape(len(maps), -1).var(axis=1, dtype=np.float64)
    # the periodic map has no DC mode: its pixel variance is the sum of the modes' power
    assert per_map.mean() == pytest.approx(sim.pixel_variance, rel=0.03)


def test_lognormal_is_skewed_with_asymmetric_minkowski_functionals_gaussian_is_not(model_maps):
    model, sim, maps = model_maps
    skew = skewness(maps)
    sigma = maps.std(dtype=np.float64)
    nu = np.arange(-2.0, 2.01, 0.25)
    # V0 (area above nu sigma): a Gaussian field gives erfc(nu / sqrt 2) / 2
    z = (maps - maps.mean(axis=(1, 2), keepdims=True)) / maps.std(axis=(1, 2), keepdims=True)
    v0 = np.array([(z >= t).mean() for t in nu])
    v0_dev = np.max(np.abs(v0 - 0.5 * erfc(nu / np.sqrt(2))))
    asym = np.max(np.abs(v0 + v0[::-1] - 1))                  # V0(nu) + V0(-nu) = 1 if symmetric
    if model == "lognormal":
        assert 0.7 < skew < 1.6
        assert maps.min() >= -sim.shift                        # kappa >= -lambda
        assert v0_dev > 0.04 and asym > 0.05
    else:
        assert abs(skew) < 0.1
        assert v0_dev < 0.02 and asym < 0.02
    assert 0.01 < sigma < 0.04


def test_minkowski_genus_asymmetry_with_the_statistics_module(model_maps):
    model, _, maps = model_maps
    t = np.arange(-2.0, 2.01, 0.2)
    nu, v0, v1, v2 = minkowski_functionals(maps[:16], t)
    v2m = v2.mean(axis=0)
    v1m = v1.mean(axis=0)
    # Gaussian: V1 even, V2 odd in nu. Measure the departure relative to the functional's size.
    odd_v1 = np.max(np.abs(v1m - v1m[::-1])) / np.max(np.abs(v1m))
    even_v2 = np.max(np.abs(v2m + v2m[::-1])) / np.max(np.abs(v2m))
    if model == "lognormal":
        assert odd_v1 > 0.1 and even_v2 > 0.2
    else:
        assert odd_v1 < 0.06 and even_v2 < 0.15


def test_pixels_outside_unit_interval_are_rarer_than_in_the_paper():
    sim = get_simulator(SimulationConfig())               # the paper's 1024^2 maps
    maps = sim.maps(6, seed=2024)
    crops = maps.reshape(6, 4, 256, 4, 256).transpose(0, 1, 3, 2, 4).reshape(-1, 256, 256)
    outside = np.abs(crops) > 1.0
    assert outside.mean() < 0.009                             # pixel fraction
    assert outside.reshape(len(crops), -1).any(axis=1).mean() < 0.009   # fraction of 256^2 maps


def test_same_seed_same_bytes_different_seeds_independent():
    sim = get_simulator(SMALL)
    a, b = sim.map(7), sim.map(7)
    assert a.dtype == np.float32 and a.shape == (256, 256)
    assert a.tobytes() == b.tobytes()
    assert simulate_map(SMALL, seed=7).tobytes() == a.tobytes()
    many = simulate_maps(3, SMALL, seed=11)
    assert many.tobytes() == simulate_maps(3, SMALL, seed=11).tobytes()
    assert many[0].tobytes() == sim.map(map_seeds(11, 3)[0]).tobytes()
    c = sim.map(8)
    r = np.corrcoef(a.ravel(), c.ravel())[0, 1]
    assert abs(r) < 0.05                                      # ~5 sigma for 256^2 correlated pixels
    rr = [np.corrcoef(m1.ravel(), m2.ravel())[0, 1] for m1, m2 in zip(many[:-1], many[1:])]
    assert np.all(np.abs(rr) < 0.05)
    g1, g2 = np.random.default_rng(1), np.random.default_rng(1)
    assert sim.map(g1).tobytes() == sim.map(g2).tobytes()


def test_fine_factor_one_has_the_input_power_on_the_grid():
    cfg = dataclasses.replace(SMALL, fine_factor=1, model="gaussian")
    sim = ConvergenceSimulator(cfg)
    edges = np.geomspace(600, 40000, 8)
    _, expected = sim.expected_power(edges)
    _, target = sim.target_power(edges)
    np.testing.assert_allclose(expected, target, rtol=1e-9)


@pytest.mark.parametrize("kwargs", [
    {"map_size": 0}, {"map_size": -5}, {"angle_deg": -1.0}, {"angle_deg": float("nan")},
    {"fine_factor": 0}, {"model": "poisson"}, {"shift": -0.1}, {"z_source": 0.0},
    {"cosmology": {"Omega_m": 0.26, "Omega_b": 0.3}},
])
def test_bad_simulation_settings_raise(kwargs):
    with pytest.raises(PaperReproError):
        cfg = dataclasses.replace(SMALL, **kwargs)
        ConvergenceSimulator(cfg)


@pytest.mark.parametrize("kwargs", [{"Omega_m": 1.2}, {"Omega_b": 0.3}, {"sigma_8": -0.8}, {"h": float("inf")},
                                    {"w": 0.0}, {"transfer_function": "magic"}])
def test_bad_cosmology_raises(kwargs):
    with pytest.raises(PaperReproError):
        CosmologyConfig(**kwargs)


def test_bad_theory_inputs_raise():
    with pytest.raises(PaperReproError, match="ell"):
        theory_cl(np.array([-1.0]))
    with pytest.raises(PaperReproError, match="ell"):
        theory_cl(np.array([1e7]))
    with pytest.raises(PaperReproError, match="shift"):
        ConvergenceSimulator(dataclasses.replace(SMALL, shift=1e-4))
    with pytest.raises(PaperReproError, match="number of maps"):
        get_simulator(SMALL).maps(0, seed=1)


# ----------------------------------------------------------------------------------- CLI
def test_cli_simulate_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    rc = cli.main(["simulate", "--out", str(out), "--preset", "tiny", "--maps", "2",
                   "--splits", "train,validation=1,auxiliary=1", "--model", "gaussian",
                   "--sigma-8", "0.85", "--seed", "4", "--quiet"])
    assert rc == 0
    ds = load_dataset(out, verify_checksum=True, check_finite=True)
    assert ds.splits == ["train", "validation", "auxiliary"]
    cfg = ds.config
    tiny = get_dataset_preset("tiny")
    assert ds["train"].shape == (2 * tiny.crops_per_map, tiny.crop_size, tiny.crop_size)
    assert cfg.simulation.model == "gaussian" and cfg.simulation.cosmology.sigma_8 == 0.85
    assert cfg.seed == 4 and ds.manifest["seeds"]["auxiliary_seed"] == 5
    assert ds.angle_deg == pytest.approx(tiny.crop_size * PIX_DEG)
    assert "wrote" in capsys.readouterr().out


def test_cli_simulate_omega_m_keeps_baryon_fraction_and_map_size_keeps_pixels(tmp_path):
    out = tmp_path / "ds"
    rc = cli.main(["simulate", "--out", str(out), "--preset", "tiny", "--omega-m", "0.3",
                   "--map-size", "128", "--crop", "16", "--splits", "train=1", "--quiet"])
    assert rc == 0
    cfg = load_dataset(out).config
    assert cfg.simulation.cosmology.baryon_fraction == pytest.approx(0.046 / 0.26)
    assert cfg.simulation.pixel_arcmin == pytest.approx(PIX_DEG * 60)
    assert cfg.crop_angle_deg == pytest.approx(16 * PIX_DEG)


@pytest.mark.parametrize("argv, message", [
    (["--preset", "nope"], "unknown dataset preset"),
    (["--maps", "-3"], "train"),
    (["--crop", "4096"], "larger than map_size"),
    (["--map-size", "-8"], "map_size"),
    (["--crops-per-map", "0"], "crops_per_map"),
    (["--model", "poisson"], "model"),
    (["--sigma-8", "-1"], "sigma_8"),
    (["--splits", "train=1,test=2"], "unknown split"),
    (["--splits", "train=x"], "train=<number"),
    (["--preset", "tiny", "--shift", "0.00001"], "shift"),
])
def test_cli_simulate_bad_input_exits_2_with_one_line_and_no_output(tmp_path, capsys, argv, message):
    out = tmp_path / "ds"
    rc = cli.main(["simulate", "--out", str(out), "--quiet", *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_cli_simulate_refuses_to_overwrite_a_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["simulate", "--out", str(out), "--preset", "tiny", "--splits", "train=1", "--quiet"]
    assert cli.main(args) == 0
    before = (out / "train.npy").read_bytes()
    assert cli.main(args + ["--seed", "9"]) == 2
    assert "already holds a dataset" in capsys.readouterr().err
    assert (out / "train.npy").read_bytes() == before
    assert cli.main(args + ["--seed", "9", "--overwrite"]) == 0
    assert (out / "train.npy").read_bytes() != before
