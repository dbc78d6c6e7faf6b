"""The main job: certify the shipped reference generator on fresh simulations and draw Figures 1-8.

``paper-repro reproduce`` (no arguments) = simulate the ``reference`` dataset (validation and
auxiliary maps from seeds never used in training) and the model's training set (``cpu`` preset,
seed 0, for the memorisation test), generate maps with ``paper_repro/reference_model``, run the
certification (:mod:`paper_repro.certification`), write ``figures/report.json`` and Figures 1-8.
The same inputs serve ``paper-repro validate --run`` and ``pytest validation/`` with no options.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..errors import PaperReproError

#: the shipped generator (a run directory: config.json + best/generator.keras)
REFERENCE_MODEL = Path(__file__).resolve().parents[1] / "reference_model"
#: where the main job keeps simulated data and results (relative to the working directory)
DATA_ROOT = Path("data")
FIGURES = Path("figures")
#: seed of the generated maps certified by the main job
GENERATION_SEED = 20190101


def ensure_dataset(directory: Path, preset: str, progress: bool = True) -> Path:
    """Simulate dataset ``preset`` into ``directory`` unless a complete one is already there."""
    from ..maps.datasets import MANIFEST, build_dataset

    if not (directory / MANIFEST).exists():
        if progress:
            print(f"simulating the {preset!r} dataset into {directory} ...", flush=True)
        build_dataset(directory, preset, progress=progress)
    return directory


def generated_maps(run: str | os.PathLike, n: int, seed: int, out: Path, checkpoint=None,
                   progress: bool = True) -> Path:
    """Generate n maps of ``run`` into ``out`` (.npy), unless that exact file exists already."""
    from ..gan.runs import generate_to_file

    from ..maps.io import sha256_file
    from ..gan.runs import generator_path

    stamp = out.with_suffix(".json")
    want = {"run": str(Path(run).resolve()), "n": n, "seed": seed, "checkpoint": checkpoint,
            "generator_sha256": sha256_file(generator_path(run, checkpoint))}
    if out.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return out
    if progress:
        print(f"generating {n} maps with {run} (seed {seed}) ...", flush=True)
    generate_to_file(run, out, n=n, seed=seed, checkpoint=checkpoint)
    from ..gan.runs import write_json
    write_json(stamp, want)
    return out


def default_inputs(progress: bool = True, n: int | None = None, *, run: str | os.PathLike | None = None,
                   data_root: str | os.PathLike | None = None, reference_preset: str = "reference",
                   training_preset: str = "cpu"):
    """(run, generated .npy, validation .npy, auxiliary .npy, training .npy) of the main job.

    Defaults: the shipped model; ``data/reference`` (validation and auxiliary maps from seeds never
    used in training) and ``data/cpu`` (the model's training set, for the memorisation test),
    simulated on first use; n = as many generated maps as validation maps.
    """
    from ..maps.datasets import open_split

    run = Path(run) if run is not None else REFERENCE_MODEL
    root = Path(data_root) if data_root is not None else DATA_ROOT
    if not (run / "config.json").exists():
        raise PaperReproError(f"{run}: the generator to certify is missing (config.json)")
    ref = ensure_dataset(root / reference_preset, reference_preset, progress)
    train = ensure_dataset(root / training_preset, training_preset, progress)
    _check_training_data(run, train)
    n = n or len(open_split(ref, "validation"))
    gen = generated_maps(run, n, GENERATION_SEED, ref / "generated.npy", progress=progress)
    return run, gen, ref / "validation.npy", ref / "auxiliary.npy", train / "train.npy"


def _check_training_data(run: Path, dataset: Path) -> None:
    """The simulated training set must be the one the model was trained on (memorisation test).

    Bit-identical (SHA-256) passes at once. Rebuilt on another CPU the same seed rounds differently
    in the last bits, so otherwise the set must match the recorded :func:`~paper_repro.data.fingerprint`
    to :data:`~paper_repro.data.FINGERPRINT_TOLERANCE`.
    """
    from ..maps.datasets import FINGERPRINT_TOLERANCE, fingerprint, fingerprint_difference, load_manifest, open_split

    record = run / "training_data.json"
    if not record.exists():
        return
    try:
        want = json.loads(record.read_text())
        want_sha = want["train_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PaperReproError(f"{record}: not a training-data record ({type(exc).__name__}: {exc})") from None
    manifest = load_manifest(dataset)
    found = manifest["splits"].get("train", {}).get("sha256", "none (no train split)")
    if want_sha == found:
        return
    rebuild = f"rebuild it with 'paper-repro simulate --out {dataset} --overwrite'"
    if "train_fingerprint" not in want:
        raise PaperReproError(f"{dataset}/train.npy has SHA-256 {found[:12]}..., but {run.name} was trained on "
                              f"{want_sha[:12]}...: {rebuild}")
    have = fingerprint(open_split(dataset, "train", check_finite=False, manifest=manifest))
    try:
        diff = fingerprint_difference(want["train_fingerprint"], have)
    except (KeyError, TypeError, ValueError) as exc:
        raise PaperReproError(f"{record}: train_fingerprint is malformed ({type(exc).__name__}: {exc})") from None
    if not diff <= FINGERPRINT_TOLERANCE:
        how = (f"shape {tuple(have['shape'])}, trained on {tuple(want['train_fingerprint']['shape'])}"
               if math.isinf(diff) else f"block statistics differ by {diff:.2g} sd")
        raise PaperReproError(f"{dataset}/train.npy is not the set {run.name} was trained on ({how}; SHA-256 "
                              f"{found[:12]}... vs {want_sha[:12]}...): {rebuild}")


def reproduce(out: str | os.PathLike = FIGURES, *, figures: bool = True, progress: bool = True,
              config=None, **inputs) -> int:
    """The main job; returns 0 when the shipped model passes every criterion, 1 otherwise.

    ``config``: a :class:`~paper_repro.config.CertificationConfig` (default: the documented one);
    ``inputs`` go to :func:`default_inputs` (another run or data root, for tests).
    """
    from . import certification
    from ..gan.models import flops_per_map
    from ..gan.runs import load_generator

    out = Path(out)
    run, gen, val, aux, train = default_inputs(progress, **inputs)
    inputs = certification.prepare(gen, val, aux, train, config=config)
    report = certification.certify(inputs, config, progress=progress)
    model, preset = load_generator(run)
    report.speed = certification.generation_speed(
        model, preset.model.latent_dim, flops_per_map=flops_per_map(preset.model)["generator"])
    out.mkdir(parents=True, exist_ok=True)
    report.write(out / "report.json")
    print(report.summary())
    print(f"generation: {report.speed['maps_per_s']:.0f} maps/s on this machine "
          f"({100 * report.speed.get('efficiency', float('nan')):.1f}% of a measured matmul)")
    print(f"report: {out / 'report.json'}")
    if figures:
        from .figures import make_figures
        if progress:
            print("figures 1-8 ...", flush=True)
        make_figures(run, val.parent, out, progress=progress)
        print(f"figures: {out}/fig*.png")
    return 0 if report.passed else 1
