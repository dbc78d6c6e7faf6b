"""Run directories: layout, atomic checkpoints, resume, per-epoch and best generators, generation.

Layout of a run directory::

    config.json                 resolved preset, data paths, seed (written once, atomically)
    checkpoints/step-NNNNNNNNN/ full training state (state.npz + meta.json); the last KEEP kept
    generators/epoch-NNNN.weights.h5   generator weights after each epoch
    generator.keras             latest generator, Keras native format
    best/generator.keras        generator with the best selection score, and best/score.json
    candidates/step-NNNNNNNNN.weights.h5   the selection_candidates lowest-scoring snapshots of
                                the selection epochs (when the preset keeps more than one), for
                                ``paper-repro pick`` to calibrate and compare
    log.csv                     metrics every log_every steps; selection.csv (selection scores),
                                spectral.csv (a loss term's value), discriminator.csv (monitor)

A checkpoint directory is written under a temporary name and renamed into place when complete, so
a run killed during a save resumes from the previous checkpoint.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ..config import ConditionalPreset, Preset
from ..errors import PaperReproError
from ..maps.io import NpyWriter, atomic_path, shown_path
from . import (
    calibration,  # also registers the calibration layer, so .keras files load
    conditional_calibration,  # noqa: F401  (registers the conditional calibration layer)
)
from .conditional import build_conditional_generator, generation_inputs
from .latents import generate
from .models import build_generator

#: full-state checkpoints kept on disk (older ones are deleted after a newer one is complete)
KEEP = 2


@dataclass
class RunInfo:
    """What config.json of a run holds."""

    preset: Preset
    data: str | None
    development: str | None
    seed: int

    def to_json(self) -> str:
        return json.dumps({"preset": self.preset.to_dict(), "data": self.data,
                           "development": self.development, "seed": self.seed}, indent=2)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def write_run_info(run: Path, info: RunInfo) -> None:
    run.mkdir(parents=True, exist_ok=True)
    with atomic_path(run / "config.json") as tmp:
        tmp.write_text(info.to_json())


def read_run_info(run: str | os.PathLike) -> RunInfo:
    run = Path(run)
    path = run / "config.json"
    if not run.is_dir():
        raise PaperReproError(f"{run}: no such run directory")
    if not path.exists():
        raise PaperReproError(f"{path}: missing; {run} is not a paper_repro run directory")
    try:
        d = json.loads(path.read_text())
        return RunInfo(Preset.from_dict(d["preset"]), d.get("data"), d.get("development"), int(d["seed"]))
    except PaperReproError as exc:
        raise PaperReproError(f"{path}: {exc}") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise PaperReproError(f"{path}: unreadable run configuration ({exc})") from None


# ------------------------------------------------------------------------------- checkpoints
def _ckpt_name(step: int) -> str:
    return f"step-{step:09d}"


def save_checkpoint(run: Path, state: list[np.ndarray], meta: dict) -> Path:
    """Write a full-state checkpoint atomically (temporary directory, then rename) and prune old ones."""
    ckdir = run / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    final = ckdir / _ckpt_name(int(meta["global_step"]))
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=ckdir))
    try:
        with open(tmp / "state.npz", "wb") as fh:
            np.savez(fh, *state)
            fh.flush()
            os.fsync(fh.fileno())
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=_json_default))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(run)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary directories are ignored)."""
    ckdir = Path(run) / "checkpoints"
    if not ckdir.is_dir():
        return []
    return sorted(p for p in ckdir.iterdir()
                  if p.is_dir() and p.name.startswith("step-") and (p / "meta.json").exists())


def load_checkpoint(path: Path) -> tuple[list[np.ndarray], dict]:
    try:
        meta = json.loads((path / "meta.json").read_text())
        with np.load(path / "state.npz", allow_pickle=False) as f:
            state = [f[f"arr_{i}"] for i in range(len(f.files))]
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise PaperReproError(f"{path}: unreadable checkpoint ({exc})") from None
    return state, meta


def latest_checkpoint(run: Path) -> Path | None:
    cks = list_checkpoints(run)
    return cks[-1] if cks else None


def clean_partial(run: Path) -> None:
    """Remove temporary files and directories a killed run left behind."""
    for d in [run, run / "checkpoints", run / "generators", run / "best"]:
        if d.is_dir():
            for p in d.iterdir():
                if p.name.startswith(".tmp-") or p.name.endswith(".partial"):
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


# -------------------------------------------------------------------------------- generators
def save_generator(generator, path: Path) -> None:
    """Save a Keras model (``.keras``) or its weights (``.weights.h5``) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else ".keras"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        if suffix == ".keras":
            generator.save(tmp)
        else:
            generator.save_weights(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def candidate_path(run: str | os.PathLike, global_step: int) -> Path:
    """Where a run keeps the selection snapshot taken after ``global_step`` steps."""
    return Path(run) / "candidates" / f"step-{global_step:09d}.weights.h5"


def list_candidates(run: str | os.PathLike) -> dict[int, Path]:
    """{global step: path} of the selection snapshots kept in a run's ``candidates/``."""
    found = {}
    for f in sorted((Path(run) / "candidates").glob("step-*.weights.h5")):
        if m := re.fullmatch(r"step-(\d+)\.weights\.h5", f.name):
            found[int(m.group(1))] = f
    return found


def selection_scores(run: str | os.PathLike) -> dict[int, tuple[int, float]]:
    """{global step: (epoch, score)} of the training-time selection scores in ``selection.csv``."""
    path = Path(run) / "selection.csv"
    out = {}
    if path.exists():
        with open(path, newline="") as fh:
            for line, row in enumerate(list(csv.reader(fh))[1:], start=2):
                if not row:
                    continue
                try:
                    out[int(row[0])] = (int(row[1]), float(row[2]))
                except (IndexError, ValueError):
                    raise PaperReproError(f"{path}, line {line}: expected global_step,epoch,score, "
                                          f"got {','.join(row)!r}") from None
    return out


def generator_path(run: str | os.PathLike, checkpoint: str | int | None = None) -> Path:
    """The generator file of a run: ``best`` (default when present), ``last``, an epoch number, or
    ``step-N``, the selection snapshot kept in ``candidates/`` after N steps."""
    run = Path(run)
    if checkpoint is None:
        checkpoint = "best" if (run / "best" / "generator.keras").exists() else "last"
    checkpoint = str(checkpoint)
    if checkpoint == "best":
        path = run / "best" / "generator.keras"
    elif checkpoint == "last":
        path = run / "generator.keras"
    elif checkpoint.startswith("step-"):
        try:
            step = int(checkpoint[5:])
        except ValueError:
            raise PaperReproError(f"--checkpoint step-N needs an integer step N, got {checkpoint!r}") from None
        path = candidate_path(run, step)
        if not path.exists():
            raise PaperReproError(f"{path}: no such candidate in run {run} (kept steps: "
                                  f"{', '.join(map(str, list_candidates(run))) or 'none'})")
    else:
        try:
            epoch = int(checkpoint)
        except ValueError:
            raise PaperReproError(
                f"--checkpoint must be an epoch number, 'step-N', 'last' or 'best', got {checkpoint!r}") from None
        path = run / "generators" / f"epoch-{epoch:04d}.weights.h5"
    if not path.exists():
        have = sorted(p.name for p in (run / "generators").glob("epoch-*.weights.h5"))
        raise PaperReproError(f"{path}: no such generator in run {run} (available epochs: "
                              f"{', '.join(h[6:10] for h in have) or 'none'})")
    return path


def load_generator(run: str | os.PathLike, checkpoint: str | int | None = None):
    """(generator model, preset) of a run; see :func:`generator_path` for ``checkpoint``."""
    info = read_run_info(run)
    path = generator_path(run, checkpoint)
    try:
        if path.name.endswith(".keras"):
            model = keras.saving.load_model(path, compile=False)
        else:
            build = build_conditional_generator if isinstance(info.preset, ConditionalPreset) else build_generator
            model = build(info.preset)
            model.load_weights(path)
    except (OSError, ValueError) as exc:
        raise PaperReproError(f"{path}: cannot load generator ({exc})") from None
    return model, info.preset


# ------------------------------------------------------------------------- calibrated runs
def check_output_run(run: str | os.PathLike, out: str | os.PathLike) -> None:
    """Refuse an output run inside ``run`` or an existing non-empty directory (before any work)."""
    run, out = Path(run), Path(out)
    if out.resolve() == run.resolve() or run.resolve() in out.resolve().parents:
        raise PaperReproError(f"{out}: write the calibrated run to a new directory outside {run}")
    if out.exists() and any(out.iterdir()):
        raise PaperReproError(f"{out}: output directory exists and is not empty")


def write_calibrated_run(run: str | os.PathLike, out: str | os.PathLike, model, source: Path,
                         info: calibration.CalibrationFit, extra: dict | None = None) -> None:
    """Write run ``out`` atomically: ``run``'s record, ``model`` (calibrated generator of ``source``)
    as ``best/generator.keras``, the fit in ``best/calibration.json`` and ``extra`` ({name: JSON
    record}) in ``best/``; a killed write leaves no ``out``."""
    run, out = Path(run), Path(out)
    check_output_run(run, out)
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    # the source's best/ (its score.json) describes another generator unless best is what was calibrated
    skip = ["checkpoints", "candidates", "generators", "averaged", "generator.keras"]   # averaged/: older runs
    if source != run / "best" / "generator.keras":
        skip.append("best")
    try:
        shutil.copytree(run, tmp, ignore=shutil.ignore_patterns(*skip))
        save_generator(model, tmp / "best" / "generator.keras")
        write_json(tmp / "best" / "calibration.json",
                   {"source": shown_path(run), "checkpoint": str(source.relative_to(run)), **info.to_dict()})
        for name, record in (extra or {}).items():
            write_json(tmp / "best" / name, record)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def calibrate_run(run: str | os.PathLike, out: str | os.PathLike, real_maps: np.ndarray, *,
                  n_maps: int = 16384, seed: int = calibration.CALIBRATION_SEED, checkpoint: str | int | None = None,
                  progress: bool = True) -> calibration.CalibrationFit:
    """Write run ``out``: a copy of run ``run``'s record with its generator (``checkpoint`` as in
    :func:`generator_path`; default ``best`` if present, else ``last``) calibrated,
    as ``best/generator.keras``, and the fit in ``best/calibration.json``. Calibrating each kept
    candidate (``step-N``) lets candidates be compared as they would ship."""
    check_output_run(run, out)
    generator, preset = load_generator(run, checkpoint)
    pattern, gain, info = calibration.fit(generator, real_maps, data_scale=preset.training.data_scale,
                              n_maps=n_maps, seed=seed, progress=progress)
    write_calibrated_run(run, out, calibration.calibrated(generator, pattern, gain), generator_path(run, checkpoint), info)
    return info



# -------------------------------------------------------------------------------- generation
def generate_maps(run: str | os.PathLike, n: int, seed: int, checkpoint=None, batch_size: int = 256,
                  params=None, strict: bool = False) -> np.ndarray:
    """Generate n maps from a run into memory (N, H, W); ``params`` (Omega_m, sigma_8) for a
    conditional run (``strict``: inside the trained box)."""
    model, preset = load_generator(run, checkpoint)
    y = generation_inputs(preset, params, strict=strict)
    return np.concatenate(list(generate(model, n, seed, batch_size=batch_size,
                                        data_scale=preset.training.data_scale, params=y)))


def generate_to_file(run: str | os.PathLike, out: str | os.PathLike, *, n: int, seed: int,
                     checkpoint=None, batch_size: int = 256, params=None, strict: bool = False) -> Path:
    """Stream n generated maps into ``out`` (.npy, N x H x W float32); memory does not grow with n."""
    out = Path(out)
    if n <= 0:
        raise PaperReproError(f"--n must be positive, got {n}")
    if out.suffix != ".npy":
        raise PaperReproError(f"{out}: output must be a .npy file")
    model, preset = load_generator(run, checkpoint)
    y = generation_inputs(preset, params, strict=strict)
    size = preset.model.image_size
    with NpyWriter(out, n, size) as writer:
        for maps in generate(model, n, seed, batch_size=batch_size,
                             data_scale=preset.training.data_scale, progress=True, params=y):
            writer.write(maps)
    return out
