"""Weight averaging of a run's late generators: the mean, the saved file, and its place in select."""
import dataclasses
import json

import numpy as np
import pytest

from paper_repro.gan import runs
from paper_repro.gan.averaging import average_run, average_weights
from paper_repro.config import get_preset
from paper_repro.errors import PaperReproError
from paper_repro.gan.models import build_generator, recalibrate_batch_norm
from paper_repro.evaluation.selection import rescore_epochs
from paper_repro.gan.training import train


@pytest.fixture(scope="module")
def three_epochs(tmp_path_factory, tiny_data):
    """A tiny run with epoch generators 1-3 and no selection epochs (copied per test)."""
    preset = get_preset("tiny").replace(epochs=3, selection_epochs=0)
    return train(tmp_path_factory.mktemp("avg") / "run", preset, tiny_data, seed=2, progress=False)


@pytest.fixture
def run(three_epochs, tmp_path):
    import shutil
    return shutil.copytree(three_epochs, tmp_path / "run")


def _epoch_weights(run, e):
    g = build_generator(runs.read_run_info(run).preset)
    g.load_weights(run / "generators" / f"epoch-{e:04d}.weights.h5")
    return g


def test_average_weights_is_the_elementwise_mean():
    a, b, c = (build_generator("tiny", seed=s) for s in (1, 2, 3))
    mean = average_weights([a, b, c])
    for m, wa, wb, wc in zip(mean, a.get_weights(), b.get_weights(), c.get_weights()):
        assert m.dtype == np.float32
        np.testing.assert_allclose(m, (wa.astype(np.float64) + wb + wc) / 3, rtol=1e-6, atol=1e-7)
    with pytest.raises(PaperReproError, match="no generators"):
        average_weights([])
    with pytest.raises(PaperReproError, match="different architectures"):
        average_weights([a, build_generator(dataclasses.replace(get_preset("tiny").model, base_filters=4))])


def test_average_run_saves_the_mean_with_precise_batch_norm(run):
    r = average_run(run, first_epoch=2, progress=False)
    assert r["epochs"] == [2, 3] and r["steps"] == [] and r["members"] == 2
    members = json.loads((run / "averaged" / "members.json").read_text())
    assert members["epochs"] == [2, 3] and "precise batch norm" in members["method"]
    got, _ = runs.load_generator(run, "averaged")
    e2, e3 = _epoch_weights(run, 2), _epoch_weights(run, 3)
    for v, a, b in zip(got.trainable_weights, e2.trainable_weights, e3.trainable_weights):
        np.testing.assert_allclose(v.numpy(), (a.numpy().astype(np.float64) + b.numpy()) / 2,
                                   rtol=1e-6, atol=1e-7)
    # batch-norm statistics are those of the averaged weights, not the members' mean
    info = runs.read_run_info(run)
    want = build_generator(info.preset)
    want.set_weights(average_weights([e2, e3]))
    recalibrate_batch_norm(want, info.preset.training.bn_recalibration, info.preset.training.batch_size,
                           seed=info.seed)
    for x, y in zip(got.non_trainable_weights, want.non_trainable_weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-6, atol=1e-7)
    mean_of_stats = [(a.numpy() + b.numpy()) / 2 for a, b in zip(e2.non_trainable_weights, e3.non_trainable_weights)]
    assert any(not np.allclose(x.numpy(), m) for x, m in zip(got.non_trainable_weights, mean_of_stats))


def test_average_run_needs_two_generators(run):
    with pytest.raises(PaperReproError, match=r"1 generator\(s\) in epochs 3\.\.end; averaging needs at least 2"):
        average_run(run, first_epoch=3, progress=False)
    with pytest.raises(PaperReproError, match="saved epochs: 1, 2, 3"):
        average_run(run, first_epoch=7, progress=False)
    assert not (run / "averaged").exists()


def test_select_ranks_the_averaged_generator(run):
    average_run(run, first_epoch=1, last_epoch=2, progress=False)
    avg, _ = runs.load_generator(run, "averaged")
    target = float(np.mean(avg.trainable_weights[0].numpy()))

    def scorer(model):   # lowest for the averaged weights, by their first kernel's mean
        return 0.5 if np.isclose(float(np.mean(model.trainable_weights[0].numpy())), target, rtol=1e-6) else 2.0

    r = rescore_epochs(run, scorer=scorer, progress=False)
    assert r["averaged_score"] == 0.5 and r["winner"] == "averaged" and r["replaced"]
    best = json.loads((run / "best" / "score.json").read_text())
    assert best["score"] == 0.5 and "weight average" in best["source"]
    assert best["averaged"]["epochs"] == [1, 2]
    chosen, _ = runs.load_generator(run, "best")
    for x, y in zip(chosen.trainable_weights, avg.trainable_weights):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_average_cli(run, capsys):
    from paper_repro.cli import main
    assert main(["average", "--run", str(run), "--from-epoch", "1", "--quiet"]) == 0
    out = capsys.readouterr().out.strip()
    assert "mean of 3 generators (epochs 1-3)" in out and (run / "averaged" / "generator.keras").exists()


@pytest.mark.parametrize("extra, message", [
    (["--from-epoch", "3"], "averaging needs at least 2"),
    (["--from-epoch", "3", "--to-epoch", "2"], "--to-epoch 2 is before --from-epoch 3"),
])
def test_average_cli_errors_are_one_line(run, capsys, extra, message):
    from paper_repro.cli import main
    assert main(["average", "--run", str(run), "--quiet"] + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not (run / "averaged").exists()


def test_score_names_a_missing_average(run):
    with pytest.raises(PaperReproError, match="no averaged generator; make one with paper-repro average"):
        runs.generator_path(run, "averaged")
