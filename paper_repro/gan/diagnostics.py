"""Has the discriminator memorised the training set? Its verdicts on training, held-out and generated maps.

A discriminator that has learned the distribution calls training and held-out real maps real
equally often; one that has memorised the training set (limited data; Karras et al. 2020) calls
the training maps real far more often. Used after each epoch by the training loop's monitor
(discriminator.csv) and on a finished run by ``paper-repro diagnose``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..config import ConditionalPreset
from ..errors import PaperReproError
from ..maps.io import open_maps
from . import runs
from .conditional import ConditionalCosmoGAN, normalise_parameters
from .cosmogan import CosmoGAN
from .latents import generate, latents
from .models import inference_copy


def discriminator_verdict(discriminator, maps: np.ndarray, data_scale: float,
                          params: np.ndarray | None = None) -> dict[str, float]:
    """The fraction of ``maps`` (kappa, (N, H, W)) a discriminator calls real (logit > 0), their mean
    logit and their number; inference-mode batch norm, so the verdict changes no state. ``params``:
    a conditional discriminator's normalised parameters of each map (N, P)."""
    logits = []
    for s in range(0, len(maps), 256):
        x = np.asarray(maps[s:s + 256], np.float32)[..., None] * np.float32(data_scale)
        inputs = x if params is None else [x, np.asarray(params[s:s + 256], np.float32)]
        logits.append(np.asarray(discriminator(inputs, training=False), np.float64)[:, 0])
    lg = np.concatenate(logits)
    return {"real_fraction": float(np.mean(lg > 0)), "mean_logit": float(np.mean(lg)), "n": len(lg)}


def monitor_sets(info: runs.RunInfo, maps: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The fixed training and (when the run has one) development maps whose verdicts the training
    loop logs after each epoch ({} when ``monitor_maps`` is 0); drawn with their own generator, so
    training is unchanged."""
    n = info.preset.training.monitor_maps
    if n == 0:
        return {}
    rng = np.random.default_rng([seed, 7])
    sets = {"training": np.asarray(maps[np.sort(rng.choice(len(maps), min(n, len(maps)), replace=False))])}
    if info.development is not None:
        dev = open_maps(info.development, size=info.preset.model.image_size)
        sets["development"] = np.asarray(dev[np.sort(rng.choice(len(dev), min(n, len(dev)), replace=False))])
    return sets


def discriminator_overfitting(run: str | os.PathLike, heldout: str | os.PathLike | None = None, *,
                              n: int = 4000, seed: int = 0) -> dict[str, dict[str, float]]:
    """How the discriminator of a run's latest checkpoint judges training maps, real maps it never
    saw, their 90-degree rotations, and generated maps: per set the fraction called real (logit > 0),
    the mean logit and the number of maps. A memorising discriminator calls the training maps real
    far more often than held-out ones, and their rotations look unseen to it too. ``heldout``
    defaults to the run's development set. Inference-mode batch norm.
    """
    run = Path(run)
    info = runs.read_run_info(run)
    p, t = info.preset, info.preset.training
    if n < 1:
        raise PaperReproError(f"n must be positive, got {n}")
    ck = runs.latest_checkpoint(run)
    if ck is None:
        raise PaperReproError(f"{run}: no checkpoint, so no discriminator to diagnose")
    if isinstance(p, ConditionalPreset):
        if heldout is not None:
            raise PaperReproError(f"{run} is a conditional run: its held-out maps are its grid's own (with their "
                                  "parameters); drop --heldout")
        return conditional_overfitting(info, ck, n=n, seed=seed)
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


def held_out_pairs(grid) -> tuple[np.ndarray, np.ndarray]:
    """(maps, parameters) real maps never trained on at the training cosmologies: every training
    node's development split (its validation split where it has no development maps)."""
    maps, params = [], []
    for name in grid.node_names("train"):
        split = "development" if "development" in grid.node(name).splits else "validation"
        m, q = grid.split(name, split)
        maps.append(np.asarray(m))
        params.append(q)
    return np.concatenate(maps), np.concatenate(params)


def conditional_overfitting(info: runs.RunInfo, checkpoint: Path, *, n: int, seed: int) -> dict[str, dict[str, float]]:
    """:func:`discriminator_overfitting` of a conditional run: D scored with each map's parameters;
    training maps drawn from its grid, held-out maps the training nodes' development maps
    (:func:`held_out_pairs`), generated maps at the drawn training maps' parameters."""
    from ..maps.cosmo_grid import load_cosmo_grid

    p, t = info.preset, info.preset.training
    grid = load_cosmo_grid(info.data)
    train_maps, train_params = grid.training()
    held, held_params = held_out_pairs(grid)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(train_maps), min(n, len(train_maps)), replace=False))
    hold = np.sort(rng.choice(len(held), min(n, len(held)), replace=False))
    y_train = normalise_parameters(train_params[pick], p.parameters)
    gan = ConditionalCosmoGAN.from_preset(p, seed=seed)
    state, _ = runs.load_checkpoint(checkpoint)
    gan.set_state(state)
    generator = inference_copy(gan.generator, t, info.seed, normalise_parameters(train_params, p.parameters))
    z = np.concatenate(list(latents(len(pick), p.model.latent_dim, seed)))
    generated = np.concatenate([np.asarray(generator([z[s:s + 256], y_train[s:s + 256]], training=False))[..., 0]
                                for s in range(0, len(z), 256)]) / np.float32(t.data_scale)

    def verdict(maps: np.ndarray, y: np.ndarray) -> dict[str, float]:
        return discriminator_verdict(gan.discriminator, maps, t.data_scale, y)

    train_sel = np.asarray(train_maps[pick])
    return {"training": verdict(train_sel, y_train),
            "training, rotated 90 deg": verdict(np.ascontiguousarray(np.rot90(train_sel, 1, axes=(1, 2))), y_train),
            "held-out": verdict(held[hold], normalise_parameters(held_params[hold], p.parameters)),
            "generated": verdict(generated, y_train)}
