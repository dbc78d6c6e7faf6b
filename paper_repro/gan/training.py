"""The fit loop: memory-mapped data, per-epoch permutations, checkpoints, resume, selection.

Everything random derives from the run's seed: weights (initialiser seeds), latents and label swaps
(the GAN's SeedGenerator, saved in checkpoints), the data order (permutation of epoch e drawn from
``default_rng([seed, e])``). So on CPU an interrupted and resumed run ends with the same weights as
an uninterrupted one in the tests (tiny preset). At cpu64 scale on a 2-core AVX-512 machine that
held for stretches of 200-260 steps, but two straight runs once parted in the 4th digit near step
150 and a resumed run near step 600: rare last-bit differences in TensorFlow's CPU kernels, which
adversarial training then amplifies (MODEL_CARD.md, "Reproducibility of training").
"""
from __future__ import annotations

import contextlib
import csv
import math
import os
import secrets
from pathlib import Path
from typing import Callable

import numpy as np

from . import runs
from .batches import epoch_permutation, read_batch, symmetry_augment
from ..config import Preset, get_preset
from ..maps.io import open_maps
from ..errors import PaperReproError, TrainingDiverged

METRICS = ("d_loss", "g_loss", "d_real", "d_fake", "flipped")

#: a selection scorer: generator -> score (lower is better)
Scorer = Callable[[object], float]


class _StopForTest(Exception):
    """Raised by ``_stop_after`` to emulate a run killed between checkpoints (tests only)."""


def _configure_determinism(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except AttributeError:  # pragma: no cover - very old TF
        pass


def _truncate_log(path: Path, upto_step: int) -> None:
    """Drop log rows written after the checkpoint a run resumes from."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= upto_step]
    from ..maps.io import atomic_path
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(keep)   # as the loop writes them


def _monitor_sets(info: runs.RunInfo, maps: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The fixed training and development maps whose discriminator verdicts are logged after each
    epoch ({} when ``monitor_maps`` is 0); drawn with their own generator, so training is unchanged."""
    n = info.preset.training.monitor_maps
    if n == 0:
        return {}
    rng = np.random.default_rng([seed, 7])
    sets = {"training": np.asarray(maps[np.sort(rng.choice(len(maps), min(n, len(maps)), replace=False))])}
    if info.development is not None:
        dev = open_maps(info.development, size=info.preset.model.image_size)
        sets["development"] = np.asarray(dev[np.sort(rng.choice(len(dev), min(n, len(dev)), replace=False))])
    return sets


def _log_discriminator(path: Path, gan, sets: dict[str, np.ndarray], data_scale: float,
                       global_step: int, epoch: int, progress: bool) -> None:
    """One row of discriminator.csv: the fraction of the monitored maps called real (NaN when the
    run has no development set) and the gap, training minus development."""
    real = {k: discriminator_verdict(gan.discriminator, v, data_scale)["real_fraction"] for k, v in sets.items()}
    tr, dev = real["training"], real.get("development", math.nan)
    with open(path, "a") as fh:
        fh.write(f"{global_step},{epoch},{tr:.6g},{dev:.6g},{tr - dev:.6g}\n")
    if progress:
        held = "" if math.isnan(dev) else (f", {dev:.1%} of development maps (gap {tr - dev:+.3f}; "
                                           "near 0 unless it memorises the training set)")
        print(f"discriminator calls real {tr:.1%} of training maps{held}")


def _kept_candidates(run: Path, upto_step: int, keep: bool) -> dict[int, float]:
    """{step: score} of the candidate snapshots a resumed run keeps; later (or, when ``keep`` is
    false, all: another schedule's selection epochs) snapshots are deleted."""
    scores = runs.selection_scores(run)
    kept = {}
    for step, path in runs.list_candidates(run).items():
        if keep and step <= upto_step and step in scores:
            kept[step] = scores[step][1]
        else:
            path.unlink(missing_ok=True)
    return kept


def _keep_candidate(run: Path, candidates: dict[int, float], step: int, score: float, generator,
                    limit: int) -> None:
    """Keep this snapshot if it is among the ``limit`` lowest scores so far; drop the one it displaces."""
    if len(candidates) >= limit and score >= max(candidates.values()):
        return
    runs.save_generator(generator, runs.candidate_path(run, step))
    candidates[step] = score
    while len(candidates) > limit:
        worst = max(candidates, key=lambda s: (candidates[s], s))
        runs.candidate_path(run, worst).unlink(missing_ok=True)
        del candidates[worst]


def train(out: str | os.PathLike, preset: str | Preset | None = None, data: str | os.PathLike | None = None,
          *, epochs: int | None = None, seed: int | None = None, resume: bool = False,
          development: str | os.PathLike | None = None, augment_from_epoch: int | None = None,
          spectral_weight: float | None = None, spectral_from_epoch: int | None = None,
          spectral_decay: float | None = None, minkowski_weight: float | None = None,
          minkowski_from_epoch: int | None = None, scorer: Scorer | None = None, progress: bool = True, _stop_after: int | None = None) -> Path:
    """Train (or with ``resume=True`` continue) the run in ``out``; return the run directory.

    ``epochs`` is the run's total number of main epochs; the preset's selection epochs follow them.
    ``development`` (maps .npy) enables checkpoint selection during the selection epochs, unless a
    ``scorer`` is given directly. ``augment_from_epoch`` overrides the preset's (new runs only):
    from that 1-based epoch on, real maps are turned by random symmetries of the square.
    ``spectral_weight`` / ``spectral_from_epoch`` / ``spectral_decay`` override the preset's spectral
    term (also when resuming: a finished run continued with the term, as ``runs/cpu64-spectral``);
    ``minkowski_weight`` / ``minkowski_from_epoch`` the Minkowski term's (``paper_repro.morphology``).
    """
    import keras

    from .cosmogan import CosmoGAN

    run = Path(out)
    if resume:
        info = runs.read_run_info(run)
        if preset is not None and get_preset(preset).name != info.preset.name:
            raise PaperReproError(f"{run} was started with preset {info.preset.name!r}; "
                                  "a resumed run keeps its preset")
        if data is not None and str(Path(data).resolve()) != info.data:
            raise PaperReproError(f"{run} was started on {info.data}; a resumed run keeps its data")
        if seed is not None and seed != info.seed:
            raise PaperReproError(f"{run} was started with seed {info.seed}; a resumed run keeps its seed")
        if augment_from_epoch is not None and augment_from_epoch != info.preset.training.augment_from_epoch:
            raise PaperReproError(f"{run} was started with augment_from_epoch "
                                  f"{info.preset.training.augment_from_epoch}; a resumed run keeps it")
        changes = {k: v for k, v in (("epochs", epochs), ("spectral_weight", spectral_weight),
                                     ("spectral_from_epoch", spectral_from_epoch),
                                     ("spectral_decay", spectral_decay),
                                     ("minkowski_weight", minkowski_weight),
                                     ("minkowski_from_epoch", minkowski_from_epoch))
                   if v is not None and v != getattr(info.preset.training, k)}
        if changes:
            info.preset = info.preset.replace(**changes)
            runs.write_run_info(run, info)
    else:
        if (run / "config.json").exists():
            raise PaperReproError(f"{run} already holds a run; use --resume to continue it "
                                  "or choose another --out")
        if preset is None:
            raise PaperReproError("--preset is required for a new run")
        if data is None:
            raise PaperReproError("--data is required for a new run")
        p = get_preset(preset)
        if epochs is not None:
            p = p.replace(epochs=epochs)
        if augment_from_epoch is not None:
            p = p.replace(augment_from_epoch=augment_from_epoch)
        if spectral_weight is not None:
            p = p.replace(spectral_weight=spectral_weight)
        if spectral_from_epoch is not None:
            p = p.replace(spectral_from_epoch=spectral_from_epoch)
        if spectral_decay is not None:
            p = p.replace(spectral_decay=spectral_decay)
        if minkowski_weight is not None:
            p = p.replace(minkowski_weight=minkowski_weight)
        if minkowski_from_epoch is not None:
            p = p.replace(minkowski_from_epoch=minkowski_from_epoch)
        info = runs.RunInfo(p, str(Path(data).resolve()), None if development is None
                            else str(Path(development).resolve()),
                            seed if seed is not None else secrets.randbelow(2 ** 31))
    p, seed = info.preset, info.seed
    t = p.training
    maps = open_maps(info.data, size=p.model.image_size)
    steps = len(maps) // t.batch_size
    if steps == 0:
        raise PaperReproError(f"{info.data}: {len(maps)} maps is fewer than one batch of {t.batch_size}")
    if scorer is None and info.development is not None and t.selection_epochs > 0:
        from ..evaluation.selection import scorer_for
        scorer = scorer_for(p, info.development)
    if not resume:
        runs.write_run_info(run, info)
    runs.clean_partial(run)

    _configure_determinism(seed)
    gan = CosmoGAN.from_preset(p, seed=seed)
    if t.spectral_weight > 0:
        from .spectral import target_log_power
        if progress:
            print("spectral term: estimating the real maps' log power from the training set")
        gan.set_spectral_target(target_log_power(maps, t.batch_size, scale=t.data_scale, seed=seed,
                                                 augment=bool(t.augment_from_epoch),
                                                 mean=t.spectral_decay > 0),
                                decay=t.spectral_decay)
    if t.minkowski_weight > 0:
        from .morphology import minkowski_target
        if progress:
            print("Minkowski term: the real maps' smooth Minkowski functionals from the training set")
        gan.set_minkowski_target(*minkowski_target(maps, seed=seed), decay=t.minkowski_decay)
    epoch, step0, global_step, best = 0, 0, 0, math.inf
    same_schedule = True
    ck = runs.latest_checkpoint(run) if resume else None
    if ck is not None:
        state, meta = runs.load_checkpoint(ck)
        gan.set_state(state)
        epoch, step0, global_step = int(meta["epoch"]), int(meta["step_in_epoch"]), int(meta["global_step"])
        best = float(meta.get("best_score", math.inf))
        if int(meta.get("main_epochs", t.epochs)) != t.epochs:
            # resumed with another number of main epochs: a best from the earlier schedule's
            # selection epochs does not compete with the selection epochs that now lie ahead
            best = math.inf
            same_schedule = False
        if progress:
            print(f"resuming {run} from {ck.name} (epoch {epoch + 1}, step {step0})")
    log_path, sel_path = run / "log.csv", run / "selection.csv"
    _truncate_log(log_path, global_step)
    _truncate_log(sel_path, global_step)
    candidates = _kept_candidates(run, global_step, keep=same_schedule)
    if not log_path.exists():
        log_path.write_text(",".join(("global_step", "epoch") + METRICS) + "\n")
    if scorer is not None and not sel_path.exists():
        sel_path.write_text("global_step,epoch,score\n")
    spec_path = run / "spectral.csv"
    if gan.spectral_weight is not None:
        _truncate_log(spec_path, global_step)
        if not spec_path.exists():
            spec_path.write_text("global_step,epoch,weight,spectral\n")   # the term at that step
    mink_path = run / "minkowski.csv"
    if gan.minkowski_weight is not None:
        _truncate_log(mink_path, global_step)
        if not mink_path.exists():
            mink_path.write_text("global_step,epoch,weight,minkowski\n")
    monitor = _monitor_sets(info, maps, seed)
    mon_path = run / "discriminator.csv"
    if monitor:
        _truncate_log(mon_path, global_step)
        if not mon_path.exists():
            mon_path.write_text("global_step,epoch,training_real,development_real,gap\n")

    def checkpoint(ep: int, st: int) -> None:
        runs.save_checkpoint(run, gan.get_state(), {
            "epoch": ep, "step_in_epoch": st, "global_step": global_step, "best_score": best,
            "main_epochs": t.epochs,
            "steps_per_epoch": steps, "preset": p.name})

    def inference_generator():
        # precise-BN statistics go on a copy, so the training state (and a resumed run) never sees them
        from .models import inference_copy
        return inference_copy(gan.generator, t, seed)

    total = t.total_epochs
    done_steps = 0
    with open(log_path, "a", newline="") as log, open(sel_path, "a") if scorer else contextlib.nullcontext() as sel, \
            open(spec_path, "a") if gan.spectral_weight is not None else contextlib.nullcontext() as spec_log, \
            open(mink_path, "a") if gan.minkowski_weight is not None else contextlib.nullcontext() as mink_log:
        while epoch < total:
            perm = epoch_permutation(seed, epoch, len(maps))
            if step0 == 0:
                gan.reset_metrics()
            gan.spectral_tracker.reset_state()
            if gan.spectral_weight is not None:
                w = t.spectral_weight_at(epoch)
                if progress and w != t.spectral_weight_at(epoch - 1):
                    print(f"spectral term weight {w:g} from epoch {epoch + 1} on")
                gan.set_spectral_weight(w)
            gan.minkowski_tracker.reset_state()
            if gan.minkowski_weight is not None:
                w = t.minkowski_weight_at(epoch)
                if progress and w != t.minkowski_weight_at(epoch - 1):
                    print(f"Minkowski term weight {w:g} from epoch {epoch + 1} on")
                gan.set_minkowski_weight(w)
            lr = t.learning_rate_at(epoch)   # set every epoch (and on resume): a pure function of the epoch
            if progress and lr != t.learning_rate_at(epoch - 1):
                print(f"learning rate {lr:.3g} from epoch {epoch + 1} on")
            gan.g_optimizer.learning_rate.assign(lr)
            gan.d_optimizer.learning_rate.assign(t.d_learning_rate_at(epoch))
            selecting = scorer is not None and epoch >= t.epochs
            augment = t.augments(epoch)
            if progress and augment and not t.augments(epoch - 1):
                print(f"real maps randomly rotated/reflected from epoch {epoch + 1} on")
            shown = (METRICS + (("spectral",) if gan.spectral_active else ())
                     + (("minkowski",) if gan.minkowski_active else ()))
            bar = keras.utils.Progbar(steps, stateful_metrics=shown, verbose=1 if progress else 0)
            if progress:
                phase = "selection epoch" if epoch >= t.epochs else "epoch"
                print(f"{phase} {epoch + 1}/{total}")
            for step in range(step0, steps):
                batch = read_batch(maps, perm[step * t.batch_size:(step + 1) * t.batch_size], t.data_scale)
                if augment:
                    batch = symmetry_augment(batch, seed, epoch, step)
                logs = {k: float(v) for k, v in gan.train_on_batch(batch, return_dict=True).items()}
                if not all(math.isfinite(logs[k]) for k in ("d_loss", "g_loss")):
                    last = runs.latest_checkpoint(run)
                    raise TrainingDiverged(
                        f"non-finite loss at epoch {epoch + 1} step {step + 1} (d_loss={logs['d_loss']}, "
                        f"g_loss={logs['g_loss']}); training stopped, last good checkpoint: "
                        f"{last if last else 'none'}")
                global_step += 1
                done_steps += 1
                bar.update(step + 1, [(k, logs[k]) for k in shown])
                if global_step % t.log_every == 0:
                    log.write(",".join([str(global_step), str(epoch + 1)] + [f"{logs[k]:.6g}" for k in METRICS]) + "\n")
                    log.flush()
                    if "spectral" in logs:
                        spec_log.write(f"{global_step},{epoch + 1},{t.spectral_weight_at(epoch):g},"
                                       f"{logs['spectral_step']:.6g}\n")
                        spec_log.flush()
                    if "minkowski" in logs:
                        mink_log.write(f"{global_step},{epoch + 1},{t.minkowski_weight_at(epoch):g},"
                                       f"{logs['minkowski_step']:.6g}\n")
                        mink_log.flush()
                if selecting and global_step % t.selection_every == 0:
                    kept = inference_generator()
                    score = float(scorer(kept))
                    sel.write(f"{global_step},{epoch + 1},{score:.8g}\n")
                    sel.flush()
                    if t.selection_candidates > 1:
                        _keep_candidate(run, candidates, global_step, score, kept, t.selection_candidates)
                    if score < best:
                        best = score
                        runs.save_generator(kept, run / "best" / "generator.keras")
                        runs.write_json(run / "best" / "score.json", {
                            "score": score, "global_step": global_step, "epoch": epoch + 1,
                            "metric": getattr(scorer, "description", "selection score")})
                if _stop_after is not None and done_steps >= _stop_after:
                    raise _StopForTest(global_step)
                if t.checkpoint_every and global_step % t.checkpoint_every == 0 and step + 1 < steps:
                    checkpoint(epoch, step + 1)
            step0 = 0
            epoch += 1
            if monitor:
                _log_discriminator(mon_path, gan, monitor, t.data_scale, global_step, epoch, progress)
            kept = inference_generator()
            runs.save_generator(kept, run / "generators" / f"epoch-{epoch:04d}.weights.h5")
            runs.save_generator(kept, run / "generator.keras")
            checkpoint(epoch, 0)
    return run


def discriminator_verdict(discriminator, maps: np.ndarray, data_scale: float) -> dict[str, float]:
    """The fraction of ``maps`` (kappa, (N, H, W)) a discriminator calls real (logit > 0), their mean
    logit and their number; inference-mode batch norm, so the verdict changes no state."""
    logits = []
    for s in range(0, len(maps), 256):
        x = np.asarray(maps[s:s + 256], np.float32)[..., None] * np.float32(data_scale)
        logits.append(np.asarray(discriminator(x, training=False), np.float64)[:, 0])
    lg = np.concatenate(logits)
    return {"real_fraction": float(np.mean(lg > 0)), "mean_logit": float(np.mean(lg)), "n": len(lg)}


def discriminator_overfitting(run: str | os.PathLike, heldout: str | os.PathLike | None = None, *,
                              n: int = 4000, seed: int = 0) -> dict[str, dict[str, float]]:
    """How the discriminator of a run's latest checkpoint judges training maps, real maps it never
    saw, their 90-degree rotations, and generated maps: per set the fraction called real (logit > 0),
    the mean logit and the number of maps.

    A discriminator that has learned the distribution calls training and held-out real maps real
    equally often; one that has memorised the training set (limited data; Karras et al. 2020) calls
    the training maps real far more often, and then its rotations look like unseen maps too.
    ``heldout`` defaults to the run's development set. Inference-mode batch norm.
    """
    from .cosmogan import CosmoGAN
    from .models import inference_copy
    from .latents import generate

    run = Path(run)
    info = runs.read_run_info(run)
    p, t = info.preset, info.preset.training
    if n < 1:
        raise PaperReproError(f"n must be positive, got {n}")
    ck = runs.latest_checkpoint(run)
    if ck is None:
        raise PaperReproError(f"{run}: no checkpoint, so no discriminator to diagnose")
    heldout = heldout if heldout is not None else info.development
    if heldout is None:
        raise PaperReproError(f"{run} has no development set; give the held-out real maps")
    if info.data is None:
        raise PaperReproError(f"{run}/config.json names no training data")
    size = p.model.image_size
    train_maps = open_maps(info.data, size=size)
    held = open_maps(heldout, size=size)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(train_maps), min(n, len(train_maps)), replace=False))
    gan = CosmoGAN.from_preset(p, seed=seed)
    state, _ = runs.load_checkpoint(ck)
    gan.set_state(state)

    def verdict(maps: np.ndarray) -> dict[str, float]:
        return discriminator_verdict(gan.discriminator, maps, t.data_scale)

    train_sel = np.asarray(train_maps[pick])
    generated = np.concatenate(list(generate(inference_copy(gan.generator, t, info.seed), len(pick), seed,
                                             data_scale=t.data_scale)))
    return {"training": verdict(train_sel),
            "training, rotated 90 deg": verdict(np.ascontiguousarray(np.rot90(train_sel, 1, axes=(1, 2)))),
            "held-out": verdict(np.asarray(held[:n])),
            "generated": verdict(generated)}
