"""paper_repro.evaluation.inference: the data model's fit and covariance, the grid posterior's calibration
on synthetic surveys (known truth, known noise), and the refusals."""
from __future__ import annotations

import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.evaluation import inference

K = 5
BOX = ((0.20, 0.65), (0.35, 0.95))
NODES = [(om, s8) for om in np.linspace(0.20, 0.35, 5) for s8 in np.linspace(0.65, 0.95, 4)]
A, B = np.linspace(1, 3, K), np.linspace(0.5, 2.0, K)
L = np.eye(K) + 0.3 * np.random.default_rng(0).standard_normal((K, K))
CORR = L @ L.T


def mean(theta) -> np.ndarray:
    """A power law in the parameters (what log-fitted quadratics should reproduce well)."""
    t = np.atleast_2d(theta)
    return A * (t[:, 1:2] / 0.8) ** 2 * (t[:, 0:1] / 0.27) ** B


def draw(theta, n, rng) -> np.ndarray:
    m = mean(theta)[0]
    return m + 0.5 * m * rng.multivariate_normal(np.zeros(K), CORR, n)


def model_from(rng, n=400, paired=False) -> inference.DataModel:
    return inference.DataModel(NODES, [inference.summarise(draw(p, n, rng)) for p in NODES], BOX, paired=paired)


def test_fit_covariance_and_design_effect():
    exact = inference.DataModel(NODES, [{"mean": mean(p)[0], "cov": np.diag(mean(p)[0] ** 2), "n": 400,
                                         "deff": np.ones(K)} for p in NODES], BOX)
    off = np.array([[0.275, 0.761], [0.33, 0.9]])
    np.testing.assert_allclose(exact.mean(off), mean(off), rtol=1e-10)    # a power law is exact between nodes
    assert exact.log.all()
    np.testing.assert_allclose(exact.cov(NODES[5]), np.diag(mean(NODES[5])[0] ** 2), rtol=1e-12)
    mid = exact.cov((0.2375, 0.7)), np.diag(0.5 * (mean((0.2, 0.65))[0] ** 2 + mean((0.275, 0.75))[0] ** 2))
    assert np.all(np.linalg.eigvalsh(mid[0]) > 0)
    assert exact.fit_cov(NODES[0]).trace() < inference.DataModel(
        NODES, [{"mean": mean(p)[0], "cov": np.diag(mean(p)[0] ** 2), "n": 400, "deff": np.ones(K)} for p in NODES],
        BOX, paired=True).fit_cov(NODES[0]).trace()         # paired nodes: the fit cannot average noise down
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 2)) + 3 * rng.standard_normal((8, 2))[np.arange(400) % 8]
    s = inference.summarise(x, np.arange(400) % 8)
    assert s["n"] == 400 and np.all(s["deff"] > 5)                      # 8 parents share most of the noise
    np.testing.assert_array_equal(inference.summarise(x)["deff"], [1.0, 1.0])
    assert inference.hartlap(100, 10) == pytest.approx(88 / 99)


def test_posterior_is_calibrated_on_synthetic_surveys():
    truth, bias, mass = (0.275, 0.761), [], []
    for rep in range(16):
        rng = np.random.default_rng(100 + rep)
        model = model_from(rng)
        obs = draw(truth, 400, rng).mean(axis=0)
        post = inference.posterior(obs, 400, np.ones(K), model, n_grid=101)
        r = inference.recovery(post, truth)
        assert r["resolved"] and post["density"].sum() == pytest.approx(1.0)
        bias.append([r["Omega_m"]["bias_sd"], r["sigma_8"]["bias_sd"]])
        mass.append(r["mass_above_truth"])
    rms = np.sqrt(np.mean(np.square(bias), axis=0))
    assert np.all((rms > 0.5) & (rms < 1.6))              # biases of order one posterior sd, no more
    assert 0.3 < np.mean(np.array(mass) < 0.86) <= 1.0     # the 86% region holds the truth most of the time


def test_recovery_of_a_known_node_and_width_ratios():
    rng = np.random.default_rng(7)
    model = model_from(rng, n=2000)
    truth = NODES[6]
    post = inference.posterior(mean(truth)[0], 400, np.ones(K), model)
    survey = inference.posterior(mean(truth)[0], 400, np.ones(K), model, model_noise=False)
    r = inference.recovery(post, truth, survey)
    assert abs(r["Omega_m"]["bias_sd"]) < 1 and abs(r["sigma_8"]["bias_sd"]) < 1
    assert r["Omega_m"]["sd_survey"] <= r["Omega_m"]["sd"] and r["sigma_8"]["sd_survey"] <= r["sigma_8"]["sd"]
    wide = inference.posterior(mean(truth)[0], 100, np.ones(K), model, model_noise=False)
    w = inference.compare_models({"simulator": r, "emulator": inference.recovery(wide, truth, wide)})
    assert w["emulator"]["Omega_m"] == pytest.approx(2.0, rel=0.1)     # 4 times the variance: twice the width
    assert w["emulator"]["sigma_8"] == pytest.approx(2.0, rel=0.1)
    assert w["emulator"]["area"] == pytest.approx(4.0, rel=0.2)
    text = inference.markdown({"data_vector": ["a"] * K, "margin": 0.25, "nodes": [
        {"name": "held-00", "truth": dict(zip(inference.PARAMETERS, truth)),
         "models": {"simulator": r}, "width_ratio": w}]})
    assert "| held-00 |" in text and "area ratio" in text


def test_refusals():
    rng = np.random.default_rng(3)
    model = model_from(rng, n=50)
    with pytest.raises(PaperReproError, match="expected 5 finite components"):
        inference.posterior(np.ones(K + 1), 100, np.ones(K), model)
    with pytest.raises(PaperReproError, match="number of maps must be positive"):
        inference.posterior(np.ones(K), 0, np.ones(K), model)
    few = [inference.summarise(draw(p, 50, rng)) for p in NODES[:4]]
    with pytest.raises(PaperReproError, match="needs at least 10 nodes"):
        inference.DataModel(NODES[:4], few, BOX)
    with pytest.raises(PaperReproError, match="invertible covariance"):
        inference.DataModel(NODES, [inference.summarise(draw(p, 6, rng)) for p in NODES], BOX)
    with pytest.raises(PaperReproError, match="one .Omega_m, sigma_8. per node"):
        inference.DataModel(NODES[:3], few, BOX)
    with pytest.raises(PaperReproError, match="N >= 3"):
        inference.summarise(np.ones((2, K)))


def test_a_component_without_spread_is_a_one_line_error():
    """Small node sets may not vary in a rare component (no high peaks in a few maps): where the model's
    covariance has no spread the posterior is undefined and says which component, not NaN."""
    rng = np.random.default_rng(4)
    sets = {p: draw(p, 50, rng) for p in NODES}
    for p in NODES:                   # the last component constant at every node below sigma_8 0.9
        if p[1] < 0.9:
            sets[p][:, -1] = 0.0
    model = inference.DataModel(NODES, [inference.summarise(x) for x in sets.values()], BOX, name="small sets")
    with pytest.raises(PaperReproError, match=f"model 'small sets' has no spread in component {K - 1} of the data "
                                              "vector at .0.275, 0.8.: its node sets there are too small"):
        inference.posterior(mean((0.27, 0.8))[0], 100, np.ones(K), model)


def test_model_noise_share_and_the_report_flags_a_noisy_model():
    """The share of the posterior variance owed to the model's own noise: small for a model of many maps
    a node, large for a paired model of few (its mean's noise is not averaged over nodes), which the
    report names; the share is 1 - (sd without model noise / sd)^2 exactly."""
    truth = NODES[6]
    shares = {}
    for name, n, paired in (("precise", 4000, False), ("noisy", 60, True)):
        model = model_from(np.random.default_rng(8), n=n, paired=paired)
        post = inference.posterior(mean(truth)[0], 400, np.ones(K), model)
        survey = inference.posterior(mean(truth)[0], 400, np.ones(K), model, model_noise=False)
        r = inference.recovery(post, truth, survey)
        for p in inference.PARAMETERS:
            assert r[p]["model_noise_share"] == pytest.approx(1 - (r[p]["sd_survey"] / r[p]["sd"]) ** 2, abs=1e-12)
        shares[name] = r
    assert max(shares["precise"][p]["model_noise_share"] for p in inference.PARAMETERS) < 0.1
    assert min(shares["noisy"][p]["model_noise_share"] for p in inference.PARAMETERS) > inference.NOISY_MODEL
    text = inference.markdown({"data_vector": ["a"] * K, "margin": 0.25, "nodes": [
        {"name": "held-00", "truth": dict(zip(inference.PARAMETERS, truth)), "models": shares}]})
    assert "own noise for noisy at held-00:" in text and "precise at" not in text
