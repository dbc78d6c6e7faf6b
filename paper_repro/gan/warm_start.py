"""Warm start: a new run begins from the networks of another run's checkpoint (``train --init-from``).

Its use is the conditional emulator fine-tuned from the certified unconditional model at the
fiducial cosmology. Every layer of the new G and D takes the weights of the layer of the same name
in the source (batch-norm statistics included); what the source lacks starts at zero, so the new
model begins as the source:

- G's dense layer gains rows for the parameters concatenated to z: zero, so G(z, theta) = G(z) at
  the start for every theta;
- D's projection map V: zero, so D(x, theta) = D(x) at the start.

The optimizers' states start afresh (Adam's moments belong to the source's schedule), and the random
state is the new run's own seed. The source is recorded in the run's ``init.json`` (its checkpoint
path as given, step and SHA-256), so a run killed before its first checkpoint starts over the same way.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..config import ModelConfig
from ..errors import PaperReproError
from ..maps.io import sha256_file
from . import runs
from .cosmogan import CosmoGAN

#: the record of a warm start inside the new run's directory
RECORD = "init.json"


def source_checkpoint(source: str | os.PathLike) -> tuple[Path, Path]:
    """(run directory, checkpoint directory) of ``source``: a checkpoint ``RUN/checkpoints/step-N`` or a
    run directory (its latest checkpoint). One-line errors when it is neither."""
    src = Path(source)
    if (src / "state.npz").is_file():
        return src.parent.parent, src
    if (src / "config.json").is_file():
        ck = runs.latest_checkpoint(src)
        if ck is None:
            raise PaperReproError(f"--init-from {source}: the run has no checkpoint to start from")
        return src, ck
    raise PaperReproError(f"--init-from {source}: neither a run directory nor a checkpoint "
                          "(a folder with state.npz)")


def _copy_layers(target, source, grown: set[str]) -> list[str]:
    """Copy the weights of ``source``'s layers into ``target``'s layers of the same name. ``grown``: layers
    whose first weight gains input rows in ``target`` (the source's rows kept first; the new rows
    are zero). Layers the source lacks are left as built and returned by name."""
    new = []
    have = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        if not layer.weights:
            continue
        if layer.name not in have:
            new.append(layer.name)
            continue
        values = have[layer.name].get_weights()
        shapes = [tuple(w.shape) for w in layer.weights]
        if layer.name in grown and values and shapes[0][0] > values[0].shape[0]:
            kernel = np.zeros(shapes[0], dtype=values[0].dtype)
            kernel[:values[0].shape[0]] = values[0]
            values[0] = kernel
        if [v.shape for v in values] != shapes:
            raise PaperReproError(f"--init-from: layer {layer.name!r} has shapes {[v.shape for v in values]} in the "
                                  f"source and {shapes} in the new model; the topologies differ")
        layer.set_weights(values)
    return new


def checked_source(source: str | os.PathLike, model: ModelConfig) -> tuple[runs.RunInfo, Path]:
    """(the source run's record, its checkpoint directory), refused in one line unless its topology is
    ``model``; called before a new run writes anything."""
    run, ck = source_checkpoint(source)
    info = runs.read_run_info(run)
    if info.preset.model != model:
        raise PaperReproError(f"--init-from {source}: its preset {info.preset.name!r} has another topology "
                              f"than this run's ({info.preset.model} vs {model})")
    return info, ck


def warm_start(gan: CosmoGAN, source: str | os.PathLike, model: ModelConfig) -> dict:
    """Set ``gan``'s networks (of topology ``model``) from the checkpoint ``source`` (see the module
    docstring) and return the record to keep in ``init.json``. The source's topology must be ``model``."""
    info, ck = checked_source(source, model)
    values, meta = runs.load_checkpoint(ck)
    base = CosmoGAN.from_preset(info.preset, seed=0)
    base.set_state(values)
    for target, src, grown in ((gan.generator, base.generator, {"dense"}),
                               (gan.discriminator, base.discriminator, set())):
        for name in _copy_layers(target, src, grown):
            layer = target.get_layer(name)
            layer.set_weights([np.zeros(tuple(w.shape), dtype=w.dtype) for w in layer.weights])
    return {"source": str(source), "source_preset": info.preset.name, "global_step": int(meta["global_step"]),
            "sha256": sha256_file(ck / "state.npz")}


def write_record(run: Path, record: dict) -> None:
    """Keep the warm start's record in the run directory (atomically)."""
    runs.write_json(run / RECORD, record)


def read_record(run: Path) -> dict | None:
    """The warm start recorded in ``run``, or None."""
    path = run / RECORD
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PaperReproError(f"{path}: unreadable ({exc})") from None
