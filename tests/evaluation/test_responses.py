"""paper_repro.evaluation.responses: neighbouring nodes, finite-difference responses with clustered and
paired errors, and the emulator / simulator comparison (synthetic statistics with known slopes)."""
from __future__ import annotations

import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.evaluation import responses
from paper_repro.stats.twosample import clustered_se

OM, S8 = (0.20, 0.23, 0.26, 0.29), (0.724, 0.798, 0.872)
NODES = [{"name": f"node-{k:02d}", "Omega_m": om, "sigma_8": s8}
         for k, (om, s8) in enumerate((om, s8) for om in OM for s8 in S8)]


def test_neighbours_of_the_fiducial_and_refusals():
    a = responses.neighbours(NODES)                       # the fiducial is a node with neighbours
    assert (a["centre"]["Omega_m"], a["centre"]["sigma_8"]) == (0.26, 0.798)
    assert [n["Omega_m"] for n in a["Omega_m"]] == [0.23, 0.29]
    assert [n["sigma_8"] for n in a["sigma_8"]] == [0.724, 0.872]
    assert all(n["sigma_8"] == 0.798 for n in a["Omega_m"]) and all(n["Omega_m"] == 0.26 for n in a["sigma_8"])
    b = responses.neighbours(NODES, (0.23, 0.798))
    assert [n["Omega_m"] for n in b["Omega_m"]] == [0.20, 0.26]
    off = [n for n in NODES if (n["Omega_m"], n["sigma_8"]) != (0.26, 0.798)]
    c = responses.neighbours(off)                          # no fiducial: the node nearest the box's centre
    assert (c["centre"]["Omega_m"], c["centre"]["sigma_8"]) == (0.23, 0.798)
    with pytest.raises(PaperReproError, match="lacks a neighbouring node"):
        responses.neighbours(NODES, (0.20, 0.798))
    with pytest.raises(PaperReproError, match="not a training node"):
        responses.neighbours(NODES, (0.27, 0.8))
    with pytest.raises(PaperReproError, match="at least 3 x 3"):
        responses.neighbours([n for n in NODES if n["sigma_8"] != 0.798])


def _linear_set(theta, slope, n, rng, parents=None, noise=1.0):
    """(N, 2) statistics a + slope * theta plus noise; with parents, noise shared within a parent."""
    x = np.full((n, 2), 1.0) + np.asarray(slope) * theta + noise * rng.standard_normal((n, 2))
    if parents is not None:
        x += 3 * noise * rng.standard_normal((parents, 2))[np.arange(n) % parents]
    return x


def test_simulator_response_errors_cover_the_slope_and_grow_with_clustering():
    rng = np.random.default_rng(1)
    slope, step, z = np.array([2.0, -1.0]), 0.1, []
    for _ in range(200):
        lo, hi = _linear_set(0.0, slope, 400, rng), _linear_set(step, slope, 400, rng)
        d, cov = responses.simulator_response(lo, hi, step)
        z.append((d - slope) / np.sqrt(np.diag(cov)))
    z = np.array(z)
    assert abs(z.mean()) < 0.25 and 0.85 < z.std() < 1.15     # unbiased, errors right (200 replicas)
    groups = np.arange(400) % 10
    lo, hi = _linear_set(0.0, slope, 400, rng, 10), _linear_set(step, slope, 400, rng, 10)
    naive = np.diag(responses.simulator_response(lo, hi, step)[1])
    clustered = responses.simulator_response(lo, hi, step, groups, groups)[1]
    assert np.all(np.diag(clustered) > 4 * naive)              # 10 parents share most of the noise
    np.testing.assert_allclose(np.sqrt(np.diag(responses.mean_cov(hi, groups))), clustered_se(hi, groups))
    np.testing.assert_allclose(responses.mean_cov(hi), np.cov(hi, rowvar=False) / len(hi))


def test_paired_response_cancels_the_common_noise():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((500, 2))
    slope, step = np.array([1.5, 0.5]), 0.05
    d, cov = responses.paired_response(1 + base, 1 + base + slope * step + 1e-3 * rng.standard_normal((500, 2)), step)
    se = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(d, slope, atol=5 * se.max())
    unpaired = responses.simulator_response(1 + base, 1 + rng.standard_normal((500, 2)), step)[1]
    assert se.max() < 1e-2 * np.sqrt(np.diag(unpaired)).min()
    with pytest.raises(PaperReproError, match="differ in shape"):
        responses.paired_response(base, base[:10], step)


def test_compare_ratios_amplitude_and_undefined_components():
    s, ss = np.array([2.0, -1.0, 0.0]), np.array([0.1, 0.1, 0.1])
    same = responses.compare(s, ss, s, ss)
    assert same["ratio"][:2] == [1.0, 1.0] and np.isnan(same["ratio"][2])
    assert same["amplitude"] == pytest.approx(1.0) and same["within_10_percent"] == 2
    up = responses.compare(1.2 * s, ss, s, ss)
    assert up["amplitude"] == pytest.approx(1.2) and up["within_10_percent"] == 0
    assert up["ratio_se"][0] == pytest.approx(1.2 * np.hypot(0.1 / 2.4, 0.1 / 2.0))
    assert up["z"][0] == pytest.approx(0.4 / np.hypot(0.1, 0.1))
    # fully correlated errors of the two defined components: the amplitude's error is larger than independent
    shared = responses.compare(1.2 * s[:2], np.full((2, 2), 0.01), s[:2], np.full((2, 2), 0.01) * [[1, -1], [-1, 1]])
    alone = responses.compare(1.2 * s[:2], ss[:2], s[:2], ss[:2])
    assert shared["amplitude"] == pytest.approx(alone["amplitude"]) and shared["amplitude_se"] > alone["amplitude_se"]


def test_responses_report_recovers_a_scaled_emulator():
    rng = np.random.default_rng(3)
    slopes = {"power": np.array([1.0, 2.0]), "pixel": np.array([0.5, -0.5]), "peaks": np.array([3.0, 1.0])}
    latent = rng.standard_normal((300, 2))

    def stats(node, gain, paired):
        theta = node["Omega_m"] + node["sigma_8"]
        noise = 0.01 * (latent if paired else rng.standard_normal((300, 2)))
        return {k: (["a", "b"], 1 + gain * v * theta + noise) for k, v in slopes.items()}

    sim = {n["name"]: stats(n, 1.0, False) for n in NODES}
    emu = {n["name"]: stats(n, 1.1, True) for n in NODES}
    rep = responses.responses(sim, emu, NODES)
    assert rep["centre"]["name"] == "node-07" and rep["neighbours"]["sigma_8"]["step"] == pytest.approx(0.148)
    for stat, entry in rep["statistics"].items():
        assert entry["labels"] == ["a", "b"]
        for p in responses.PARAMETERS:
            assert entry[p]["amplitude"] == pytest.approx(1.1, abs=5 * entry[p]["amplitude_se"])
            np.testing.assert_allclose(entry[p]["simulator"], slopes[stat], rtol=0.05)
    text = responses.markdown(rep)
    assert "| power | Omega_m |" in text and "node-07" in text
    with pytest.raises(PaperReproError, match="no statistics of node"):
        responses.responses({}, emu, NODES)
