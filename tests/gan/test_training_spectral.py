"""The spectral term of G's loss (paper_repro.gan.spectral): its target, its value, its gradient, training."""
import numpy as np
import pytest
from scipy.special import digamma

from paper_repro.config import get_preset
from paper_repro.errors import PaperReproError
from paper_repro.gan import runs
from paper_repro.gan.spectral import SpectralTerm, batch_log_power, spectral_loss, target_log_power
from paper_repro.gan.training import train
from tests.helpers import KillAfter, Killed, epoch_weights, smooth_maps


def _complex_modes(n):
    """Mask of the rfft2 modes of an n x n map that are complex (not their own conjugate)."""
    m = np.ones((n, n // 2 + 1), bool)
    for kx in (0, n // 2):
        for ky in (0, n // 2):
            m[kx, ky] = False
    return m


def test_batch_log_power_is_log_mean_power():
    x = np.random.default_rng(0).standard_normal((5, 16, 16))
    want = np.log(np.mean(np.abs(np.fft.rfft2(x)) ** 2, axis=0) + 1e-12)
    np.testing.assert_allclose(batch_log_power(x[..., None]), want, rtol=1e-12)
    with pytest.raises(PaperReproError, match="needs maps"):
        batch_log_power(np.zeros((16, 16)))


def test_target_of_white_noise_is_gamma_expectation():
    # |FFT|^2 of white noise (variance s2) at a complex mode is H*W*s2 times an Exp(1) variable; the mean
    # of B of them is Gamma(B, 1/B), whose log has expectation digamma(B) - log(B)
    n, b, s = 16, 8, 0.3
    maps = (s * np.random.default_rng(1).standard_normal((4096, n, n))).astype(np.float32)
    t = target_log_power(maps, b, n_batches=512, seed=2)   # each map once
    assert t.shape == (n, n // 2 + 1) and t.dtype == np.float32
    want = np.log(n * n * s ** 2) + digamma(b) - np.log(b)
    m = _complex_modes(n)
    # per mode: sd of log Gamma(8) is about 0.37, over 512 batches 0.016
    np.testing.assert_allclose(t[m], want, atol=0.1)
    assert abs(t[m].mean() - want) < 0.005
    # a scale enters the power squared
    np.testing.assert_allclose(target_log_power(maps, b, n_batches=512, seed=2, scale=2.0), t + np.log(4.0),
                               atol=2e-5)


def test_target_needs_a_batch():
    with pytest.raises(PaperReproError, match="at least one batch"):
        target_log_power(np.zeros((3, 8, 8), np.float32), 4)


def test_loss_matches_numpy_and_sits_at_noise_floor_for_real_batches():
    import tensorflow as tf
    n, b = 32, 16
    maps = smooth_maps(512, n, seed=3)
    t = target_log_power(maps, b, n_batches=200, seed=0)
    # the identity on white noise (smooth maps have high-k powers where float32 FFTs lose digits)
    batch = np.random.default_rng(5).standard_normal((b, n, n, 1)).astype(np.float32) * maps.std()
    got = float(spectral_loss(tf.constant(batch), t))
    d = batch_log_power(batch) - t
    d[0, 0] = 0.0
    np.testing.assert_allclose(got, np.sum(d ** 2) / (d.size - 1), rtol=1e-4)
    # real batches: only the estimator's noise, about trigamma(B) = 1/B per mode; a planted
    # checkerboard (the Nyquist mode of a stride-2 layer) raises it
    real = np.mean([float(spectral_loss(tf.constant(maps[i:i + b, ..., None]), t)) for i in range(0, 256, b)])
    assert 0.5 / b < real < 2.0 / b
    checker = 0.05 * maps.std() * (-1.0) ** np.add.outer(np.arange(n), np.arange(n))
    worse = np.mean([float(spectral_loss(tf.constant((maps[i:i + b] + checker)[..., None]), t))
                     for i in range(0, 256, b)])
    assert worse > real + 0.01


def test_gradient_removes_a_planted_checkerboard():
    import tensorflow as tf
    n, b = 32, 16
    rng = np.random.default_rng(4)
    maps = smooth_maps(512, n, seed=4)
    maps = (maps + 0.1 * maps.std() * rng.standard_normal(maps.shape)).astype(np.float32)  # a noise floor
    t = target_log_power(maps, b, n_batches=200, seed=0)
    checker = 0.2 * maps.std() * (-1.0) ** np.add.outer(np.arange(n), np.arange(n))
    x = tf.Variable((maps[:b] + checker).astype(np.float32)[..., None])
    opt = tf.keras.optimizers.Adam(0.01 * float(maps.std()))

    def nyquist_excess():
        return float(batch_log_power(x.numpy())[n // 2, n // 2] - t[n // 2, n // 2])

    before = nyquist_excess()
    for _ in range(300):
        with tf.GradientTape() as tape:
            loss = spectral_loss(x, t)
        opt.apply_gradients([(tape.gradient(loss, x), x)])
    assert before > 3.0 and abs(nyquist_excess()) < 0.5


def test_config_checks_and_schedule():
    assert get_preset("paper").training.spectral_weight == 0.0   # the paper's loss is purely adversarial
    t = get_preset("cpu64").training   # the shipped recipe: the term from epoch 266 to the end (300)
    assert (t.spectral_weight, t.spectral_from_epoch, t.total_epochs) == (20.0, 266, 300)
    with pytest.raises(PaperReproError, match="spectral_weight"):
        get_preset("tiny").replace(spectral_weight=-1.0)
    with pytest.raises(PaperReproError, match="spectral_weight"):
        get_preset("tiny").replace(spectral_weight=float("nan"))
    with pytest.raises(PaperReproError, match="spectral_from_epoch"):
        get_preset("tiny").replace(spectral_from_epoch=0)
    t = get_preset("tiny").replace(spectral_weight=3.0, spectral_from_epoch=3).training
    assert [t.spectral_weight_at(e) for e in range(4)] == [0.0, 0.0, 3.0, 3.0]


def test_target_shape_is_checked():
    with pytest.raises(PaperReproError, match=r"spectral target has shape \(32, 32\), 32\^2 maps need \(32, 17\)"):
        SpectralTerm(np.zeros((32, 32), np.float32), 32)
    assert SpectralTerm(np.zeros((32, 17), np.float32), 32).state_variables == []


def test_training_with_the_term_logs_it_changes_training_and_resumes_exactly(tmp_path, tiny_data):
    preset = get_preset("tiny").replace(checkpoint_every=4, spectral_weight=5.0, spectral_from_epoch=2)
    full = train(tmp_path / "full", preset, tiny_data, seed=7, progress=False)
    plain = train(tmp_path / "plain", get_preset("tiny").replace(checkpoint_every=4), tiny_data, seed=7,
                  progress=False)
    rows = [r.split(",") for r in (full / "spectral.csv").read_text().splitlines()]
    # only the steps with the term on (epoch 2) have a value
    assert rows[0] == ["global_step", "epoch", "weight", "spectral"] and len(rows) == 1 + 6
    assert {r[1] for r in rows[1:]} == {"2"} and {r[2] for r in rows[1:]} == {"5"}
    assert all(float(r[3]) > 0 for r in rows[1:])
    assert not (plain / "spectral.csv").exists()

    # weight 0 in epoch 1: the term is out of the graph, so exactly the weights of a run without it
    for x, y in zip(epoch_weights(full, 1), epoch_weights(plain, 1)):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(epoch_weights(full, 2), epoch_weights(plain, 2)))
    run = tmp_path / "run"
    with pytest.raises(Killed):
        train(run, preset, tiny_data, seed=7, progress=False, callbacks=[KillAfter(10)])
    train(run, resume=True, progress=False)
    a, _ = runs.load_checkpoint(runs.latest_checkpoint(run))
    b, _ = runs.load_checkpoint(runs.latest_checkpoint(full))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert (run / "spectral.csv").read_text() == (full / "spectral.csv").read_text()


def test_cli_sets_the_term_for_new_and_resumed_runs(tmp_path, capsys, tiny_data):
    from paper_repro.cli import main
    out = tmp_path / "run"
    code = main(["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(out),
                 "--spectral-weight", "-1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "spectral_weight must be a finite number >= 0" in err
    assert not (out / "config.json").exists()
    assert main(["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(out), "--epochs", "1",
                 "--seed", "1", "--spectral-weight", "2"]) == 0
    assert runs.read_run_info(out).preset.training.spectral_weight == 2.0
    # a finished run continued with the term from epoch 2 on, as runs/cpu64-spectral
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--spectral-weight", "3",
                 "--spectral-from-epoch", "2"]) == 0
    t = runs.read_run_info(out).preset.training
    assert (t.epochs, t.spectral_weight, t.spectral_from_epoch) == (2, 3.0, 2)
    rows = (out / "spectral.csv").read_text().splitlines()[1:]
    assert {r.split(",")[2] for r in rows if r.split(",")[1] == "1"} == {"2"}
    assert {r.split(",")[2] for r in rows if r.split(",")[1] == "2"} == {"3"}
