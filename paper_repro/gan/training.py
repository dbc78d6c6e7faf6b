"""The fit loop: memory-mapped data, per-epoch permutations, checkpoints, resume, selection.

The loop itself is the paper's: each epoch a new order of the training maps, batches of
``batch_size``, one adversarial step per batch (``CosmoGAN.train_step``). What else happens around
the steps (rate and loss-term schedules, logs, selection snapshots, the discriminator monitor, saved
generators, checkpoints) are the callbacks of ``paper_repro.gan.callbacks``.

Everything random derives from the run's seed: weights (initialiser seeds), latents and label swaps
(the GAN's SeedGenerator, saved in checkpoints), the data order (permutation of epoch e drawn from
``default_rng([seed, e])``). So on CPU an interrupted and resumed run ends with the same weights as
an uninterrupted one in the tests (tiny preset). At cpu64 scale on a 2-core AVX-512 machine that
held for stretches of 200-260 steps, but two straight runs once parted in the 4th digit near step
150 and a resumed run near step 600: rare last-bit differences in TensorFlow's CPU kernels, which
adversarial training then amplifies (docs/history.md, "reproducibility of training").

A conditional preset (:mod:`paper_repro.gan.conditional`) trains on a cosmology-grid directory: each
batch is the maps and their own parameters, in the same seeded order.
"""
from __future__ import annotations

import math
import os
import secrets
from pathlib import Path
from typing import Callable, Sequence

import keras

from ..config import ConditionalPreset, Preset, get_preset
from ..errors import PaperReproError, TrainingDiverged
from ..maps.io import open_maps
from . import callbacks as cbs
from . import runs, warm_start
from .batches import epoch_permutation, read_batch, symmetry_augment
from .conditional import ConditionalCosmoGAN, training_pairs
from .conditional_pdf import ConditionalPDFTerm
from .cosmogan import CosmoGAN
from .devices import choose_devices, compute_on
from .diagnostics import monitor_sets
from .spectral import SpectralTerm

#: makes the selection scorer of a run: (preset, development maps path) -> scorer
ScorerFactory = Callable[[Preset, str], cbs.Scorer]


def configure_determinism(seed: int) -> None:
    """Seed Python, NumPy and the backend, and make the backend's ops deterministic (same results for
    the same inputs, run after run). TensorFlow: op determinism switched on. JAX: XLA on CPU is
    deterministic as it is; on GPUs set ``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` before the
    first JAX call (an XLA flag cannot be switched on later)."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # the TensorFlow backend's determinism switch

        tf.config.experimental.enable_op_determinism()


def run_info(run: Path, preset: str | Preset | None, data: str | os.PathLike | None, *, resume: bool,
             seed: int | None, development: str | os.PathLike | None, overrides: dict) -> runs.RunInfo:
    """The record of run ``run``: a new one from the preset with ``overrides`` (training settings,
    None for the preset's), or, with ``resume``, the run's own, where only ``epochs`` and the
    spectral term's settings may change (written back)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if resume:
        info = runs.read_run_info(run)
        if preset is not None and get_preset(preset).name != info.preset.name:
            raise PaperReproError(f"{run} was started with preset {info.preset.name!r}; "
                                  "a resumed run keeps its preset")
        if data is not None and str(Path(data).resolve()) != info.data:
            raise PaperReproError(f"{run} was started on {info.data}; a resumed run keeps its data")
        if seed is not None and seed != info.seed:
            raise PaperReproError(f"{run} was started with seed {info.seed}; a resumed run keeps its seed")
        was = info.preset.training.augment_from_epoch
        if overrides.get("augment_from_epoch", was) != was:
            raise PaperReproError(f"{run} was started with augment_from_epoch {was}; a resumed run keeps it")
        changes = {k: v for k, v in overrides.items() if v != getattr(info.preset.training, k)}
        if changes:
            info.preset = info.preset.replace(**changes)
            runs.write_run_info(run, info)
        return info
    if (run / "config.json").exists():
        raise PaperReproError(f"{run} already holds a run; use --resume to continue it or choose another --out")
    if preset is None:
        raise PaperReproError("--preset is required for a new run")
    if data is None:
        raise PaperReproError("--data is required for a new run")
    return runs.RunInfo(get_preset(preset).replace(**overrides), str(Path(data).resolve()),
                        None if development is None else str(Path(development).resolve()),
                        seed if seed is not None else secrets.randbelow(2 ** 31))


def check_finite(run: Path, logs: dict[str, float], epoch: int, step: int) -> None:
    """Raise :class:`TrainingDiverged` if a loss is NaN or infinite (0-based epoch and step)."""
    if not all(math.isfinite(logs[k]) for k in ("d_loss", "g_loss")):
        last = runs.latest_checkpoint(run)
        raise TrainingDiverged(
            f"non-finite loss at epoch {epoch + 1} step {step + 1} (d_loss={logs['d_loss']}, "
            f"g_loss={logs['g_loss']}); training stopped, last good checkpoint: {last if last else 'none'}")


def train(out: str | os.PathLike, preset: str | Preset | None = None, data: str | os.PathLike | None = None,
          *, epochs: int | None = None, seed: int | None = None, resume: bool = False,
          development: str | os.PathLike | None = None, augment_from_epoch: int | None = None,
          spectral_weight: float | None = None, spectral_from_epoch: int | None = None,
          scorer: cbs.Scorer | None = None, scorer_factory: ScorerFactory | None = None,
          callbacks: Sequence = (), progress: bool = True, devices: int | str | None = None,
          precision: str | None = None, init_from: str | os.PathLike | None = None) -> Path:
    """Train (or with ``resume=True`` continue) the run in ``out``; return the run directory.

    ``epochs`` is the run's total number of main epochs; the preset's selection epochs follow them.
    Selection snapshots are scored by ``scorer`` (generator -> score, lower is better) or, when the
    run has a ``development`` set (maps .npy), by ``scorer_factory(preset, development)``
    (``paper_repro.evaluation.selection.scorer_for`` in the CLI); without either none are taken.
    ``augment_from_epoch`` overrides the preset's (new runs only): from that 1-based epoch on, real
    maps are turned by random symmetries of the square. ``spectral_weight`` / ``spectral_from_epoch``
    override the preset's spectral term (also when resuming: a finished run continued with the term).
    ``callbacks`` (``keras.callbacks.Callback``s, or objects with some of its hooks) see each step
    after its logs and selection snapshot and before its checkpoint, and each epoch's end first.
    ``devices`` (an int or "all") trains data-parallel with the batch as the global batch
    (:mod:`paper_repro.gan.devices`); ``precision`` ("mixed_bfloat16") is recorded with a new run.
    ``init_from`` (a new run only): start the networks from another run's checkpoint
    (:mod:`paper_repro.gan.warm_start`; the conditional emulator from the unconditional model).
    """
    run = Path(out)
    choose_devices(devices)      # a bad --devices fails before anything is written
    if init_from is not None:
        if resume:
            raise PaperReproError("--init-from starts a new run; a resumed run continues from its own checkpoint")
    info = run_info(run, preset, data, resume=resume, seed=seed, development=development, overrides={
        "epochs": epochs, "augment_from_epoch": augment_from_epoch, "spectral_weight": spectral_weight,
        "spectral_from_epoch": spectral_from_epoch, "precision": precision})
    p, seed = info.preset, info.seed
    t = p.training
    if init_from is not None:
        warm_start.checked_source(init_from, p.model)      # before the run writes anything
    conditional = isinstance(p, ConditionalPreset)   # data: a cosmology grid; batches (maps, params)
    if conditional:
        maps, params = training_pairs(info.data, p)
        if t.spectral_weight > 0 or (devices not in (None, 1)):
            raise PaperReproError("a conditional run has no spectral term and trains on one device")
        scorer = scorer_factory = None    # no conditional selection score yet: snapshots not taken
    else:
        maps, params = open_maps(info.data, size=p.model.image_size), None
    steps = len(maps) // t.batch_size
    if steps == 0:
        raise PaperReproError(f"{info.data}: {len(maps)} maps is fewer than one batch of {t.batch_size}")
    if scorer is None and scorer_factory is not None and info.development is not None and t.selection_epochs:
        scorer = scorer_factory(p, info.development)
    if not resume:
        runs.write_run_info(run, info)
    runs.clean_partial(run)

    with compute_on(devices, t.precision):
        configure_determinism(seed)
        terms = []
        if t.spectral_weight > 0:
            if progress:
                print("spectral term: estimating the real maps' log power from the training set")
            terms.append(SpectralTerm.from_maps(maps, t, seed))
        if conditional and p.pdf_weight > 0:
            terms.append(ConditionalPDFTerm(p.pdf_weight, standardise=p.pdf_quantiles == "standardised"))
        gan = (ConditionalCosmoGAN if conditional else CosmoGAN).from_preset(p, seed=seed, loss_terms=terms)
        if conditional:
            gan.bn_params = params
        state, same_schedule = cbs.RunState(), True
        ck = runs.latest_checkpoint(run) if resume else None
        if ck is not None:
            values, meta = runs.load_checkpoint(ck)
            gan.set_state(values)
            state = cbs.RunState(int(meta["epoch"]), int(meta["step_in_epoch"]), int(meta["global_step"]),
                                 float(meta.get("best_score", math.inf)))
            if int(meta.get("main_epochs", t.epochs)) != t.epochs:
                # resumed with another number of main epochs: a best from the earlier schedule's
                # selection epochs does not compete with the selection epochs that now lie ahead
                state.best_score, same_schedule = math.inf, False
            if progress:
                print(f"resuming {run} from {ck.name} (epoch {state.epoch + 1}, step {state.step})")
        else:
            record = warm_start.read_record(run) if resume else None
            source = init_from if init_from is not None else (record or {}).get("source")
            if source is not None:
                new = warm_start.warm_start(gan, source, p.model)
                if record is not None and new["sha256"] != record["sha256"]:
                    raise PaperReproError(f"--init-from {source}: the checkpoint changed since the run started")
                warm_start.write_record(run, new)
                if progress:
                    print(f"networks from {source} (step {new['global_step']} of a {new['source_preset']} run)")

        monitor = None if conditional else monitor_sets(info, maps, seed)
        weights = {"spectral": t.spectral_weight_at, "pdf": lambda epoch: p.pdf_weight}
        hooks = [cbs.LossWeightSchedule({term.name: weights[term.name] for term in terms}, verbose=progress),
                 cbs.LearningRateSchedule(t, verbose=progress)]
        hooks += [cbs.ProgressBar(t, steps)] if progress else []
        hooks += [cbs.MetricsLog(run, state, t.log_every, terms),
                  cbs.SelectionSnapshots(run, state, t, seed, scorer, same_schedule)]
        hooks += list(callbacks)
        hooks += [cbs.DiscriminatorMonitor(run, state, monitor, t.data_scale, verbose=progress)] if monitor else []
        hooks += [cbs.GeneratorSaves(run, t, seed), cbs.Checkpoints(run, state, t, steps, p.name)]
        for h in hooks:
            if hasattr(h, "set_model"):
                h.set_model(gan)
        call_hooks(hooks, "on_train_begin")

        while state.epoch < t.total_epochs:
            epoch = state.epoch
            order = epoch_permutation(seed, epoch, len(maps))
            if state.step == 0:
                gan.reset_metrics()
            call_hooks(hooks, "on_epoch_begin", epoch)
            for step in range(state.step, steps):
                rows = order[step * t.batch_size:(step + 1) * t.batch_size]
                batch = read_batch(maps, rows, t.data_scale)
                if t.augments(epoch):
                    batch = symmetry_augment(batch, seed, epoch, step)
                if conditional:
                    batch = (batch, params[rows])
                logs = {k: float(v) for k, v in gan.train_on_batch(batch, return_dict=True).items()}
                check_finite(run, logs, epoch, step)
                state.step, state.global_step = step + 1, state.global_step + 1
                call_hooks(hooks, "on_train_batch_end", step, logs)
            state.epoch, state.step = epoch + 1, 0
            call_hooks(hooks, "on_epoch_end", epoch)
    return run


def call_hooks(hooks: Sequence, name: str, *args) -> None:
    """Call hook ``name`` of each callback that has it, in order."""
    for h in hooks:
        fn = getattr(h, name, None)
        if fn is not None:
            fn(*args)
