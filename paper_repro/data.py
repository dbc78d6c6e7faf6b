"""Reading and writing convergence maps: checked memory-mapped ``.npy`` sets and atomic writers.

Maps are float32 arrays (N, H, W) in convergence units. Every loader checks rank, dtype, shape
and finiteness and raises :class:`~paper_repro.errors.PaperReproError` naming the file.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import PaperReproError

#: maps checked for finiteness per chunk (bounded memory on memory-mapped sets)
CHECK_CHUNK = 1024


def open_maps(path: str | os.PathLike, *, size: int | None = None, check_finite: bool = True,
              min_maps: int = 1) -> np.ndarray:
    """Open a ``.npy`` set of maps (N, H, W) or (N, H, W, 1) read-only through a memory map.

    Returns an (N, H, W) view (never loaded whole). ``size`` asks for H == W == size.
    """
    path = Path(path)
    if not path.exists():
        raise PaperReproError(f"{path}: no such file")
    if path.is_dir():
        raise PaperReproError(f"{path}: is a directory, expected a .npy file of maps")
    if path.stat().st_size == 0:
        raise PaperReproError(f"{path}: file is empty")
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

    Memory does not grow with N. The file appears at ``path`` only after all N maps were
    written and :meth:`close` succeeded; on an exception the partial file is removed.
    """

    def __init__(self, path: str | os.PathLike, n: int, size: int, dtype=np.float32):
        if n <= 0:
            raise PaperReproError(f"number of maps must be positive, got {n}")
        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._arr = np.lib.format.open_memmap(self._tmp, mode="w+", dtype=dtype, shape=(n, size, size))
        self.n = n
        self.filled = 0

    def write(self, maps: np.ndarray) -> None:
        maps = np.asarray(maps)
        if maps.ndim == 4 and maps.shape[-1] == 1:
            maps = maps[..., 0]
        k = len(maps)
        if self.filled + k > self.n:
            raise PaperReproError(f"{self.path}: more than the declared {self.n} maps written")
        self._arr[self.filled:self.filled + k] = maps
        self.filled += k

    def close(self) -> None:
        if self.filled != self.n:
            self.abort()
            raise PaperReproError(f"{self.path}: {self.filled} of {self.n} maps written")
        self._arr.flush()
        del self._arr
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        if hasattr(self, "_arr"):
            del self._arr
        with contextlib.suppress(Exception):
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "NpyWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
