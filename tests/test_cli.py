"""paper-repro train / generate through the command line: determinism and bad input."""
import os
import subprocess
import sys

import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.gan import runs


def _weights(run):
    state, _ = runs.load_checkpoint(runs.latest_checkpoint(run))
    return state


def test_train_is_deterministic_with_seed_and_resumes(tmp_path, tiny_data):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(a), "--seed", "5"]) == 0
    assert main(["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(b), "--seed", "5",
                 "--epochs", "1"]) == 0
    assert main(["train", "--out", str(b), "--resume", "--epochs", "2"]) == 0
    assert main(["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(c), "--seed", "6"]) == 0
    for x, y in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(_weights(a), _weights(c)))


def test_train_augment_from_epoch_is_recorded_and_kept_on_resume(tmp_path, tiny_data, capsys):
    run = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(run), "--seed", "5",
                 "--epochs", "1", "--augment-from-epoch", "2"]) == 0
    assert runs.read_run_info(run).preset.training.augment_from_epoch == 2
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--augment-from-epoch", "1"]) == 2
    err = capsys.readouterr().err
    assert "augment_from_epoch 2; a resumed run keeps it" in err and "Traceback" not in err
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--augment-from-epoch", "2"]) == 0
    assert runs.read_run_info(run).preset.training.epochs == 2
    with pytest.raises(SystemExit) as exc:
        main(["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(tmp_path / "x"),
              "--augment-from-epoch", "-1"])
    assert exc.value.code == 2
    assert "expected a non-negative integer, got -1" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, tiny_data):
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(run),
                 "--seed", "1", "--epochs", "1"]) == 0
    return run


def test_generate_same_seed_same_maps(tmp_path, cli_run):
    for name in ("x", "y"):
        assert main(["generate", "--run", str(cli_run), "--n", "33", "--seed", "9",
                     "--out", str(tmp_path / f"{name}.npy"), "--batch-size", "8"]) == 0
    x, y = np.load(tmp_path / "x.npy"), np.load(tmp_path / "y.npy")
    assert x.shape == (33, 32, 32) and x.dtype == np.float32
    np.testing.assert_array_equal(x, y)


def _bad(tmp_path, name, arr):
    p = tmp_path / name
    np.save(p, arr)
    return str(p)


@pytest.mark.parametrize("case, match", [
    ("missing", "no such file"),
    ("empty", "file is empty"),
    ("truncated", "truncated .npy file: shape \\(40, 32, 32\\) float32 needs 163840 bytes of data, found"),
    ("nan", "map 2 contains NaN or inf"),
    ("rank", "expected maps of shape \\(N, H, W\\)"),
    ("size", "expected 32x32 maps, found 16x16"),
    ("dtype", "expected float32 or float64 maps, found dtype int64"),
    ("preset", "unknown preset 'nope'"),
])
def test_train_bad_input_one_line_exit_2(tmp_path, capsys, tiny_data, case, match):
    data = {
        "missing": str(tmp_path / "missing.npy"),
        "nan": _bad(tmp_path, "nan.npy", np.where(np.arange(40)[:, None, None] == 2, np.nan,
                                                    np.zeros((40, 32, 32), np.float32)).astype(np.float32)),
        "rank": _bad(tmp_path, "rank.npy", np.zeros((40, 32), np.float32)),
        "size": _bad(tmp_path, "size.npy", np.zeros((40, 16, 16), np.float32)),
        "dtype": _bad(tmp_path, "dtype.npy", np.zeros((40, 32, 32), np.int64)),
    }.get(case, str(tiny_data))
    if case == "empty":
        (tmp_path / "empty.npy").write_bytes(b"")
        data = str(tmp_path / "empty.npy")
    if case == "truncated":
        full = np.zeros((40, 32, 32), np.float32)
        np.save(tmp_path / "t.npy", full)
        raw = (tmp_path / "t.npy").read_bytes()
        (tmp_path / "t.npy").write_bytes(raw[: len(raw) // 2])
        data = str(tmp_path / "t.npy")
    preset = "nope" if case == "preset" else "tiny"
    out = tmp_path / "run"
    code = main(["train", "--preset", preset, "--data", data, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("paper-repro train: error: ")
    import re
    assert re.search(match, err), err


@pytest.mark.parametrize("args, match", [
    (["--n", "0"], "expected a positive integer"),
    (["--n", "4", "--checkpoint", "7"], "no such generator"),
    (["--n", "4", "--checkpoint", "banana"], "epoch number, 'step-N', 'last' or 'best'"),
])
def test_generate_bad_input_leaves_nothing(tmp_path, capsys, cli_run, args, match):
    out = tmp_path / "g.npy"
    with pytest.raises(SystemExit) if match.startswith("expected a positive") else _nullctx():
        code = main(["generate", "--run", str(cli_run), "--seed", "1", "--out", str(out)] + args)
        assert code == 2
    err = capsys.readouterr().err
    assert match in err
    assert list(tmp_path.iterdir()) == []


def test_generate_missing_run(tmp_path, capsys):
    assert main(["generate", "--run", str(tmp_path / "nope"), "--n", "2", "--seed", "0",
                 "--out", str(tmp_path / "g.npy")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_interrupted_generation_leaves_no_file(tmp_path, cli_run, monkeypatch):
    from paper_repro.gan import runs as r
    real = r.generate

    def dying(*a, **k):
        for i, maps in enumerate(real(*a, **k)):
            if i == 2:
                raise KeyboardInterrupt
            yield maps

    monkeypatch.setattr(r, "generate", dying)
    code = main(["generate", "--run", str(cli_run), "--n", "40", "--seed", "1",
                 "--out", str(tmp_path / "g.npy"), "--batch-size", "4"])
    assert code == 130
    assert list(tmp_path.iterdir()) == []


def test_console_script_exit_code_and_single_line(tmp_path):
    # TensorFlow's start-up lines (absl notice, CUDA probes) must not bury the one-line error
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    p = subprocess.run([sys.executable, "-m", "paper_repro", "train", "--preset", "tiny", "--data",
                        str(tmp_path / "none.npy"), "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"paper-repro train: error: {tmp_path / 'none.npy'}: no such file"]


def test_version(capsys):
    import paper_repro

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"paper-repro {paper_repro.__version__}"


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@pytest.mark.parametrize("command", [
    ["generate", "--run", "R", "--n", "2", "--out", "g.npy"],
    ["validate", "--run", "R"],
    ["train", "--out", "R", "--resume"],
    ["simulate", "--out", "D"],
])
def test_a_negative_seed_is_a_one_line_error(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)          # the relative paths above would be written here
    with pytest.raises(SystemExit) as exc:
        main(command + ["--seed", "-1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "a seed must be a non-negative integer, got -1" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, match", [
    (["--devices", "64"], "--devices 64: only 1 tensorflow device"),
    (["--devices", "0"], "expected a positive integer"),
    (["--precision", "float8"], "invalid choice: 'float8'"),
])
def test_train_bad_devices_or_precision_one_line_exit_2(tmp_path, capsys, tiny_data, args, match):
    out = tmp_path / "run"
    try:    # argparse's own errors exit through SystemExit(2), ours return 2
        code = main(["train", "--preset", "tiny", "--data", str(tiny_data), "--out", str(out)] + args)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and match in err.splitlines()[-1] and "Traceback" not in err, err
    assert not out.exists()
