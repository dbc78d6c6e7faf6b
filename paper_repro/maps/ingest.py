"""A user's own convergence maps as paper_repro data: ``paper-repro ingest`` and FITS map sets.

:func:`ingest` cuts seeded random crops of a user's parent maps (FITS as LensTools writes them: the
map in the primary HDU, its side in degrees in ``ANGLE``; or ``.npy`` with an angle given) into
train / validation / development / auxiliary splits, every parent map in one split only, and writes
the on-disk format of :func:`~paper_repro.maps.datasets.build_dataset` (``{split}.npy``,
``{split}_index.npy``, ``manifest.json``). :func:`stack_maps` turns a folder of FITS maps that are
already the size a model needs into a one-file map set, for ``validate`` and ``train``.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import SPLITS
from ..errors import PaperReproError
from .datasets import (
    MANIFEST,
    MANIFEST_FORMAT,
    RunningStats,
    load_manifest,
    package_versions,
    progress_bar,
    random_crops,
)
from .io import FITS_SUFFIXES, NpyWriter, atomic_path, check_maps, check_npy, read_fits, sha256_file

#: spawn key of the seeded permutation that assigns parent maps to splits (split codes are 0-3)
ASSIGN_KEY = len(SPLITS)
#: relative tolerance within which the parent maps' pixel scales count as one
PIXEL_SCALE_RTOL = 1e-6
KIND = "paper_repro convergence-map dataset ingested from user maps"


def is_fits(path: str | os.PathLike) -> bool:
    """True for a FITS file name (``.fits``, ``.fit``, ``.fts``, ``.fits.gz``)."""
    return Path(path).name.lower().endswith(FITS_SUFFIXES)


def is_fits_input(path: str | os.PathLike | None) -> bool:
    """True when ``path`` names FITS maps: a FITS file, or a folder (a folder of ``.npy`` splits with
    a dataset manifest is not one)."""
    if path is None:
        return False
    path = Path(path)
    return is_fits(path) or (path.is_dir() and not (path / MANIFEST).exists())


def expand_sources(paths) -> list[Path]:
    """The map files named by ``paths``: files as given, folders as their FITS files (sorted by name)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and is_fits(f))
            if not found:
                raise PaperReproError(f"{p}: no FITS maps ({', '.join(FITS_SUFFIXES)}) in this folder")
            files += found
        elif not p.exists():
            raise PaperReproError(f"{p}: no such file or folder")
        else:
            files.append(p)
    if len({f.resolve() for f in files}) != len(files):
        raise PaperReproError("the same map file is given twice")
    return files


@dataclass(frozen=True)
class ParentMap:
    """One parent map of the user's: where it is, and what the manifest records of it."""

    path: Path
    name: str                  # relative name recorded in the manifest
    item: int | None           # map index in a .npy stack (None: the file holds one map)
    size: int                  # side in pixels (maps are square)
    angle_deg: float           # side in degrees
    sha256: str                # of the whole file

    @property
    def pixel_arcmin(self) -> float:
        return self.angle_deg * 60.0 / self.size

    @property
    def label(self) -> str:
        return self.name if self.item is None else f"{self.name}[{self.item}]"

    def record(self) -> dict:
        out = {"file": self.name, "sha256": self.sha256, "size": self.size, "angle_deg": self.angle_deg,
               "pixel_arcmin": self.pixel_arcmin}
        return out if self.item is None else out | {"item": self.item}

    def read(self, angle_deg: float | None = None) -> np.ndarray:
        """The map (size, size) float32, checked (finite, square)."""
        if self.item is None and is_fits(self.path):
            return read_fits(self.path, angle_deg=angle_deg)[0]
        stack = _open_npy(self.path, check_finite=False)    # checked once by scan_sources
        return np.asarray(stack[self.item or 0], dtype=np.float32)


def _open_npy(path: Path, *, check_finite: bool = True) -> np.ndarray:
    """A ``.npy`` of one map (H, W) or a stack of maps (N, H, W), memory-mapped, as (N, H, W), checked."""
    check_npy(path)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise PaperReproError(f"{path}: not a readable .npy file ({exc})") from None
    if arr.ndim not in (2, 3):
        raise PaperReproError(f"{path}: expected one 2-D map (H, W) or a stack (N, H, W), found shape {arr.shape}")
    return check_maps(arr[None] if arr.ndim == 2 else arr, name=str(path), check_finite=check_finite)


def _relative_names(files: list[Path]) -> list[str]:
    """Names of ``files`` relative to their common folder (never an absolute path)."""
    resolved = [f.resolve() for f in files]
    root = Path(os.path.commonpath([r.parent for r in resolved]))
    return [r.relative_to(root).as_posix() for r in resolved]


def scan_sources(paths, *, angle_deg: float | None = None, progress: bool = False) -> list[ParentMap]:
    """Read and check every parent map once (2-D, square, finite, angle known) and checksum its file."""
    files = expand_sources(paths)
    if angle_deg is not None and not (math.isfinite(angle_deg) and angle_deg > 0):
        raise PaperReproError(f"--angle must be a positive number of degrees, got {angle_deg}")
    parents: list[ParentMap] = []
    bar = progress_bar(len(files), progress, "check maps")
    for path, name in zip(files, _relative_names(files)):
        digest = sha256_file(path)
        if is_fits(path):
            kappa, angle = read_fits(path, angle_deg=angle_deg)
            parents.append(ParentMap(path, name, None, kappa.shape[0], angle, digest))
        elif path.name.lower().endswith(".npy"):
            if angle_deg is None:
                raise PaperReproError(f"{path}: a .npy map has no angle; pass --angle DEG (its side in degrees)")
            stack = _open_npy(path)
            items = [None] if stack.ndim == 3 and len(stack) == 1 else range(len(stack))
            parents += [ParentMap(path, name, i, stack.shape[1], float(angle_deg), digest) for i in items]
        else:
            raise PaperReproError(f"{path}: unknown map format; expected FITS ({', '.join(FITS_SUFFIXES)}) "
                                  f"or .npy")
        bar.update(1)
    bar.close()
    first = parents[0]
    for p in parents[1:]:
        if not math.isclose(p.pixel_arcmin, first.pixel_arcmin, rel_tol=PIXEL_SCALE_RTOL):
            raise PaperReproError(f"{p.path}: pixels of {p.pixel_arcmin:.6g} arcmin, but {first.label} has "
                                  f"{first.pixel_arcmin:.6g} arcmin: one dataset needs one pixel scale")
    return parents


def assign_splits(n_parents: int, counts: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Parent-map indices of each split: a seeded permutation dealt out in split order."""
    counts = {s: int(counts.get(s, 0)) for s in SPLITS}
    if any(n < 0 for n in counts.values()) or sum(counts.values()) == 0:
        raise PaperReproError(f"--splits: expected non-negative numbers of parent maps, at least one "
                              f"positive, got {counts}")
    need = sum(counts.values())
    if need > n_parents:
        asked = ",".join(f"{s}={n}" for s, n in counts.items() if n)
        raise PaperReproError(f"too few parent maps: the splits ({asked}) need {need}, the inputs hold "
                              f"{n_parents}; splits are by parent map, so each map goes to one split")
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(ASSIGN_KEY,))).permutation(n_parents)
    out, start = {}, 0
    for s in SPLITS:
        if counts[s]:
            out[s] = np.sort(order[start:start + counts[s]])
            start += counts[s]
    return out


def crop_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Generator of the crop corners of parent ``index`` of ``split``: SeedSequence(seed, (code, index))."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS.index(split), int(index))))


def _check_out(out: Path, overwrite: bool) -> None:
    """Raise unless ``out`` can take a dataset (a new or dataset-free folder, or ``overwrite``)."""
    if out.exists() and not out.is_dir():
        raise PaperReproError(f"{out}: exists and is not a directory")
    if (out / MANIFEST).exists() and not overwrite:
        raise PaperReproError(f"{out}: already holds a dataset ({MANIFEST}); choose another directory "
                              f"or overwrite it")


def _prepare_out(out: Path, overwrite: bool) -> bool:
    """Check ``out`` can take a dataset; remove a replaced one's files. True if the folder is new."""
    _check_out(out, overwrite)
    if (out / MANIFEST).exists():
        (out / MANIFEST).unlink()           # an overwrite in progress never looks complete
        for old in SPLITS:
            for stale in (out / f"{old}.npy", out / f"{old}_index.npy"):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    return created


@contextlib.contextmanager
def _removed_on_error(out: Path, created: bool):
    """Yield a list for the files a build writes; on an error remove them (and ``out`` if new)."""
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for p in written:
            with contextlib.suppress(OSError):
                p.unlink()
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _write_manifest(out: Path, manifest: dict) -> None:
    """``out/manifest.json``, atomically (written last: a dataset without it is not complete)."""
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")


def _write_index(path: Path, index: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, index)


def ingest(sources, out: str | os.PathLike, *, crop: int, crops_per_map: int, splits: dict[str, int],
           seed: int = 0, angle_deg: float | None = None, overwrite: bool = False,
           progress: bool = False) -> Path:
    """Build a dataset in ``out`` from a user's parent maps; return the manifest path.

    ``sources``: FITS files (``ANGLE`` in degrees; ``angle_deg`` where it is missing), folders of
    them, or ``.npy`` files of one map or a stack (with ``angle_deg``). All parents must share one
    pixel scale; any size at least ``crop``. ``splits`` gives parent maps per split, dealt by a seeded
    permutation; each parent gives ``crops_per_map`` crops of ``crop``^2 at seeded random corners
    (:func:`crop_rng`), so the crop angle is crop x pixel scale. Writes as :func:`~.datasets.build_dataset`:
    ``{split}.npy``, ``{split}_index.npy`` rows (parent index within the split, row, column), and
    ``manifest.json`` last (sources by relative name with SHA-256, angle and pixel scale); on an error
    the files of this build are removed.
    """
    for name, value, low in (("--crop", crop, 1), ("--crops-per-map", crops_per_map, 1), ("--seed", seed, 0)):
        if not (isinstance(value, (int, np.integer)) and value >= low):
            raise PaperReproError(f"{name} must be an integer >= {low}, got {value!r}")
    out = Path(out)
    _check_out(out, overwrite)
    parents = scan_sources(sources, angle_deg=angle_deg, progress=progress)
    small = min(parents, key=lambda p: p.size)
    if crop > small.size:
        raise PaperReproError(f"{small.path}: the map is {small.size}x{small.size} px, smaller than the "
                              f"{crop} px crop (--crop)")
    chosen = assign_splits(len(parents), splits, seed)
    need = sum(len(ids) for ids in chosen.values()) * crops_per_map * (4 * crop * crop + 12)
    probe = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    if need > shutil.disk_usage(probe).free:
        raise PaperReproError(f"{out}: the dataset needs {need / 1e9:.2f} GB, only "
                              f"{shutil.disk_usage(probe).free / 1e9:.2f} GB free")

    pixel_arcmin = parents[0].pixel_arcmin
    created = _prepare_out(out, overwrite)
    with _removed_on_error(out, created) as written:
        bar = progress_bar(sum(len(ids) for ids in chosen.values()), progress, "crop maps")
        entries = {}
        for split, ids in chosen.items():
            n = len(ids) * crops_per_map
            index = np.empty((n, 3), dtype=np.int32)
            running = RunningStats()
            path, ipath = out / f"{split}.npy", out / f"{split}_index.npy"
            with NpyWriter(path, n, crop) as writer:
                for i, pid in enumerate(ids):
                    crops, corners = random_crops(parents[pid].read(angle_deg), crop, crops_per_map,
                                                  crop_rng(seed, split, i))
                    writer.write(crops)
                    running.add(crops)
                    rows = slice(i * crops_per_map, (i + 1) * crops_per_map)
                    index[rows, 0] = i
                    index[rows, 1:] = corners
                    bar.update(1)
            written.append(path)
            _write_index(ipath, index)
            written.append(ipath)
            entries[split] = {
                "file": path.name, "shape": [n, crop, crop], "dtype": "float32",
                "bytes": path.stat().st_size, "sha256": sha256_file(path), "n_maps": n,
                "n_parent_maps": len(ids), "parents": [int(p) for p in ids],
                "index_file": ipath.name, "index_sha256": sha256_file(ipath),
                "pixel_stats": running.as_dict()}
        bar.close()
        used = set(np.concatenate(list(chosen.values())).tolist())
        manifest = {
            "format": MANIFEST_FORMAT,
            "kind": KIND,
            "name": out.name,
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            # not a DatasetConfig: the maps were not simulated (the "source" key says so)
            "config": {"source": "ingest", "crop_size": crop, "crops_per_map": crops_per_map,
                       "splits": {s: int(splits.get(s, 0)) for s in SPLITS}, "seed": seed,
                       "angle_option_deg": angle_deg},
            "sources": [p.record() for p in parents],
            "unused_sources": [i for i in range(len(parents)) if i not in used],
            "crop_size": crop,
            "angle_deg": crop * pixel_arcmin / 60.0,
            "pixel_arcmin": pixel_arcmin,
            "crops_per_map": crops_per_map,
            "seeds": {
                "seed": seed,
                "scheme": f"parents dealt to splits in split order by numpy default_rng(SeedSequence(seed, "
                          f"spawn_key=({ASSIGN_KEY},))).permutation; crop corners of parent i of split s "
                          f"from default_rng(SeedSequence(seed, spawn_key=(code(s), i))); codes train 0, "
                          f"validation 1, development 2, auxiliary 3",
            },
            "versions": package_versions(),
            "splits": entries,
        }
        _write_manifest(out, manifest)
    return out / MANIFEST


def stack_maps(sets: dict[str, str | os.PathLike], out: str | os.PathLike, *, angle_deg: float | None = None,
               size: int | None = None, progress: bool = False) -> tuple[dict[str, Path], float]:
    """Each FITS map set (a FITS file, or a folder of them: one map each) as ``out/{name}.npy``; returns
    the paths and the maps' common side angle in degrees (``ANGLE``, or ``angle_deg`` where missing).

    Every map of every set must have one size (``size`` if given) and angle. ``out/manifest.json``
    (the dataset format: one split per set, no parent index, as each map is its own parent) records
    the sources by relative name and SHA-256; a folder already holding the same sources is reused
    as it is, one holding others is refused.
    """
    out = Path(out)
    scanned = {name: scan_sources([src], angle_deg=angle_deg, progress=progress) for name, src in sets.items()}
    first = next(iter(scanned.values()))[0]
    for parents in scanned.values():
        for p in parents:
            want = first.size if size is None else size
            if p.size != want:
                hint = f"; cut {want}^2 crops with 'paper-repro ingest --crop {want}'" if p.size > want else ""
                raise PaperReproError(f"{p.path}: a {p.size}x{p.size} px map, expected {want}x{want}"
                                      + ("" if size is None else " (the model's maps)") + hint)
            if not math.isclose(p.angle_deg, first.angle_deg, rel_tol=PIXEL_SCALE_RTOL):
                raise PaperReproError(f"{p.path}: ANGLE {p.angle_deg:g} deg, but {first.path} has "
                                      f"{first.angle_deg:g} deg: the maps compared need one angle")
    records = {name: [p.record() for p in parents] for name, parents in scanned.items()}
    paths = {name: out / f"{name}.npy" for name in sets}
    if (out / MANIFEST).exists():
        manifest = load_manifest(out)
        if manifest.get("sources") == records and all(p.exists() for p in paths.values()):
            return paths, first.angle_deg
        raise PaperReproError(f"{out}: already holds maps stacked from other files ({MANIFEST}); remove it "
                              f"or choose another folder")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    with _removed_on_error(out, created) as written:
        entries = {}
        for name, parents in scanned.items():
            bar = progress_bar(len(parents), progress, f"stack {name} maps")
            with NpyWriter(paths[name], len(parents), first.size) as writer:
                for p in parents:
                    writer.write(p.read(angle_deg))
                    bar.update(1)
            bar.close()
            written.append(paths[name])
            entries[name] = {"file": paths[name].name, "shape": [len(parents), first.size, first.size],
                             "dtype": "float32", "bytes": paths[name].stat().st_size,
                             "sha256": sha256_file(paths[name]), "n_maps": len(parents)}
        manifest = {"format": MANIFEST_FORMAT, "kind": "paper_repro map sets stacked from FITS maps",
                    "config": {"source": "fits"}, "sources": records, "crop_size": first.size,
                    "angle_deg": first.angle_deg, "pixel_arcmin": first.pixel_arcmin,
                    "versions": package_versions(), "splits": entries}
        _write_manifest(out, manifest)
    return paths, first.angle_deg
