"""Calibrating and picking a conditional run's generator over its cosmology grid (``paper-repro pick``).

``pick --checkpoint C`` on a conditional run calibrates that generator over the grid's training
nodes (:mod:`paper_repro.gan.conditional_calibration`). ``pick`` without it calibrates each of the
last ``epochs`` epoch-end generators the same way and keeps the one whose maps are closest, over the
training nodes, to each node's development maps: at every training node, per certified mean
statistic (pixel histogram, P(ell), Minkowski functionals), the largest |z| of a component mean
(:class:`~.selection.WorstMeanScorer`'s W, the shape of certification's mean criterion); a candidate's
score is that W averaged over the nodes and the latent seeds. Development maps are 2 parent maps a
node, so one node's W carries its parents' noise; the average over 30 nodes is what ranks. Validation
and auxiliary maps, and the held-out nodes, are never used.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import PaperReproError
from ..gan.latents import generate
from ..maps.io import shown_path
from ..stats.twosample import mean_z
from .certification import STATISTICS, pixel_edges, statistics_of

#: generated maps per training node of a conditional calibration (30 nodes: 245,760 maps)
CALIBRATION_MAPS = 8192
#: epoch-end generators ``pick`` compares by default
PICK_EPOCHS = 10
#: generated maps per node and seed of the pick's score
PICK_MAPS = 1024


def _grid_of(run: Path, info, data):
    from ..maps.cosmo_grid import load_cosmo_grid

    path = data or info.data
    if path is None:
        raise PaperReproError(f"{run}: the run names no cosmology grid; pass --data GRID")
    return load_cosmo_grid(path)


def calibrate_conditional_checkpoint(run: str | os.PathLike, out: str | os.PathLike, checkpoint, *,
                                     data: str | os.PathLike | None = None, n_maps: int = CALIBRATION_MAPS,
                                     degree: int | None = None, progress: bool = True):
    """Calibrate a conditional run's ``checkpoint`` generator over the training nodes of its grid
    (``data``, default the run's; ``n_maps`` generated maps per node, polynomials of ``degree``, by
    default 2 for the 30-node grid) and write it as a calibrated run (``best/generator.keras``,
    ``best/calibration.json``). Returns the fit (:class:`~paper_repro.gan.conditional_calibration.
    ConditionalCalibrationFit`)."""
    from ..gan import conditional_calibration as cc
    from ..gan import runs

    run, out = Path(run), Path(out)
    runs.check_output_run(run, out)
    info = runs.read_run_info(run)
    nodes = cc.grid_nodes_for(_grid_of(run, info, data), info.preset)
    generator, preset = runs.load_generator(run, checkpoint)
    pattern, gain, fit = cc.fit_conditional(generator, nodes, data_scale=preset.training.data_scale,
                                            degree=degree, n_maps=n_maps, progress=progress)
    runs.write_calibrated_run(run, out, cc.calibrated_conditional(generator, pattern, gain, fit.degree),
                              runs.generator_path(run, checkpoint), fit)
    return fit


class NodeScorer:
    """Callable (generator, normalised parameters by node) -> {"W", "nodes": {node: W}}: at each
    training node the largest |z| of a component mean of the three certified mean statistics against
    the node's development maps, averaged over latent seeds; W the mean over nodes."""

    def __init__(self, grid, preset, *, seeds: tuple, n_maps: int = PICK_MAPS):
        from ..gan.conditional import normalise_parameters

        if n_maps < 2 or not seeds:
            raise PaperReproError(f"the pick needs at least 2 maps and one seed, got {n_maps} maps, seeds {seeds}")
        self.angle_deg, self.n_maps, self.seeds = preset.angle_deg, int(n_maps), tuple(int(s) for s in seeds)
        self.data_scale = preset.training.data_scale
        self.nodes = {}
        for n in grid.nodes:
            if n["role"] != "train":
                continue
            if "development" not in n.get("params_files", {}):
                raise PaperReproError(f"{shown_path(grid.path)}: node {n['name']} has no development maps, which the "
                                      "pick scores on; calibrate one generator with --checkpoint instead")
            dev, _ = grid.split(n["name"], "development")
            dev = np.asarray(dev)
            edges = pixel_edges(dev)
            stats = statistics_of(dev, self.angle_deg, edges)
            u = normalise_parameters([n["Omega_m"], n["sigma_8"]], preset.parameters, strict=True)[0]
            self.nodes[n["name"]] = (u, edges, {k: stats[k][1] for k in STATISTICS})
        if not self.nodes:
            raise PaperReproError(f"{grid.path}: no training nodes with development maps to pick on")

    def node_w(self, generator, name: str) -> float:
        u, edges, dev = self.nodes[name]
        ws = []
        for seed in self.seeds:
            maps = np.concatenate(list(generate(generator, self.n_maps, seed, data_scale=self.data_scale, params=u)))
            stats = statistics_of(maps, self.angle_deg, edges)
            z = np.concatenate([mean_z(stats[k][1], dev[k]) for k in STATISTICS])
            ws.append(float(np.max(np.where(np.isnan(z), 0.0, np.abs(z)))))
        return float(np.mean(ws))

    def __call__(self, generator) -> dict:
        per = {name: self.node_w(generator, name) for name in self.nodes}
        return {"W": float(np.mean(list(per.values()))), "nodes": per}


def epoch_candidates(run: Path, epochs: int) -> list[int]:
    """The last ``epochs`` epoch numbers with a generator in ``run/generators``."""
    have = sorted(int(p.name[6:10]) for p in (run / "generators").glob("epoch-*.weights.h5"))
    if not have:
        raise PaperReproError(f"{run}: no epoch-end generators in {run / 'generators'}")
    if epochs < 1:
        raise PaperReproError(f"--epochs must be at least 1, got {epochs}")
    return have[-epochs:]


def pick_conditional(run: str | os.PathLike, out: str | os.PathLike, *, data: str | os.PathLike | None = None,
                     seeds: tuple, epochs: int = PICK_EPOCHS, n_maps: int = PICK_MAPS,
                     calibration_maps: int = CALIBRATION_MAPS, progress: bool = True) -> dict:
    """Calibrate each of the last ``epochs`` epoch-end generators of conditional ``run`` over its grid,
    score it (:class:`NodeScorer`) and write the lowest-W one, calibrated, into run ``out`` with
    ``best/pick.json`` (every candidate's W and per-node W). Returns that record."""
    from ..gan import conditional_calibration as cc
    from ..gan import runs

    run, out = Path(run), Path(out)
    runs.check_output_run(run, out)
    info = runs.read_run_info(run)
    grid = _grid_of(run, info, data)
    candidates = epoch_candidates(run, epochs)
    nodes = cc.grid_nodes_for(grid, info.preset)
    scorer = NodeScorer(grid, info.preset, n_maps=n_maps, seeds=seeds)
    results, best = {}, None
    for i, epoch in enumerate(candidates, 1):
        generator, preset = runs.load_generator(run, epoch)
        pattern, gain, fit = cc.fit_conditional(generator, nodes, data_scale=preset.training.data_scale,
                                                n_maps=calibration_maps)
        model = cc.calibrated_conditional(generator, pattern, gain, fit.degree)
        results[epoch] = scorer(model)
        if best is None or results[epoch]["W"] < results[best[0]]["W"]:
            best = (epoch, model, fit)
        if progress:
            print(f"pick: epoch {epoch} ({i} of {len(candidates)}): W {results[epoch]['W']:.3f} over "
                  f"{len(scorer.nodes)} nodes", flush=True)
    epoch, model, fit = best
    record = {"metric": "mean over training nodes of the largest |z| of a component mean (pixel histogram, "
                        "P(ell), Minkowski functionals) vs the node's development maps, averaged over seeds",
              "grid": shown_path(grid.path), "maps_per_node": scorer.n_maps, "seeds": list(scorer.seeds),
              "epoch": epoch, "W": results[epoch]["W"],
              "candidates": {str(e): r for e, r in results.items()}}
    runs.write_calibrated_run(run, out, model, runs.generator_path(run, epoch), fit, extra={"pick.json": record})
    return record
