"""The per-epoch and per-step effects of training, as Keras-style callbacks of the loop in ``training``.

The loop (``training.train``) only draws batches and steps the GAN; everything else it does is one
of these, called in the order of its list: the learning-rate and loss-term weight schedules, the
progress bar, the logs, the selection snapshots, the discriminator monitor, the saved generators
and the checkpoints. Each reads where the run is from one shared :class:`RunState`, which the loop
advances and the checkpoints save. The hooks are Keras' (``keras.callbacks.Callback``):
``on_train_begin()``, ``on_epoch_begin(epoch)``, ``on_train_batch_end(step, logs)``,
``on_epoch_end(epoch)``, with 0-based epochs and steps within the epoch.

Every log is a :class:`CSVLog`: a header and rows in Keras' ``CSVLogger`` shape, one row appended
and flushed per write; a resumed run first drops the rows written after its checkpoint.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import keras
import numpy as np

from ..config import TrainingConfig
from ..maps.io import atomic_path
from . import runs
from .diagnostics import discriminator_verdict
from .models import inference_copy

#: the step's metrics in log.csv, in its column order
METRICS = ("d_loss", "g_loss", "d_real", "d_fake", "flipped")

#: a selection scorer: generator -> score (lower is better)
Scorer = Callable[[object], float]


@dataclass
class RunState:
    """Where a run is: ``epoch`` epochs and then ``step`` steps of the next one done,
    ``global_step`` steps in all; ``best_score`` is the lowest selection score so far."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    best_score: float = math.inf


class CSVLog:
    """One CSV file of a run: ``columns`` maps each column to its format spec (``"d"``, ``".6g"``);
    the first column is the global step, by which a resumed run truncates the file."""

    def __init__(self, path: str | os.PathLike, columns: Mapping[str, str]):
        self.path = Path(path)
        self.columns = dict(columns)

    def truncate(self, upto_step: int) -> None:
        """Drop the rows after global step ``upto_step`` (atomically; LF line endings)."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            return
        keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= upto_step]
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="") as fh:
                csv.writer(fh, lineterminator="\n").writerows(keep)

    def start(self, upto_step: int) -> None:
        """Continue the log of a run at ``upto_step``: truncated there, or a new file with its header."""
        self.truncate(upto_step)
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="") as fh:
                fh.write(",".join(self.columns) + "\n")

    def write(self, row: Mapping[str, object]) -> None:
        """Append one row (the values of ``row`` for the columns) and flush it to the file."""
        line = ",".join(format(row[k], spec) for k, spec in self.columns.items())
        with open(self.path, "a", newline="") as fh:
            fh.write(line + "\n")


def step_log(path: Path, *names: str, spec: str = ".6g") -> CSVLog:
    """A log with the columns global_step, epoch (1-based) and ``names`` in format ``spec``."""
    return CSVLog(path, {"global_step": "d", "epoch": "d", **{n: spec for n in names}})


class LearningRateSchedule(keras.callbacks.Callback):
    """At each epoch's start, both Adam rates from the config (a pure function of the epoch, so a
    resumed run sets the same): ``learning_rate_at`` for G, ``d_learning_rate_at`` for D."""

    def __init__(self, training: TrainingConfig, verbose: bool = False):
        super().__init__()
        self.training, self.verbose = training, verbose

    def on_epoch_begin(self, epoch, logs=None):
        t = self.training
        lr = t.learning_rate_at(epoch)
        if self.verbose and lr != t.learning_rate_at(epoch - 1):
            print(f"learning rate {lr:.3g} from epoch {epoch + 1} on")
        self.model.g_optimizer.learning_rate.assign(lr)
        self.model.d_optimizer.learning_rate.assign(t.d_learning_rate_at(epoch))


class LossWeightSchedule(keras.callbacks.Callback):
    """At each epoch's start, each loss term's weight from its schedule ({name: epoch -> weight});
    a term going to or from 0 enters or leaves the traced step."""

    def __init__(self, schedules: Mapping[str, Callable[[int], float]], verbose: bool = False):
        super().__init__()
        self.schedules, self.verbose = dict(schedules), verbose

    def on_epoch_begin(self, epoch, logs=None):
        for name, weight_at in self.schedules.items():
            w = weight_at(epoch)
            if self.verbose and w != weight_at(epoch - 1):
                print(f"{name} term weight {w:g} from epoch {epoch + 1} on")
            self.model.set_term_weight(name, w)


class ProgressBar(keras.callbacks.Callback):
    """A header line per epoch (and when augmentation starts) and Keras' progress bar of the metrics
    and active loss terms."""

    def __init__(self, training: TrainingConfig, steps: int):
        super().__init__()
        self.training, self.steps = training, steps
        self.bar, self.shown = None, METRICS

    def on_epoch_begin(self, epoch, logs=None):
        t = self.training
        if t.augments(epoch) and not t.augments(epoch - 1):
            print(f"real maps randomly rotated/reflected from epoch {epoch + 1} on")
        print(f"{'selection epoch' if epoch >= t.epochs else 'epoch'} {epoch + 1}/{t.total_epochs}")
        self.shown = METRICS + self.model.active_terms()
        self.bar = keras.utils.Progbar(self.steps, stateful_metrics=METRICS)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(batch + 1, [(k, logs[k]) for k in self.shown])


class MetricsLog(keras.callbacks.Callback):
    """Every ``log_every`` steps a row of log.csv (:data:`METRICS`) and, for each loss term active
    at that step, a row of ``<term name>.csv`` (its weight and its value at the step)."""

    def __init__(self, run: Path, state: RunState, log_every: int, terms: Sequence = ()):
        super().__init__()
        self.state, self.log_every, self.terms = state, log_every, list(terms)
        self.log = step_log(run / "log.csv", *METRICS)
        self.term_logs = {t.name: CSVLog(run / f"{t.name}.csv", {"global_step": "d", "epoch": "d",
                                                                 "weight": "g", t.name: ".6g"})
                          for t in self.terms}

    def on_train_begin(self, logs=None):
        for log in [self.log, *self.term_logs.values()]:
            log.start(self.state.global_step)

    def on_train_batch_end(self, batch, logs=None):
        s = self.state
        if s.global_step % self.log_every:
            return
        self.log.write({"global_step": s.global_step, "epoch": s.epoch + 1, **logs})
        for term in self.terms:
            if term.name in logs:
                self.term_logs[term.name].write({"global_step": s.global_step, "epoch": s.epoch + 1,
                                                 "weight": float(term.weight.numpy()), **logs})


class SelectionSnapshots(keras.callbacks.Callback):
    """In the selection epochs, every ``selection_every`` steps: score the generator as it would be
    saved (precise batch norm on a copy), log it to selection.csv, keep it in candidates/ while among
    the ``selection_candidates`` lowest (when more than 1) and in best/ while the lowest so far.

    Without a scorer it only tidies a resumed run. On resume, snapshots after the checkpoint are
    dropped (taken again), and all of them when the run's schedule changed (``same_schedule``)."""

    def __init__(self, run: Path, state: RunState, training: TrainingConfig, seed: int,
                 scorer: Scorer | None, same_schedule: bool = True):
        super().__init__()
        self.run, self.state, self.training, self.seed = run, state, training, seed
        self.scorer, self.same_schedule = scorer, same_schedule
        self.log = step_log(run / "selection.csv", "score", spec=".8g")
        self.candidates: dict[int, float] = {}

    def on_train_begin(self, logs=None):
        if self.scorer is not None:
            self.log.start(self.state.global_step)
        else:
            self.log.truncate(self.state.global_step)
        self.candidates = kept_candidates(self.run, self.state.global_step, keep=self.same_schedule)

    def on_train_batch_end(self, batch, logs=None):
        s, t = self.state, self.training
        if self.scorer is None or s.epoch < t.epochs or s.global_step % t.selection_every:
            return
        kept = inference_copy(self.model.generator, t, self.seed, getattr(self.model, "bn_params", None))
        score = float(self.scorer(kept))
        self.log.write({"global_step": s.global_step, "epoch": s.epoch + 1, "score": score})
        if t.selection_candidates > 1:
            keep_candidate(self.run, self.candidates, s.global_step, score, kept, t.selection_candidates)
        if score < s.best_score:
            s.best_score = score
            runs.save_generator(kept, self.run / "best" / "generator.keras")
            runs.write_json(self.run / "best" / "score.json", {
                "score": score, "global_step": s.global_step, "epoch": s.epoch + 1,
                "metric": getattr(self.scorer, "description", "selection score")})


def kept_candidates(run: Path, upto_step: int, keep: bool) -> dict[int, float]:
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


def keep_candidate(run: Path, candidates: dict[int, float], step: int, score: float, generator,
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


class DiscriminatorMonitor(keras.callbacks.Callback):
    """After each epoch, a row of discriminator.csv: the fraction of the fixed training and
    development maps (``diagnostics.monitor_sets``) the discriminator calls real (NaN without a
    development set), and the gap, training minus development (near 0 unless it memorises)."""

    def __init__(self, run: Path, state: RunState, sets: Mapping[str, np.ndarray], data_scale: float,
                 verbose: bool = False):
        super().__init__()
        self.state, self.sets, self.data_scale, self.verbose = state, dict(sets), data_scale, verbose
        self.log = step_log(run / "discriminator.csv", "training_real", "development_real", "gap")

    def on_train_begin(self, logs=None):
        self.log.start(self.state.global_step)

    def on_epoch_end(self, epoch, logs=None):
        real = {k: discriminator_verdict(self.model.discriminator, v, self.data_scale)["real_fraction"]
                for k, v in self.sets.items()}
        tr, dev = real["training"], real.get("development", math.nan)
        self.log.write({"global_step": self.state.global_step, "epoch": self.state.epoch,
                        "training_real": tr, "development_real": dev, "gap": tr - dev})
        if self.verbose:
            held = "" if math.isnan(dev) else (f", {dev:.1%} of development maps (gap {tr - dev:+.3f}; "
                                               "near 0 unless it memorises the training set)")
            print(f"discriminator calls real {tr:.1%} of training maps{held}")


class GeneratorSaves(keras.callbacks.Callback):
    """After each epoch, the generator as scored (precise batch norm on a copy, so the training
    state never sees it) to generators/epoch-NNNN.weights.h5 and generator.keras."""

    def __init__(self, run: Path, training: TrainingConfig, seed: int):
        super().__init__()
        self.run, self.training, self.seed = run, training, seed

    def on_epoch_end(self, epoch, logs=None):
        kept = inference_copy(self.model.generator, self.training, self.seed, getattr(self.model, "bn_params", None))
        runs.save_generator(kept, self.run / "generators" / f"epoch-{epoch + 1:04d}.weights.h5")
        runs.save_generator(kept, self.run / "generator.keras")


class Checkpoints(keras.callbacks.Callback):
    """The full training state (``CosmoGAN.state_variables``) and the :class:`RunState`, atomically,
    after each epoch and every ``checkpoint_every`` steps within one; the last ``runs.KEEP`` kept."""

    def __init__(self, run: Path, state: RunState, training: TrainingConfig, steps: int, preset_name: str):
        super().__init__()
        self.run, self.state, self.training, self.steps, self.preset_name = run, state, training, steps, preset_name

    def save(self) -> None:
        s = self.state
        runs.save_checkpoint(self.run, self.model.get_state(), {
            "epoch": s.epoch, "step_in_epoch": s.step, "global_step": s.global_step,
            "best_score": s.best_score, "main_epochs": self.training.epochs,
            "steps_per_epoch": self.steps, "preset": self.preset_name})

    def on_train_batch_end(self, batch, logs=None):
        every = self.training.checkpoint_every
        if every and self.state.global_step % every == 0 and self.state.step < self.steps:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save()
