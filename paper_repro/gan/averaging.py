"""Weight averaging of a run's late generators (Polyak averaging; Yazici et al. 2019, ICLR).

At a small constant learning rate the adversarial game does not settle: the generator circles
around an equilibrium, and its statistics score jumps from one snapshot to the next (cpu64,
selection epochs at 2e-5: training-time scores from 2 to 14 within 100 steps). The uniform
average of the weights of snapshots spread over that stretch sits nearer the centre of the
orbit than any one snapshot. Batch-norm statistics of an average are not the average of the
members' statistics, so the averaged generator gets precise batch norm (recalibrated from
training-mode passes) when the preset asks for it, as every scored generator does. On the cpu64
runs here the mean of 10 epoch ends was far worse than any member (smoother maps; MODEL_CARD.md),
so it is a candidate like the others: ``paper-repro select`` keeps it only if it scores lower.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import PaperReproError

def average_weights(models) -> list[np.ndarray]:
    """The element-wise mean (float64 accumulation, float32 result) of several models' weights."""
    acc = None
    n = 0
    for m in models:
        w = [np.asarray(x, np.float64) for x in m.get_weights()]
        if acc is None:
            acc = w
        else:
            if [a.shape for a in acc] != [x.shape for x in w]:
                raise PaperReproError("cannot average generators of different architectures")
            acc = [a + x for a, x in zip(acc, w)]
        n += 1
    if n == 0:
        raise PaperReproError("no generators to average")
    return [(a / n).astype(np.float32) for a in acc]


def average_run(run: str | os.PathLike, *, first_epoch: int, last_epoch: int | None = None,
                candidates: bool = False, progress: bool = True) -> dict:
    """Average a run's epoch-end generators ``first_epoch..last_epoch`` (and, with ``candidates``,
    its kept selection snapshots); save the result, with precise batch norm when the preset asks,
    as ``<run>/averaged/generator.keras`` plus ``averaged/members.json``. Returns
    {"path", "epochs", "steps", "members"}. ``paper-repro score --checkpoint averaged`` scores it and
    ``paper-repro select`` ranks it with the other candidates.
    """
    from . import runs
    from .models import build_generator, inference_copy

    run = Path(run)
    info = runs.read_run_info(run)
    epochs = runs.list_epoch_generators(run, first_epoch, last_epoch)
    steps = runs.list_candidates(run) if candidates else {}
    paths = list(epochs.values()) + list(steps.values())
    if len(paths) < 2:
        have = sorted(runs.list_epoch_generators(run))
        raise PaperReproError(
            f"{run}: {len(paths)} generator(s) in epochs {first_epoch}..{last_epoch or 'end'}"
            f"{' and candidates/' if candidates else ''}; averaging needs at least 2 "
            f"(saved epochs: {', '.join(map(str, have)) or 'none'})")
    template = build_generator(info.preset)

    def loaded():
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(paths), unit="generator", desc="average")
        for path in paths:
            try:
                template.load_weights(path)
            except (OSError, ValueError) as exc:
                raise PaperReproError(f"{path}: cannot load generator ({exc})") from None
            if bar is not None:
                bar.update(1)
            yield template
        if bar is not None:
            bar.close()

    mean = average_weights(loaded())
    model = build_generator(info.preset)
    model.set_weights(mean)
    model = inference_copy(model, info.preset.training, info.seed)
    out = runs.averaged_path(run)
    runs.save_generator(model, out)
    members = {"epochs": sorted(epochs), "steps": sorted(steps), "members": len(paths),
               "method": "uniform mean of the weights, then precise batch norm"
                         if info.preset.training.bn_recalibration else "uniform mean of the weights"}
    runs.write_json(out.parent / "members.json", members)
    return {"path": str(out), **members}
