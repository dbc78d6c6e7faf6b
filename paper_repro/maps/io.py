"""Checked reading and atomic writing of convergence maps.

Memory-mapped ``.npy`` sets (N, H, W) float32 in convergence units, checked for rank, dtype, shape
and finiteness; single maps as FITS (``ANGLE`` header in degrees, LensTools' convention) and
``.npz``; atomic writes (:func:`atomic_path`, :class:`NpyWriter`) and file checksums. Every reader
raises :class:`~paper_repro.errors.PaperReproError` with one line naming the file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
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


#: leading bytes of file formats that are given where a ``.npy`` is expected, and how to name them
FILE_SIGNATURES = (
    (b"SIMPLE  =", "a FITS file"),
    (b"PK\x03\x04", "a .npz or other zip archive"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\x80", "a Python pickle"),
)
def describe_file(head: bytes) -> str:
    """What the first bytes of a file look like ("a FITS file", "a text file", ...), for messages."""
    for magic, what in FILE_SIGNATURES:
        if head.startswith(magic):
            return what
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file of unknown format"
    return "a text file" if all(c.isprintable() or c in "\t\r\n" for c in text) else \
        "a binary file of unknown format"


def check_npy(path: Path) -> None:
    """Raise PaperReproError naming ``path`` unless it is a complete ``.npy`` file.

    NumPy reports any other file (FITS, text, ...) as "pickled data" with ``allow_pickle`` advice,
    and a truncated one as an mmap length error; this names what the file is instead.
    """
    with open(path, "rb") as fh:
        head = fh.read(len(np.lib.format.MAGIC_PREFIX))
        if head != np.lib.format.MAGIC_PREFIX:
            head += fh.read(512 - len(head))
            what = describe_file(head)
            hint = (f"convert it with numpy.save('{path.stem}.npy', read_maps('{path.name}')[0]) "
                    f"or read it with paper_repro.maps.io.read_maps"
                    if what in ("a FITS file", "a .npz or other zip archive")
                    else "write maps with numpy.save")
            raise PaperReproError(f"{path}: {what}, expected a .npy array (N, H, W); {hint}")
        fh.seek(0)
        try:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(fh, max_header_size=1 << 20)
        except (ValueError, OSError, EOFError) as exc:
            raise PaperReproError(f"{path}: damaged .npy header ({exc})") from None
        offset = fh.tell()
    if dtype.hasobject:
        raise PaperReproError(f"{path}: holds Python objects, expected a float array (N, H, W)")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = path.stat().st_size - offset
    if found < expected:
        raise PaperReproError(f"{path}: truncated .npy file: shape {tuple(shape)} {dtype} needs "
                              f"{expected} bytes of data, found {found}")


def open_maps(path: str | os.PathLike, *, size: int | None = None, check_finite: bool = True,
              min_maps: int = 1) -> np.ndarray:
    """Open a ``.npy`` set of maps (N, H, W) or (N, H, W, 1) read-only through a memory map.

    Returns an (N, H, W) view (never loaded whole). ``size`` asks for H == W == size.
    """
    path = require_file(path, ".npy file of maps")
    check_npy(path)
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


def read_fits(path: str | os.PathLike, *, check_finite: bool = True,
              angle_deg: float | None = None) -> tuple[np.ndarray, float]:
    """Read one map from a FITS file: (kappa (H, W) float32, side angle in degrees from ``ANGLE``).

    As LensTools' default loader: data and ``ANGLE`` (degrees) from the primary HDU. ``angle_deg``
    stands in for a missing ``ANGLE``; where both are there they must agree.
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
    if angle is None and angle_deg is None:
        raise PaperReproError(f"{path}: no ANGLE keyword (side angle in degrees) in the primary header; "
                              f"pass --angle DEG")
    try:
        angle = float(angle_deg if angle is None else angle)
    except (TypeError, ValueError):
        raise PaperReproError(f"{path}: ANGLE must be a number of degrees, found {angle!r}") from None
    if not (np.isfinite(angle) and angle > 0):
        raise PaperReproError(f"{path}: ANGLE must be a positive number of degrees, found {angle}")
    if angle_deg is not None and not np.isclose(angle, angle_deg, rtol=1e-6, atol=0):
        raise PaperReproError(f"{path}: ANGLE {angle:g} deg in the header, but --angle {angle_deg:g}")
    if check_finite and not np.isfinite(data).all():
        raise PaperReproError(f"{path}: {int(np.count_nonzero(~np.isfinite(data)))} of {data.size} "
                              f"pixels are NaN or inf")
    check_maps(data[None], name=str(path), check_finite=False)
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


#: bytes read at a time by :func:`sha256_file`
HASH_CHUNK = 1 << 24


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 16 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(HASH_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as the project's records name it, never an absolute path of this machine: relative to
    the working directory when inside it, else its folder and file name (``reference/validation.npy``)."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(*p.parts[-2:]).as_posix()


def read_json(path: str | os.PathLike, what: str = "JSON"):
    """The parsed JSON file ``path``; a one-line error naming it when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PaperReproError(f"{path}: not valid {what} ({exc})") from None
