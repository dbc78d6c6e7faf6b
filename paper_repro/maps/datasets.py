"""Simulated datasets of convergence maps: crops, seeds, manifests, fingerprints, build and load.

A dataset is random crops of large simulated maps in train/validation/development/auxiliary
splits, one memory-mapped ``{split}.npy`` (N, H, W) float32 per split, with a ``manifest.json``
(settings, seeds, versions, checksums) written last. Loaders check every split against the
manifest and raise :class:`~paper_repro.errors.PaperReproError` naming the file.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import shutil
from importlib import metadata
from pathlib import Path

import numpy as np

from ..config import SPLITS, DatasetConfig, get_dataset_preset
from ..errors import PaperReproError
from .io import NpyWriter, atomic_path, check_npy, open_maps, read_json, sha256_file
from .simulation import get_simulator

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1

#: contiguous blocks of maps summarised by :func:`fingerprint`
FINGERPRINT_BLOCKS = 64
#: largest difference of a block mean or standard deviation, in units of the mean block standard
#: deviation, for which two fingerprints name the same maps (last-bit changes measured ~1e-12)
FINGERPRINT_TOLERANCE = 1e-4


def fingerprint(maps: np.ndarray, blocks: int = FINGERPRINT_BLOCKS) -> dict:
    """Float64 mean and standard deviation of each of ``blocks`` contiguous blocks of maps.

    A SHA-256 changes with the last bit of one pixel, and the simulator's float64 arithmetic (NumPy's
    exp and log have CPU-specific SIMD code) rounds differently on different CPUs; this summary does
    not, yet another seed, preset or crop set moves it by orders of magnitude more than the tolerance. Compare with :func:`fingerprint_difference`.
    """
    n = len(maps)
    if n == 0:
        raise PaperReproError("fingerprint: no maps")
    edges = np.linspace(0, n, min(blocks, n) + 1).round().astype(int)
    means, stds = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        block = np.asarray(maps[a:b], dtype=np.float64)
        means.append(float(block.mean()))
        stds.append(float(block.std()))
    return {"shape": [int(x) for x in maps.shape], "block_mean": means, "block_std": stds}


def fingerprint_difference(a: dict, b: dict) -> float:
    """Largest difference of a block mean or standard deviation between two fingerprints, in units of
    the mean block standard deviation of ``a``; ``inf`` when the shapes differ."""
    if list(a["shape"]) != list(b["shape"]):
        return math.inf
    scale = float(np.mean(a["block_std"])) or 1.0
    d = max(np.max(np.abs(np.subtract(a["block_mean"], b["block_mean"]))),
            np.max(np.abs(np.subtract(a["block_std"], b["block_std"]))))
    return float(d) / scale


def package_versions() -> dict[str, str]:
    """Versions of the packages that make a dataset (for its manifest)."""
    out = {"python": platform.python_version()}
    for pkg in ("paper_repro", "numpy", "scipy", "pyccl", "astropy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def random_crops(image: np.ndarray, size: int, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` crops (n, size, size) at uniformly random positions inside ``image``, and their corners.

    Corners (n, 2) are (row, column) of the top-left pixel; crops never wrap around the edge
    (the paper's maps were not periodic).
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise PaperReproError(f"random_crops: expected one 2-D map, found shape {image.shape}")
    h, w = image.shape
    if not (isinstance(size, (int, np.integer)) and 1 <= size <= min(h, w)):
        raise PaperReproError(f"random_crops: crop size must be in [1, {min(h, w)}], got {size!r}")
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise PaperReproError(f"random_crops: number of crops must be positive, got {n!r}")
    rng = np.random.default_rng(rng)
    corners = np.stack([rng.integers(0, h - size + 1, n), rng.integers(0, w - size + 1, n)], axis=1)
    crops = np.empty((n, size, size), dtype=image.dtype)
    for k, (r, c) in enumerate(corners):
        crops[k] = image[r:r + size, c:c + size]
    return crops, corners


def split_entropy(config, split: str) -> int:
    """Root seed of a split: ``seed`` for train/validation/development, ``aux_seed`` for auxiliary."""
    return config.aux_seed if split == "auxiliary" else config.seed


def parent_seed(config, split: str, index: int) -> np.random.SeedSequence:
    """Seed of parent map ``index`` of ``split``: SeedSequence(split root, spawn_key=(split code, index)).

    Parent maps of different splits (and indices) are distinct streams, so no parent is shared.
    """
    if split not in SPLITS:
        raise PaperReproError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return np.random.SeedSequence(split_entropy(config, split),
                                  spawn_key=(SPLITS.index(split), int(index)))


def child_seed(ss: np.random.SeedSequence, k: int) -> np.random.SeedSequence:
    """Child ``k`` of a parent-map seed: 0 seeds the field, 1 the crop corners."""
    return np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (k,))


def parent_map(config, split: str, index: int) -> np.ndarray:
    """Regenerate parent (large) map ``index`` of ``split`` of a dataset config, bit for bit."""
    return get_simulator(config.simulation).map(child_seed(parent_seed(config, split, index), 0))


def parent_crops(config, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The crops (crops_per_map, c, c) and corners the dataset builder cuts from one parent map."""
    return simulated_crops(get_simulator(config.simulation), config, split, index)


def simulated_crops(sim, config, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`parent_crops` with the simulator ``sim`` of ``config.simulation`` made once by the
    caller (its set-up costs more than one map); NaN or inf in a crop is an error."""
    ss = parent_seed(config, split, index)
    kappa = sim.map(child_seed(ss, 0))
    crops, corners = random_crops(kappa, config.crop_size, config.crops_per_map,
                                  np.random.default_rng(child_seed(ss, 1)))
    if not np.isfinite(crops).all():
        raise PaperReproError(f"{split} parent map {index}: simulation gave NaN/inf")
    return crops, corners


class RunningStats:
    """Pixel statistics accumulated crop chunk by crop chunk (float64 sums)."""

    def __init__(self) -> None:
        self.n = 0
        self.s1 = self.s2 = 0.0
        self.lo, self.hi = np.inf, -np.inf
        self.outside = 0
        self.maps_outside = 0
        self.n_maps = 0

    def add(self, crops: np.ndarray) -> None:
        flat = crops.reshape(len(crops), -1)
        self.n += flat.size
        self.s1 += float(flat.sum(dtype=np.float64))
        self.s2 += float(np.square(flat).sum(dtype=np.float64))
        lo, hi = flat.min(axis=1), flat.max(axis=1)
        self.lo, self.hi = min(self.lo, float(lo.min())), max(self.hi, float(hi.max()))
        bad = (lo < -1.0) | (hi > 1.0)
        if bad.any():
            self.outside += int(np.count_nonzero(np.abs(flat[bad]) > 1.0))
            self.maps_outside += int(bad.sum())
        self.n_maps += len(flat)

    def as_dict(self) -> dict:
        mean = self.s1 / self.n
        return {"mean": mean, "std": float(np.sqrt(max(self.s2 / self.n - mean ** 2, 0.0))),
                "min": self.lo, "max": self.hi,
                "pixel_fraction_outside_unit": self.outside / self.n,
                "map_fraction_outside_unit": self.maps_outside / self.n_maps}


def check_output(out: Path, need: int, overwrite: bool) -> Path:
    """The manifest path of a dataset to be built in ``out``, after checking that ``out`` is a
    directory or absent, holds no dataset (unless ``overwrite``) and has room for ``need`` bytes."""
    if out.exists() and not out.is_dir():
        raise PaperReproError(f"{out}: exists and is not a directory")
    manifest_path = out / MANIFEST
    if manifest_path.exists() and not overwrite:
        raise PaperReproError(f"{out}: already holds a dataset ({MANIFEST}); choose another "
                              f"directory or overwrite it")
    probe = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    if need > free:
        raise PaperReproError(f"{out}: the dataset needs {need / 1e9:.2f} GB, only "
                              f"{free / 1e9:.2f} GB free")
    return manifest_path


def build_dataset(out: str | os.PathLike, config="cpu", *, overwrite: bool = False,
                  progress: bool = False) -> Path:
    """Simulate parent maps, cut random crops, write one ``{split}.npy`` per split and the manifest.

    For each split with P parent maps: P maps from independent seeds (:func:`parent_seed`), K
    crops each, written chunk by chunk with :class:`NpyWriter` (memory does not grow with P), and
    ``{split}_index.npy`` (P*K, 3) int32 rows (parent index, row, column). ``manifest.json``
    (settings, seeds, counts, versions, SHA-256 of every file) is written last and atomically, so
    an interrupted build never looks complete; on any error the files of this build are removed.
    Returns the manifest path.
    """
    cfg = get_dataset_preset(config)
    out = Path(out)
    splits = cfg.splits.items()
    c = cfg.crop_size
    manifest_path = check_output(out, sum(n * cfg.crops_per_map * c * c * 4 for _, n in splits), overwrite)

    created_dir = not out.exists()
    sim = get_simulator(cfg.simulation)       # C_ell and the field set-up, once
    written: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        if manifest_path.exists():
            manifest_path.unlink()            # an overwrite in progress never looks complete
            for old in SPLITS:                # no stale split of the replaced dataset stays
                for stale in (out / f"{old}.npy", out / f"{old}_index.npy"):
                    with contextlib.suppress(FileNotFoundError):
                        stale.unlink()
        total = sum(n for _, n in splits)
        bar = progress_bar(total, progress, f"simulate {cfg.name}")
        stats = {}
        for split, n_parent in splits:
            n_crops = n_parent * cfg.crops_per_map
            index = np.empty((n_crops, 3), dtype=np.int32)
            running = RunningStats()
            path = out / f"{split}.npy"
            with NpyWriter(path, n_crops, c) as writer:
                for i in range(n_parent):
                    crops, corners = simulated_crops(sim, cfg, split, i)
                    writer.write(crops)
                    running.add(crops)
                    rows = slice(i * cfg.crops_per_map, (i + 1) * cfg.crops_per_map)
                    index[rows, 0] = i
                    index[rows, 1:] = corners
                    bar.update(1)
            written.append(path)
            ipath = out / f"{split}_index.npy"
            with atomic_path(ipath) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, index)
            written.append(ipath)
            stats[split] = running.as_dict()
        bar.close()

        sim_cfg = cfg.simulation
        manifest = {
            "format": MANIFEST_FORMAT,
            "kind": "paper_repro convergence-map dataset",
            "name": cfg.name,
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "config": cfg.to_dict(),
            "cosmology": dataclasses.asdict(sim_cfg.cosmology) | {
                "Omega_L": sim_cfg.cosmology.Omega_L,
                "baryon_fraction": sim_cfg.cosmology.baryon_fraction,
                "matter_power_spectrum": "halofit", "limber": True},
            "z_source": sim_cfg.z_source,
            "field_model": sim_cfg.model,
            "shift": sim.shift,
            "shift_source": (None if sim_cfg.model == "gaussian" else
                             "empty-beam |kappa_min(z_s)|" if sim_cfg.shift is None else "user"),
            "parent_map_size": sim_cfg.map_size,
            "parent_angle_deg": sim_cfg.angle_deg,
            "fine_factor": sim_cfg.fine_factor,
            "crop_size": c,
            "angle_deg": cfg.crop_angle_deg,
            "pixel_arcmin": sim_cfg.pixel_arcmin,
            "crops_per_map": cfg.crops_per_map,
            "seeds": {
                "seed": cfg.seed, "auxiliary_seed": cfg.aux_seed,
                "scheme": "parent map i of split s: numpy SeedSequence(root, spawn_key=(code(s), i)); "
                          "field from child (.., 0), crop corners from child (.., 1); root = seed, "
                          "auxiliary_seed for 'auxiliary'; codes train 0, validation 1, "
                          "development 2, auxiliary 3",
            },
            "versions": package_versions(),
            "splits": {},
        }
        for split, n_parent in splits:
            path, ipath = out / f"{split}.npy", out / f"{split}_index.npy"
            manifest["splits"][split] = {
                "file": path.name, "shape": [n_parent * cfg.crops_per_map, c, c], "dtype": "float32",
                "bytes": path.stat().st_size, "sha256": sha256_file(path),
                "n_maps": n_parent * cfg.crops_per_map, "n_parent_maps": n_parent,
                "parent_seed": {"root": split_entropy(cfg, split), "code": SPLITS.index(split)},
                "index_file": ipath.name, "index_sha256": sha256_file(ipath),
                "pixel_stats": stats[split],
            }
        with atomic_path(manifest_path) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    except BaseException:
        for p in written:
            with contextlib.suppress(OSError):
                p.unlink()
        if created_dir:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    return manifest_path


def progress_bar(total: int, enabled: bool, desc: str):
    """A tqdm bar on stderr (a no-op object when disabled)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="map", disable=not enabled, leave=False)


def load_manifest(directory: str | os.PathLike) -> dict:
    """The parsed ``manifest.json`` of a dataset directory, with its required keys checked."""
    directory = Path(directory)
    if not directory.exists():
        raise PaperReproError(f"{directory}: no such dataset directory")
    if not directory.is_dir():
        raise PaperReproError(f"{directory}: expected a dataset directory, found a file")
    path = directory / MANIFEST
    if not path.exists():
        raise PaperReproError(f"{directory}: no {MANIFEST} (not a dataset, or its build did not finish)")
    manifest = read_json(path)
    if not isinstance(manifest, dict):
        raise PaperReproError(f"{path}: expected a JSON object, found {type(manifest).__name__}")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise PaperReproError(f"{path}: expected manifest format {MANIFEST_FORMAT}, "
                              f"found {manifest.get('format')!r}")
    for key in ("splits", "angle_deg", "crop_size", "config"):
        if key not in manifest:
            raise PaperReproError(f"{path}: missing key {key!r}")
    if not isinstance(manifest["splits"], dict) or not manifest["splits"]:
        raise PaperReproError(f"{path}: 'splits' must be a non-empty object")
    for name, entry in manifest["splits"].items():
        for key in ("file", "shape", "dtype", "bytes", "sha256"):
            if not isinstance(entry, dict) or key not in entry:
                raise PaperReproError(f"{path}: split {name!r} misses key {key!r}")
    return manifest


def open_split(directory: str | os.PathLike, name: str, *, verify_checksum: bool = False,
               check_finite: bool = True, manifest: dict | None = None) -> np.ndarray:
    """Open split ``name`` of a dataset read-only (memory-mapped (N, H, W) float32), checked.

    Always checks the manifest, the file's size, shape and dtype; ``check_finite`` reads every
    value once; ``verify_checksum`` compares the SHA-256 with the manifest (reads the file).
    """
    directory = Path(directory)
    manifest = load_manifest(directory) if manifest is None else manifest
    splits = manifest["splits"]
    if name not in splits:
        raise PaperReproError(f"{directory}: no split {name!r}; the dataset has "
                              f"{', '.join(splits) or 'none'}")
    entry = splits[name]
    path = directory / entry["file"]
    if not path.exists():
        raise PaperReproError(f"{path}: missing (listed in {MANIFEST} for split {name!r})")
    found = path.stat().st_size
    if found != entry["bytes"]:
        raise PaperReproError(f"{path}: expected {entry['bytes']} bytes (manifest), found {found} "
                              f"(truncated or replaced)")
    if verify_checksum:
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise PaperReproError(f"{path}: checksum mismatch: manifest sha256 {entry['sha256'][:16]}..., "
                                  f"file {digest[:16]}...")
    arr = open_maps(path, size=int(entry["shape"][1]), check_finite=check_finite)
    if list(arr.shape) != list(entry["shape"]):
        raise PaperReproError(f"{path}: expected shape {tuple(entry['shape'])} (manifest), "
                              f"found {arr.shape}")
    if arr.dtype != np.dtype(entry["dtype"]):
        raise PaperReproError(f"{path}: expected dtype {entry['dtype']} (manifest), found {arr.dtype}")
    return arr


class Dataset:
    """A checked dataset directory: ``manifest``, ``config``, ``angle_deg``, and splits by name."""

    def __init__(self, directory: str | os.PathLike, manifest: dict, *, check_finite: bool):
        self.path = Path(directory)
        self.manifest = manifest
        self._check_finite = check_finite

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    @property
    def angle_deg(self) -> float:
        return float(self.manifest["angle_deg"])

    @property
    def config(self):
        """The :class:`~paper_repro.config.DatasetConfig` the dataset was built from."""
        try:
            return DatasetConfig(**self.manifest["config"])
        except TypeError as exc:
            raise PaperReproError(f"{self.path / MANIFEST}: invalid config ({exc})") from None

    def __getitem__(self, name: str) -> np.ndarray:
        return open_split(self.path, name, manifest=self.manifest, check_finite=self._check_finite)

    def index(self, name: str) -> np.ndarray:
        """(N, 3) int32 rows (parent index, row, column) of split ``name``."""
        entry = self.manifest["splits"].get(name)
        if entry is None or "index_file" not in entry:
            raise PaperReproError(f"{self.path}: no crop index for split {name!r}")
        path = self.path / entry["index_file"]
        if not path.exists():
            raise PaperReproError(f"{path}: missing (listed in {MANIFEST})")
        check_npy(path)
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise PaperReproError(f"{path}: not a readable .npy file ({exc})") from None


def load_dataset(directory: str | os.PathLike, *, verify_checksum: bool = False,
                 check_finite: bool = False) -> Dataset:
    """Open and check a dataset directory written by :func:`build_dataset`.

    Checks the manifest and, for every split, the file's presence, size, shape and dtype (fast);
    ``verify_checksum`` also compares SHA-256 sums, ``check_finite`` reads every value.
    """
    manifest = load_manifest(directory)
    for name in manifest["splits"]:
        open_split(directory, name, manifest=manifest, verify_checksum=verify_checksum,
                   check_finite=check_finite)
        entry = manifest["splits"][name]
        if verify_checksum and "index_file" in entry:
            ipath = Path(directory) / entry["index_file"]
            if not ipath.exists() or sha256_file(ipath) != entry.get("index_sha256"):
                raise PaperReproError(f"{ipath}: missing or checksum mismatch with {MANIFEST}")
    return Dataset(directory, manifest, check_finite=check_finite)
