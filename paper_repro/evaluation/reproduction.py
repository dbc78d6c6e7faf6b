"""The main job, and the one path from map files to a verdict that every entry point takes.

:func:`job_inputs` resolves the map sets once, the same way for ``paper-repro validate``,
``paper-repro reproduce``, ``make-figures`` and ``pytest validation/``: the generator (default: the
shipped model in ``paper_repro/reference_model``); the validation and auxiliary maps (default: the
``reference`` dataset, seeds never used in training, simulated once into ``data/reference``); the
training maps of the memorisation test (default: the run's training set, rebuilt from the dataset
preset its ``training_data.json`` names and checked against its fingerprint, or the file its
``config.json`` names); and the generated maps (made once: as many as validation maps, latent seed
20190101, kept beside the simulations). Before it simulates or generates anything it says what,
where and how big. :func:`reproduce` certifies those maps once and draws Figures 1-8 from the same
certified sample and its statistics, so ``figures/report.json`` and ``figures/captions.json``
describe one set of maps; :func:`draw_figures` is ``make-figures``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..config import DATASET_PRESETS, CertificationConfig, DatasetConfig, get_dataset_preset
from ..errors import PaperReproError
from ..maps.datasets import (
    FINGERPRINT_TOLERANCE,
    MANIFEST,
    build_dataset,
    fingerprint,
    fingerprint_difference,
    load_manifest,
    open_split,
)
from ..maps.ingest import is_fits_input, stack_maps
from ..maps.io import open_maps, sha256_file
from . import certification
from .architecture import check_run
from .certification import Inputs, Report, shown_path

#: the shipped generator (a run directory: config.json + best/generator.keras)
REFERENCE_MODEL = Path(__file__).resolve().parents[1] / "reference_model"
#: where the main job keeps simulated data and generated maps (relative to the working directory)
DATA_ROOT = Path("data")
FIGURES = Path("figures")
#: seed of the generated maps certified by the main job
GENERATION_SEED = 20190101
#: the dataset preset of the certification's validation and auxiliary maps (seeds never trained on)
REFERENCE_PRESET = "reference"


@dataclass(frozen=True)
class JobInputs:
    """The map files of one certification, and how the generated maps were made."""

    generated: Path
    validation: Path
    auxiliary: Path | None
    training: Path | None
    run: Path | None = None          # the generator's run (None: generated maps given as a file)
    checkpoint: str | None = None
    seed: int | None = None          # latent seed of the generated maps (None: given as a file)
    angle_deg: float | None = None   # side of the maps in degrees when given as FITS maps (ANGLE)
    #: the run's generator against its preset (:func:`.architecture.compare`; None without a run)
    architecture: dict | None = None


def dataset_bytes(config: str | DatasetConfig) -> tuple[int, int]:
    """(maps, bytes on disk) of a dataset preset: every split's crops as float32 plus their index rows."""
    cfg = get_dataset_preset(config)
    n = sum(cfg.n_crops(split) for split, _ in cfg.splits.items())
    return n, n * (4 * cfg.crop_size ** 2 + 3 * 4)


def ensure_dataset(directory: str | os.PathLike, preset: str | DatasetConfig, *, progress: bool = True) -> Path:
    """Simulate dataset ``preset`` into ``directory`` unless a complete one is there; say first what,
    where and how big (also without ``progress``, which only turns off the progress bar)."""
    directory = Path(directory)
    if not (directory / MANIFEST).exists():
        cfg = get_dataset_preset(preset)
        n, size = dataset_bytes(cfg)
        print(f"simulating the {cfg.name!r} dataset: {n:,} maps of {cfg.crop_size}^2 px, about "
              f"{size / 1e6:,.0f} MB, into {shown_path(directory)}/ (once: later runs reuse it; "
              f"--data-root DIR puts it elsewhere)", flush=True)
        build_dataset(directory, cfg, progress=progress)
    return directory


def dataset_preset_for(preset) -> str:
    """The dataset preset whose crops have a model preset's map size and angle ("reference" first:
    its seeds were never used in training)."""
    for name, cfg in sorted(DATASET_PRESETS.items(), key=lambda kv: kv[0] != REFERENCE_PRESET):
        if cfg.crop_size == preset.model.image_size and math.isclose(
                cfg.crop_angle_deg, preset.angle_deg, rel_tol=1e-3):
            return name
    raise PaperReproError(
        f"no dataset preset makes {preset.model.image_size}^2 maps of {preset.angle_deg:.4g} deg (the "
        f"run's preset {preset.name!r}); simulate a dataset and pass --reference or --data")


def check_geometry(dataset: Path, preset) -> None:
    """The dataset's maps must have the run's size and angle (one-line error otherwise)."""
    manifest = load_manifest(dataset)
    size, angle = int(manifest["crop_size"]), float(manifest["angle_deg"])
    if size != preset.model.image_size:
        raise PaperReproError(f"{dataset}: holds {size}^2 maps, the run makes {preset.model.image_size}^2 "
                              f"maps (preset {preset.name!r})")
    if not math.isclose(angle, preset.angle_deg, rel_tol=1e-3):
        raise PaperReproError(f"{dataset}: maps are {angle:.5g} deg on a side, the run's maps are "
                              f"{preset.angle_deg:.5g} deg (preset {preset.name!r})")


def generated_maps(run: str | os.PathLike, n: int, seed: int, out: Path, checkpoint=None) -> Path:
    """Generate n maps of ``run`` into ``out`` (.npy), unless that exact file exists already (a stamp
    beside it records run, n, seed, checkpoint and the generator file's SHA-256)."""
    from ..gan.runs import generate_to_file, generator_path, write_json  # keras

    stamp = out.with_suffix(".json")
    want = {"run": shown_path(run), "n": n, "seed": seed, "checkpoint": checkpoint,
            "generator_sha256": sha256_file(generator_path(run, checkpoint))}
    if out.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return out
    print(f"generating {n:,} maps with {shown_path(run)} (latent seed {seed}) into {shown_path(out)}",
          flush=True)
    generate_to_file(run, out, n=n, seed=seed, checkpoint=checkpoint)
    write_json(stamp, want)
    return out


@contextlib.contextmanager
def job_inputs(*, generated=None, run=None, reference=None, auxiliary=None, training=None,
               angle_deg: float | None = None, progress: bool = True, **kw) -> Iterator[JobInputs]:
    """Resolve the map files of a certification once (:func:`resolve_inputs`); yields :class:`JobInputs`.

    ``generated``/``reference``/``auxiliary``/``training`` may also be FITS maps (a file or a folder,
    one map a file; ``ANGLE`` in degrees, or ``angle_deg`` where missing): they are stacked into a
    temporary folder (:func:`~paper_repro.maps.ingest.stack_maps`) and their angle is the
    :attr:`JobInputs.angle_deg` the statistics bin with; it must agree with the other sets' manifests
    and the run's preset.
    """
    given = {"generated": generated, "reference": reference, "auxiliary": auxiliary, "training": training}
    fits = {k: v for k, v in given.items() if is_fits_input(v)}
    if not fits:
        with resolve_inputs(**given, run=run, progress=progress, **kw) as src:
            yield src
        return
    with tempfile.TemporaryDirectory(prefix="paper-repro-fits-") as tmp:
        paths, angle = stack_maps(fits, tmp, angle_deg=angle_deg, progress=progress)
        check_fits_angle(angle, {k: v for k, v in given.items() if v is not None and k not in fits},
                         None if generated is not None else REFERENCE_MODEL if run is None else Path(run))
        with resolve_inputs(**(given | paths), run=run, progress=progress, **kw) as src:
            yield dataclasses.replace(src, angle_deg=angle)


def check_fits_angle(angle: float, others: dict, run: Path | None) -> None:
    """FITS maps of ``angle`` degrees must match the dataset manifests beside the ``others`` (.npy) and
    the preset of ``run`` (one-line error otherwise)."""
    for name, path in others.items():
        if (Path(path).parent / MANIFEST).exists():
            other = float(load_manifest(Path(path).parent)["angle_deg"])
            if not math.isclose(other, angle, rel_tol=1e-3):
                raise PaperReproError(f"the FITS maps are {angle:.5g} deg on a side, the {name} maps "
                                      f"{shown_path(path)} {other:.5g} deg (its manifest)")
    if run is not None and (run / "config.json").exists():
        from ..gan.runs import read_run_info  # keras

        preset = read_run_info(run).preset
        if not math.isclose(preset.angle_deg, angle, rel_tol=1e-3):
            raise PaperReproError(f"the FITS maps are {angle:.5g} deg on a side, the maps of {shown_path(run)} "
                                  f"{preset.angle_deg:.5g} deg (preset {preset.name!r})")


@contextlib.contextmanager
def resolve_inputs(*, generated=None, run=None, reference=None, auxiliary=None, training=None, data=None,
                   n: int | None = None, seed: int = GENERATION_SEED, checkpoint=None, data_root=None,
                   progress: bool = True) -> Iterator[JobInputs]:
    """Resolve the map files (.npy) of a certification once (see the module docstring); yields :class:`JobInputs`.

    ``generated`` (a .npy) or ``run`` (default: the shipped model; its ``n`` maps, latent ``seed``,
    ``checkpoint``); ``reference``/``auxiliary``/``training``: .npy files, else from the dataset folder
    ``data``, else simulated under ``data_root`` (default ``data/``). Generated maps of a run against
    simulations under ``data_root`` are kept there; against given files they live in a temporary
    folder removed on exit.
    """
    from ..gan.runs import read_run_info  # keras

    if generated is not None and run is not None:
        raise PaperReproError("give generated maps or a run to generate them from, not both")
    root = DATA_ROOT if data_root is None else Path(data_root)
    info = arch = None
    if generated is None:
        run = REFERENCE_MODEL if run is None else Path(run)
        if not (run / "config.json").exists():
            raise PaperReproError(f"{shown_path(run)}: the generator to certify is missing (no config.json"
                                  + (" in the shipped reference model" if run == REFERENCE_MODEL else "")
                                  + "); train one with 'paper-repro train' and pass --run RUN_DIR")
        info = read_run_info(run)
        arch = check_run(run, checkpoint)     # before anything is simulated or generated
    keep = None                        # our simulations' folder: generated maps are kept beside them
    folder = None
    if reference is None:
        if data is not None:
            folder = Path(data)
            if not (folder / MANIFEST).exists():
                raise PaperReproError(f"{folder}: no dataset here (no {MANIFEST}); make one with "
                                      f"'paper-repro simulate --out {folder}'")
        else:
            name = REFERENCE_PRESET if info is None else dataset_preset_for(info.preset)
            folder = keep = ensure_dataset(root / name, name, progress=progress)
        splits = load_manifest(folder)["splits"]
        if "validation" not in splits:
            raise PaperReproError(f"{folder}: the dataset has no 'validation' split (has {', '.join(splits)})")
        if info is not None:
            check_geometry(folder, info.preset)
        reference = folder / "validation.npy"
        if auxiliary is None and "auxiliary" in splits:
            auxiliary = folder / "auxiliary.npy"
    if training is None and info is not None:
        training = run_training_maps(run, info, root, progress=progress)
    if training is None and folder is not None and (folder / "train.npy").exists():
        training = folder / "train.npy"
    with contextlib.ExitStack() as stack:
        if generated is None:
            count = n or len(open_maps(reference, check_finite=False))
            where = keep if keep is not None else Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="paper-repro-generated-")))
            generated = generated_maps(run, count, seed, where / "generated.npy", checkpoint=checkpoint)
        yield JobInputs(Path(generated), Path(reference), None if auxiliary is None else Path(auxiliary),
                        None if training is None else Path(training), run,
                        None if checkpoint is None else str(checkpoint), seed if run is not None else None,
                        architecture=arch)


def run_training_maps(run: Path, info, root: Path, *, progress: bool = True) -> Path | None:
    """A run's training maps for the memorisation test: the dataset preset its ``training_data.json``
    names, rebuilt under ``root`` and checked (:func:`check_training_data`); else the file its
    ``config.json`` names, if readable; else None (no memorisation criterion)."""
    record = run / "training_data.json"
    if record.exists():
        name = _read_record(record).get("dataset_preset")
        if name is not None:
            dataset = ensure_dataset(root / name, name, progress=progress)
            check_training_data(run, dataset)
            return dataset / "train.npy"
    return Path(info.data) if info.data and Path(info.data).exists() else None


def _read_record(record: Path) -> dict:
    try:
        want = json.loads(record.read_text())
        want["train_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PaperReproError(f"{record}: not a training-data record ({type(exc).__name__}: {exc})") from None
    return want


def check_training_data(run: Path, dataset: Path) -> None:
    """The simulated training set must be the one the model was trained on (memorisation test).

    Bit-identical (SHA-256) passes at once. Rebuilt on another CPU the same seed rounds differently
    in the last bits, so otherwise the set must match the recorded
    :func:`~paper_repro.maps.datasets.fingerprint` to ``FINGERPRINT_TOLERANCE``.
    """
    record = run / "training_data.json"
    if not record.exists():
        return
    want = _read_record(record)
    want_sha = want["train_sha256"]
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


def load(src: JobInputs, *, angle_deg: float | None = None, config: CertificationConfig | None = None) -> Inputs:
    """The checked map sets of ``src`` (memory-mapped), as :func:`~.certification.prepare` reads them;
    ``angle_deg`` (default: the FITS maps' ``src.angle_deg``, else the manifest's) sets the binning."""
    return certification.prepare(src.generated, src.validation, src.auxiliary, src.training,
                                  angle_deg=angle_deg if angle_deg is not None else src.angle_deg, config=config)


def generation_speed_of(run: Path, checkpoint=None) -> dict:
    """Maps per second of a run's generator on this machine, with its FLOP efficiency vs a matmul."""
    from ..gan.models import flops_per_map  # keras
    from ..gan.runs import load_generator

    model, preset = load_generator(run, checkpoint)
    return certification.generation_speed(model, preset.model.latent_dim,
                                          flops_per_map=flops_per_map(preset.model)["generator"])


def figures_of(out: Path, src: JobInputs, inputs: Inputs, report: Report, *, n_examples: int = 4,
               n_paths: int = 3, n_steps: int = 8, progress: bool = True) -> dict[str, list[Path]]:
    """Figures 1-8 of the certified sample ``inputs`` (statistics and p-values from ``report``)."""
    from ..gan.runs import generator_path, load_generator  # keras
    from .figures import make_figures  # matplotlib

    if src.run is None:
        raise PaperReproError("the figures need the generator (Fig. 8): give a run, not generated maps")
    model, preset = load_generator(src.run, src.checkpoint)
    about = {"run": shown_path(src.run), "generator": shown_path(generator_path(src.run, src.checkpoint)),
             "checkpoint": src.checkpoint or "default", "preset": preset.name, "latent_seed": src.seed}
    return make_figures(out, inputs, report, model, data_scale=preset.training.data_scale, about=about,
                        seed=src.seed, n_examples=n_examples, n_paths=n_paths, n_steps=n_steps,
                        progress=progress)


def reproduce(out: str | os.PathLike = FIGURES, *, figures: bool = True, progress: bool = True,
              config: CertificationConfig | None = None, run=None, data_root=None, n: int | None = None) -> int:
    """The main job; returns 0 when the model passes every criterion, 1 otherwise.

    Certifies the maps of :func:`job_inputs` (``run``, ``data_root``, ``n``: another run, data folder
    or sample size, for tests), writes ``out/report.json`` and, with ``figures``, Figures 1-8 of the
    same sample. ``config``: a :class:`~paper_repro.config.CertificationConfig` (default: the documented one).
    """
    out = Path(out)
    with job_inputs(run=run, data_root=data_root, n=n, progress=progress) as src:
        inputs = load(src, config=config)
        report = certification.certify(inputs, config, progress=progress)
        report.speed = generation_speed_of(src.run, src.checkpoint)
        report.architecture = src.architecture
        out.mkdir(parents=True, exist_ok=True)
        report.write(out / "report.json")
        print(report.summary())
        print(f"generation: {report.speed['maps_per_s']:.0f} maps/s on this machine "
              f"({100 * report.speed.get('efficiency', float('nan')):.1f}% of a measured matmul)")
        if figures:
            figures_of(out, src, inputs, report, progress=progress)
    where = shown_path(out)
    print(f"wrote {where}/report.json" + (f", {where}/captions.json and {where}/fig*.png, .pdf, .txt "
                                           "(Figures 1-8 of the certified maps)" if figures else "")
          + f"; simulations and generated maps stay in {shown_path(DATA_ROOT if data_root is None else data_root)}/")
    return 0 if report.passed else 1


def draw_figures(out: str | os.PathLike = FIGURES, *, run=None, data=None, training=None, n: int | None = None,
                 seed: int = GENERATION_SEED, checkpoint=None, data_root=None, n_examples: int = 4,
                 n_paths: int = 3, n_steps: int = 8, progress: bool = True,
                 config: CertificationConfig | None = None) -> dict[str, list[Path]]:
    """``make-figures``: Figures 1-8 of the maps :func:`job_inputs` resolves, with the certification's
    statistics and p-values (its memorisation search left out); with no arguments the same figures as
    ``paper-repro reproduce`` draws."""
    if n_steps < 2 or n_paths < 1 or n_examples < 1:
        raise PaperReproError(f"expected at least 1 example, 1 path and 2 steps, got {n_examples}, {n_paths}, {n_steps}")
    with job_inputs(run=run, data=data, training=training, n=n, seed=seed, checkpoint=checkpoint,
                    data_root=data_root, progress=progress) as src:
        if src.training is None:
            raise PaperReproError(f"no training maps for Figure 7: {shown_path(src.run)} names none that "
                                  "exists; pass --training TRAIN.npy")
        inputs = load(src, config=config)
        report = certification.certify(inputs, config, memorisation=False, progress=progress)
        return figures_of(Path(out), src, inputs, report, n_examples=n_examples, n_paths=n_paths,
                          n_steps=n_steps, progress=progress)
