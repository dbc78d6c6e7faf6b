"""Datasets over cosmology: maps at a grid of (Omega_m, sigma_8) nodes, for a conditional emulator.

A cosmology-grid directory holds

- ``train.npy`` (N, c, c) float32: the training crops of every training node, node after node;
  ``train_index.npy`` (N, 4) int32 rows (node, parent, row, column) and ``train_params.npy`` (N, 2)
  float64 (Omega_m, sigma_8) of each crop;
- ``nodes/<name>/``: one ordinary dataset (:func:`~paper_repro.maps.datasets.build_dataset`) per
  node, training nodes ``node-00`` ... and held-out nodes ``held-00`` ..., with the validation,
  development and auxiliary splits from the node's own seeds, and ``<split>_params.npy`` beside
  each ``<split>_index.npy``;
- ``manifest.json``, written last: the grid's settings, every node (role, parameters, seeds,
  directory, its rows of ``train.npy``) and the SHA-256 of every file above.

The training crops of node k are exactly the train split that node's :class:`DatasetConfig`
(:func:`node_config`) would build. :func:`load_cosmo_grid` opens and checks a directory;
:meth:`CosmoGrid.batches` yields (maps, parameters) pairs.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..config import COSMO_PARAMETERS, CosmoGridConfig, DatasetConfig, SplitSizes, get_cosmo_grid_preset
from ..errors import PaperReproError
from .datasets import (
    MANIFEST,
    build_dataset,
    check_output,
    load_dataset,
    package_versions,
    progress_bar,
    simulated_crops,
)
from .io import NpyWriter, atomic_path, check_npy, open_maps, read_json, sha256_file
from .simulation import get_simulator

GRID_FORMAT = 1
GRID_KIND = "paper_repro cosmology-grid dataset"


@dataclasses.dataclass(frozen=True)
class Node:
    """One node of a grid: its name (``node-07``, ``held-01``), role (``train`` or ``held_out``),
    (Omega_m, sigma_8) and dataset config (cosmology and seeds of its own)."""

    name: str
    role: str
    params: tuple[float, float]
    config: DatasetConfig


def node_config(grid: CosmoGridConfig, params: tuple[float, float], seed: int, splits: SplitSizes,
                name: str) -> DatasetConfig:
    """The dataset config of a node at ``params`` = (Omega_m, sigma_8): the grid's geometry, Omega_b
    at the fiducial baryon fraction, the shift of that cosmology, seeds ``seed`` and ``seed + 1``."""
    base = grid.node
    cos = base.simulation.cosmology
    om, s8 = params
    cosmology = dataclasses.replace(cos, Omega_m=om, sigma_8=s8, Omega_b=cos.baryon_fraction * om)
    return dataclasses.replace(base, name=name, simulation=dataclasses.replace(base.simulation, cosmology=cosmology),
                               splits=splits, seed=seed, auxiliary_seed=seed + 1)


def grid_nodes(grid: CosmoGridConfig | str) -> list[Node]:
    """Every node of a grid: the training nodes (Omega_m slowest), then the held-out nodes."""
    grid = get_cosmo_grid_preset(grid)
    out = [Node(f"node-{k:02d}", "train", p, node_config(grid, p, grid.seed + 2 * k, grid.node.splits,
                                                         f"{grid.name}/node-{k:02d}"))
           for k, p in enumerate(grid.training_nodes())]
    out += [Node(f"held-{j:02d}", "held_out", p, node_config(grid, p, grid.held_out_seed + 2 * j,
                                                             grid.held_out_splits, f"{grid.name}/held-{j:02d}"))
            for j, p in enumerate(grid.held_out)]
    return out


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def _file_entry(path: Path) -> dict:
    return {"file": path.name, "sha256": sha256_file(path)}


def build_cosmo_grid(out: str | os.PathLike, config: CosmoGridConfig | str = "cosmo-grid", *,
                     overwrite: bool = False, progress: bool = False) -> Path:
    """Simulate every node of a cosmology grid into ``out`` (layout: module docstring); returns the
    manifest's path. The manifest is written last and atomically; on any error what this build
    wrote is removed."""
    grid = get_cosmo_grid_preset(config)
    out = Path(out)
    nodes = grid_nodes(grid)
    c, k = grid.node.crop_size, grid.node.crops_per_map
    parents = sum(sum(n for _, n in node.config.splits.items()) for node in nodes)
    manifest_path = check_output(out, parents * k * c * c * 4, overwrite)
    created_dir = not out.exists()
    written: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        if manifest_path.exists():
            manifest_path.unlink()            # an overwrite in progress never looks complete
            shutil.rmtree(out / "nodes", ignore_errors=True)
        train_nodes = [n for n in nodes if n.role == "train"]
        per_node = grid.node.splits.train * k
        n_train = per_node * len(train_nodes)
        index = np.empty((n_train, 4), dtype=np.int32)
        params = np.empty((n_train, len(COSMO_PARAMETERS)), dtype=np.float64)
        bar = progress_bar(parents, progress, f"simulate {grid.name}")
        with NpyWriter(out / "train.npy", n_train, c) as writer:
            for t, node in enumerate(train_nodes):
                sim = get_simulator(node.config.simulation)
                for i in range(grid.node.splits.train):
                    crops, corners = simulated_crops(sim, node.config, "train", i)
                    writer.write(crops)
                    rows = slice(t * per_node + i * k, t * per_node + (i + 1) * k)
                    index[rows, 0], index[rows, 1], index[rows, 2:] = t, i, corners
                    params[rows] = node.params
                    bar.update(1)
        written.append(out / "train.npy")
        for name, array in (("train_index.npy", index), ("train_params.npy", params)):
            _save_npy(out / name, array)
            written.append(out / name)
        node_entries = []
        for t, node in enumerate(nodes):
            cfg = dataclasses.replace(node.config, splits=dataclasses.replace(node.config.splits, train=0))
            directory = out / "nodes" / node.name
            build_dataset(directory, cfg, overwrite=overwrite)
            files = {}
            for split, n_parent in cfg.splits.items():
                path = directory / f"{split}_params.npy"
                _save_npy(path, np.tile(np.asarray(node.params, dtype=np.float64), (n_parent * k, 1)))
                files[split] = _file_entry(path)
            bar.update(sum(n for _, n in cfg.splits.items()))
            entry = {"name": node.name, "role": node.role, "Omega_m": node.params[0], "sigma_8": node.params[1],
                     "Omega_b": node.config.simulation.cosmology.Omega_b, "directory": f"nodes/{node.name}",
                     "seed": node.config.seed, "auxiliary_seed": node.config.aux_seed, "params_files": files,
                     "shift": json.loads((directory / MANIFEST).read_text())["shift"]}
            if node.role == "train":
                entry["train_rows"] = [t * per_node, (t + 1) * per_node]
            node_entries.append(entry)
        bar.close()
        manifest = {
            "format": GRID_FORMAT, "kind": GRID_KIND, "name": grid.name,
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "config": grid.to_dict(), "parameters": list(COSMO_PARAMETERS),
            "hull": {"low": list(grid.low), "high": list(grid.high)},
            "crop_size": c, "angle_deg": grid.node.crop_angle_deg,
            "train": {"shape": [n_train, c, c], "dtype": "float32", "bytes": (out / "train.npy").stat().st_size,
                      **_file_entry(out / "train.npy"),
                      "index_file": "train_index.npy", "index_sha256": sha256_file(out / "train_index.npy"),
                      "index_columns": ["node", "parent", "row", "column"],
                      "params_file": "train_params.npy", "params_sha256": sha256_file(out / "train_params.npy")},
            "nodes": node_entries, "versions": package_versions(),
        }
        with atomic_path(manifest_path) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    except BaseException:
        if created_dir:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for p in written:
                with contextlib.suppress(OSError):
                    p.unlink()
            shutil.rmtree(out / "nodes", ignore_errors=True)
        raise
    return manifest_path


def _load_params(path: Path, n: int, sha256: str | None = None) -> np.ndarray:
    if not path.exists():
        raise PaperReproError(f"{path}: missing (listed in {MANIFEST})")
    if sha256 is not None and sha256_file(path) != sha256:
        raise PaperReproError(f"{path}: checksum mismatch with {MANIFEST}")
    check_npy(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise PaperReproError(f"{path}: not a readable .npy file ({exc})") from None
    if arr.shape != (n, len(COSMO_PARAMETERS)) or not np.isfinite(arr).all():
        raise PaperReproError(f"{path}: expected ({n}, {len(COSMO_PARAMETERS)}) finite parameters, "
                              f"found shape {arr.shape}")
    return arr


class CosmoGrid:
    """A checked cosmology-grid directory: its ``manifest``, nodes, training pairs and node datasets."""

    def __init__(self, directory: str | os.PathLike, manifest: dict, verify_checksum: bool = False):
        self.path = Path(directory)
        self.manifest = manifest
        self._verify = verify_checksum
        self._training = None           # (maps, params), read and checked once
        self._parents = None            # the combined train set's parent ids, read once

    @property
    def nodes(self) -> list[dict]:
        """The manifest's node entries (name, role, Omega_m, sigma_8, seeds, directory, ...)."""
        return list(self.manifest["nodes"])

    def node_names(self, role: str | None = None) -> list[str]:
        """Names of the nodes with ``role`` (``train``, ``held_out``; None: all)."""
        return [n["name"] for n in self.nodes if role is None or n["role"] == role]

    @property
    def angle_deg(self) -> float:
        return float(self.manifest["angle_deg"])

    def _node(self, name: str) -> dict:
        for n in self.nodes:
            if n["name"] == name:
                return n
        raise PaperReproError(f"{self.path}: no node {name!r}; the grid has {', '.join(self.node_names())}")

    def training(self) -> tuple[np.ndarray, np.ndarray]:
        """(maps (N, c, c) float32 memory map, parameters (N, 2) float64) of the combined train set,
        each row's parameters checked against its node's (read once; the parameters read-only)."""
        if self._training is None:
            self._training = self._read_training()
        return self._training

    def _read_training(self) -> tuple[np.ndarray, np.ndarray]:
        entry = self.manifest["train"]
        path = self.path / entry["file"]
        if self._verify and (not path.exists() or sha256_file(path) != entry["sha256"]):
            raise PaperReproError(f"{path}: missing or checksum mismatch with {MANIFEST}")
        maps = open_maps(path, size=int(entry["shape"][1]), check_finite=False)
        if list(maps.shape) != list(entry["shape"]):
            raise PaperReproError(f"{path}: expected shape {tuple(entry['shape'])} (manifest), found {maps.shape}")
        params = _load_params(self.path / entry["params_file"], len(maps),
                              entry["params_sha256"] if self._verify else None)
        for n in self.nodes:
            if n["role"] == "train":
                a, b = n["train_rows"]
                if not np.all(params[a:b] == (n["Omega_m"], n["sigma_8"])):
                    raise PaperReproError(f"{self.path / entry['params_file']}: rows {a}-{b} do not hold node "
                                          f"{n['name']}'s parameters")
        params.flags.writeable = False
        return maps, params

    def training_node(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(maps (N, c, c) memory map, parent ids (N,) int64) of training node ``name``'s rows of the
        combined train set (crops of one parent share its id)."""
        node = self._node(name)
        if node["role"] != "train":
            raise PaperReproError(f"{self.path}: node {name!r} is held out; it has no training maps")
        maps, _ = self.training()
        if self._parents is None:
            path = self.path / self.manifest["train"]["index_file"]
            try:
                index = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise PaperReproError(f"{path}: cannot read the training maps' index ({exc})") from None
            if index.ndim != 2 or len(index) != len(maps):
                raise PaperReproError(f"{path}: expected {len(maps)} index rows, found shape {index.shape}")
            self._parents = np.asarray(index[:, 1], dtype=np.int64)
        a, b = node["train_rows"]
        return maps[a:b], self._parents[a:b]

    def node(self, name: str):
        """The node's own :class:`~paper_repro.maps.datasets.Dataset` (validation, development, auxiliary)."""
        return load_dataset(self.path / self._node(name)["directory"], verify_checksum=self._verify)

    def split(self, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(maps, parameters (N, 2)) of one split of node ``name``."""
        node = self._node(name)
        maps = self.node(name)[split]
        files = node.get("params_files", {})
        if split not in files:
            raise PaperReproError(f"{self.path}: node {name!r} has no parameters for split {split!r}")
        params = _load_params(self.path / node["directory"] / files[split]["file"], len(maps),
                              files[split]["sha256"] if self._verify else None)
        return maps, params

    def batches(self, batch_size: int, seed: int, node: str | None = None, split: str = "train"):
        """Yield (maps (B, c, c) float32, parameters (B, 2) float32) batches in a seeded random
        order, once over the combined train set (``node`` None) or one node's ``split``; the last
        partial batch is dropped."""
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise PaperReproError(f"batch_size must be a positive integer, got {batch_size!r}")
        maps, params = self.training() if node is None else self.split(node, split)
        order = np.random.default_rng(seed).permutation(len(maps))
        for a in range(0, len(order) - batch_size + 1, batch_size):
            rows = np.sort(order[a:a + batch_size])
            yield np.asarray(maps[rows], dtype=np.float32), params[rows].astype(np.float32)


def load_cosmo_grid(directory: str | os.PathLike, *, verify_checksum: bool = False) -> CosmoGrid:
    """Open and check a directory written by :func:`build_cosmo_grid`."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.exists():
        raise PaperReproError(f"{directory}: no {MANIFEST} (not a cosmology grid, or its build did not finish)")
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("kind") != GRID_KIND:
        raise PaperReproError(f"{path}: not a cosmology-grid manifest (kind {GRID_KIND!r})")
    if manifest.get("format") != GRID_FORMAT:
        raise PaperReproError(f"{path}: expected grid format {GRID_FORMAT}, found {manifest.get('format')!r}")
    for key in ("train", "nodes", "angle_deg", "hull"):
        if key not in manifest:
            raise PaperReproError(f"{path}: missing key {key!r}")
    return CosmoGrid(directory, manifest, verify_checksum)


__all__ = ["Node", "node_config", "grid_nodes", "build_cosmo_grid", "CosmoGrid", "load_cosmo_grid"]
