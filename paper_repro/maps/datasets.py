"""Reading and writing convergence maps and datasets.

Checked memory-mapped ``.npy`` sets and atomic writers; single maps as FITS (``ANGLE`` header in
degrees, LensTools' convention) and ``.npz``; simulated datasets (random crops of large maps in
train/validation/development/auxiliary splits, with a ``manifest.json`` written last).
Maps are float32 arrays (N, H, W) in convergence units. Every loader checks rank, dtype, shape
and finiteness and raises :class:`~paper_repro.errors.PaperReproError` naming the file.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import PaperReproError

#: maps checked for finiteness per chunk (bounded memory on memory-mapped sets)
CHECK_CHUNK = 1024


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` as a Path if it is a non-empty regular file; PaperReproError naming it otherwise."""
    path = Path(path)
    if not path.exists():
        raise PaperReproError(f"{path}: no such file")
    if path.is_dir():
        raise PaperReproError(f"{path}: is a directory, expected a {what}")
    if path.stat().st_size == 0:
        raise PaperReproError(f"{path}: file is empty")
    return path


def open_maps(path: str | os.PathLike, *, size: int | None = None, check_finite: bool = True,
              min_maps: int = 1) -> np.ndarray:
    """Open a ``.npy`` set of maps (N, H, W) or (N, H, W, 1) read-only through a memory map.

    Returns an (N, H, W) view (never loaded whole). ``size`` asks for H == W == size.
    """
    path = require_file(path, ".npy file of maps")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise PaperReproError(f"{path}: not a readable .npy file ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise PaperReproError(f"{path}: expected a .npy array, found {type(arr).__name__}")
    return check_maps(arr, name=str(path), size=size, check_finite=check_finite, min_maps=min_maps)


def check_maps(arr: np.ndarray, *, name: str = "maps", size: int | None = None,
               check_finite: bool = True, min_maps: int = 1) -> np.ndarray:
    """Validate an array of maps and return it as (N, H, W); raise PaperReproError otherwise."""
    arr = np.asarray(arr) if not isinstance(arr, np.ndarray) else arr
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise PaperReproError(
            f"{name}: expected maps of shape (N, H, W) or (N, H, W, 1), found shape {arr.shape}")
    if arr.dtype.kind != "f":
        raise PaperReproError(f"{name}: expected float32 or float64 maps, found dtype {arr.dtype}")
    n, h, w = arr.shape
    if n < min_maps:
        raise PaperReproError(f"{name}: expected at least {min_maps} maps, found {n}")
    if h != w:
        raise PaperReproError(f"{name}: expected square maps, found {h}x{w}")
    if size is not None and h != size:
        raise PaperReproError(f"{name}: expected {size}x{size} maps, found {h}x{w}")
    if check_finite:
        for start in range(0, n, CHECK_CHUNK):
            chunk = np.asarray(arr[start:start + CHECK_CHUNK])
            if not np.isfinite(chunk).all():
                bad = start + int(np.flatnonzero(~np.isfinite(chunk).reshape(len(chunk), -1).all(1))[0])
                raise PaperReproError(f"{name}: map {bad} contains NaN or inf")
    return arr


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, else delete it.

    Readers never see a half-written file: either the old file or the complete new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)   # the permissions of an ordinary new file, not mkstemp's 0600
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class NpyWriter:
    """Stream maps into a ``.npy`` file of known shape (N, H, W) chunk by chunk, atomically.

    Memory does not grow with N (each chunk goes straight to the file: no memory map whose
    pages would stay resident). The file appears at ``path`` only after all N maps were
    written and :meth:`close` succeeded; on an exception the partial file is removed.
    """

    def __init__(self, path: str | os.PathLike, n: int, size: int, dtype=np.float32):
        if n <= 0:
            raise PaperReproError(f"number of maps must be positive, got {n}")
        if size <= 0:
            raise PaperReproError(f"map size must be positive, got {size}")
        self.path = Path(path)
        self.n = n
        self.size = size
        self.dtype = np.dtype(dtype)
        self.filled = 0
        self._fh = None
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        try:
            self._fh = open(self._tmp, "wb")
            np.lib.format.write_array_header_1_0(self._fh, {
                "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                "shape": (n, size, size)})
        except BaseException:
            self.abort()
            raise

    def write(self, maps: np.ndarray) -> None:
        maps = np.asarray(maps)
        if maps.ndim == 4 and maps.shape[-1] == 1:
            maps = maps[..., 0]
        if maps.ndim == 2:
            maps = maps[None]
        if maps.ndim != 3 or maps.shape[1:] != (self.size, self.size):
            raise PaperReproError(f"{self.path}: expected maps of shape (k, {self.size}, {self.size}), "
                                  f"found {maps.shape}")
        k = len(maps)
        if self.filled + k > self.n:
            raise PaperReproError(f"{self.path}: more than the declared {self.n} maps written")
        self._fh.write(np.ascontiguousarray(maps, dtype=self.dtype).data)
        self.filled += k

    def close(self) -> None:
        if self.filled != self.n:
            self.abort()
            raise PaperReproError(f"{self.path}: {self.filled} of {self.n} maps written")
        self._fh.close()
        self._fh = None
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(Exception):
                self._fh.close()
            self._fh = None
        with contextlib.suppress(Exception):
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "NpyWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# ============================================================================ single maps: FITS, npz
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz")


def write_fits(path: str | os.PathLike, kappa: np.ndarray, angle_deg: float, *,
               z_source: float | None = None, cosmology=None, overwrite: bool = True) -> Path:
    """Write one map (H, W) as a FITS primary image with ``ANGLE`` (side, degrees) in its header.

    The header follows LensTools' ``ConvergenceMap.save``/``load`` (``ANGLE`` in degrees, ``Z`` the
    source redshift, OMEGA_M, OMEGA_L, W0, WA, h, ITYPE), so LensTools reads the map as it is.
    """
    from astropy.io import fits

    path = Path(path)
    kappa = np.asarray(kappa)
    if kappa.ndim == 3 and kappa.shape[0] == 1:
        kappa = kappa[0]
    if kappa.ndim != 2 or kappa.dtype.kind != "f":
        raise PaperReproError(f"{path}: expected one float map (H, W), found {kappa.dtype} {kappa.shape}")
    if not (isinstance(angle_deg, (int, float, np.floating)) and 0 < float(angle_deg) < 360
            and np.isfinite(angle_deg)):
        raise PaperReproError(f"{path}: angle_deg must be in (0, 360) degrees, got {angle_deg!r}")
    if path.exists() and not overwrite:
        raise PaperReproError(f"{path}: exists (pass overwrite=True to replace it)")
    hdu = fits.PrimaryHDU(np.ascontiguousarray(kappa))
    hdu.header["ANGLE"] = (float(angle_deg), "Side angle in degrees")
    if z_source is not None:
        hdu.header["Z"] = (float(z_source), "Redshift of the background sources")
    if cosmology is not None:
        hdu.header["H0"] = (100.0 * cosmology.h, "Hubble constant in km/s*Mpc")
        hdu.header["h"] = cosmology.h
        hdu.header["OMEGA_M"] = (cosmology.Omega_m, "Dark Matter density")
        hdu.header["OMEGA_L"] = (cosmology.Omega_L, "Dark Energy density")
        hdu.header["W0"] = (cosmology.w, "Dark Energy equation of state")
        hdu.header["WA"] = (0.0, "Dark Energy running equation of state")
        hdu.header["SIGMA8"] = (cosmology.sigma_8, "sigma_8")
        hdu.header["N_S"] = (cosmology.n_s, "spectral index")
        hdu.header["OMEGA_B"] = (cosmology.Omega_b, "baryon density")
    hdu.header["ITYPE"] = ("ConvergenceMap", "Image type")
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, overwrite=True, output_verify="exception")
    return path


def read_fits(path: str | os.PathLike, *, check_finite: bool = True) -> tuple[np.ndarray, float]:
    """Read one map from a FITS file: (kappa (H, W) float32, side angle in degrees from ``ANGLE``).

    As LensTools' default loader: data and ``ANGLE`` (degrees) from the primary HDU.
    """
    from astropy.io import fits

    path = require_file(path, "FITS map")
    try:
        with fits.open(path, memmap=False) as hdul:
            data = hdul[0].data
            header = hdul[0].header
            angle = header.get("ANGLE")
            data = None if data is None else np.array(data, dtype=np.float32)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise PaperReproError(f"{path}: not a readable FITS file ({exc})") from None
    if data is None:
        raise PaperReproError(f"{path}: the primary HDU holds no image")
    if data.ndim != 2:
        raise PaperReproError(f"{path}: expected a 2-D map in the primary HDU, found shape {data.shape}")
    if angle is None:
        raise PaperReproError(f"{path}: no ANGLE keyword (side angle in degrees) in the primary header")
    try:
        angle = float(angle)
    except (TypeError, ValueError):
        raise PaperReproError(f"{path}: ANGLE must be a number of degrees, found {angle!r}") from None
    if not (np.isfinite(angle) and angle > 0):
        raise PaperReproError(f"{path}: ANGLE must be a positive number of degrees, found {angle}")
    check_maps(data[None], name=str(path), check_finite=check_finite)
    return data, angle


def read_maps(path: str | os.PathLike, *, key: str | None = None, size: int | None = None,
              check_finite: bool = True) -> tuple[np.ndarray, float | None]:
    """Maps (N, H, W) and their side angle in degrees (None where the file does not say).

    ``.npy`` (memory-mapped, no angle), ``.npz`` (array ``key``, else ``maps``, else the only
    array; angle from an ``angle_deg`` entry if present), FITS (one map, angle from ``ANGLE``).
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(FITS_SUFFIXES):
        kappa, angle = read_fits(path, check_finite=check_finite)
        return check_maps(kappa[None], name=str(path), size=size, check_finite=False), angle
    if name.endswith(".npy"):
        return open_maps(path, size=size, check_finite=check_finite), None
    if name.endswith(".npz"):
        require_file(path, ".npz file of maps")
        try:
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                if key is None:
                    arrays = [n for n in names if n not in ("angle_deg", "angle")]
                    key = "maps" if "maps" in names else (arrays[0] if len(arrays) == 1 else None)
                    if key is None:
                        raise PaperReproError(
                            f"{path}: holds arrays {names}; say which with key= (no 'maps' entry)")
                if key not in names:
                    raise PaperReproError(f"{path}: no array {key!r}; found {names}")
                arr = z[key]
                angle = next((float(z[a]) for a in ("angle_deg", "angle") if a in names), None)
        except PaperReproError:
            raise
        except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError
            raise PaperReproError(f"{path}: not a readable .npz file ({exc})") from None
        if arr.ndim == 2:
            arr = arr[None]
        return check_maps(arr, name=f"{path}[{key}]", size=size, check_finite=check_finite), angle
    raise PaperReproError(f"{path}: unknown map format; expected .npy, .npz or .fits")


# ============================================================================ datasets
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
_HASH_CHUNK = 1 << 24


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 16 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_HASH_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


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
    import platform
    from importlib import metadata

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
    from ..config import SPLITS

    if split not in SPLITS:
        raise PaperReproError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return np.random.SeedSequence(split_entropy(config, split),
                                  spawn_key=(SPLITS.index(split), int(index)))


def _child(ss: np.random.SeedSequence, k: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (k,))


def parent_map(config, split: str, index: int) -> np.ndarray:
    """Regenerate parent (large) map ``index`` of ``split`` of a dataset config, bit for bit."""
    from .simulation import get_simulator

    return get_simulator(config.simulation).map(_child(parent_seed(config, split, index), 0))


def parent_crops(config, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The crops (crops_per_map, c, c) and corners the dataset builder cuts from one parent map."""
    kappa = parent_map(config, split, index)
    rng = np.random.default_rng(_child(parent_seed(config, split, index), 1))
    return random_crops(kappa, config.crop_size, config.crops_per_map, rng)


class _RunningStats:
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
    import datetime
    import shutil

    from ..config import get_dataset_preset
    from .simulation import get_simulator

    cfg = get_dataset_preset(config)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PaperReproError(f"{out}: exists and is not a directory")
    manifest_path = out / MANIFEST
    if manifest_path.exists() and not overwrite:
        raise PaperReproError(f"{out}: already holds a dataset ({MANIFEST}); choose another "
                              f"directory or overwrite it")
    splits = cfg.splits.items()
    c = cfg.crop_size
    need = sum(n * cfg.crops_per_map * c * c * 4 for _, n in splits)
    probe = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    if need > free:
        raise PaperReproError(f"{out}: the dataset needs {need / 1e9:.2f} GB, only "
                              f"{free / 1e9:.2f} GB free")

    created_dir = not out.exists()
    sim = get_simulator(cfg.simulation)       # C_ell and the field set-up, once
    written: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        if manifest_path.exists():
            manifest_path.unlink()            # an overwrite in progress never looks complete
            from ..config import SPLITS
            for old in SPLITS:                # no stale split of the replaced dataset stays
                for stale in (out / f"{old}.npy", out / f"{old}_index.npy"):
                    with contextlib.suppress(FileNotFoundError):
                        stale.unlink()
        total = sum(n for _, n in splits)
        bar = _progress(total, progress, f"simulate {cfg.name}")
        stats = {}
        for split, n_parent in splits:
            n_crops = n_parent * cfg.crops_per_map
            index = np.empty((n_crops, 3), dtype=np.int32)
            running = _RunningStats()
            path = out / f"{split}.npy"
            with NpyWriter(path, n_crops, c) as writer:
                for i in range(n_parent):
                    ss = parent_seed(cfg, split, i)
                    kappa = sim.map(_child(ss, 0))
                    crops, corners = random_crops(kappa, c, cfg.crops_per_map,
                                                  np.random.default_rng(_child(ss, 1)))
                    if not np.isfinite(crops).all():
                        raise PaperReproError(f"{split} parent map {i}: simulation gave NaN/inf")
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
        from ..config import SPLITS
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


def _progress(total: int, enabled: bool, desc: str):
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
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PaperReproError(f"{path}: not valid JSON ({exc})") from None
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
        from ..config import DatasetConfig

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
