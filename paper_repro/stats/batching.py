"""Chunked, threaded batches of maps: the machinery every summary statistic shares.

A statistic takes one map (H, W) or a batch (N, H, W) (float32 or float64, square) and returns 1-D
results for one map, (N, K) for a batch. :func:`as_batch` checks the input; :func:`iter_chunks`
promotes it to float64 chunk by chunk into one reused buffer (memory bounded by ``chunk_maps``
maps, about ``CHUNK_PIXELS`` pixels by default, whatever N is; memory-mapped input is never
loaded whole); :func:`run_parallel` splits the maps over threads (NumPy releases the GIL;
results never depend on the number of threads).
"""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np

from ..errors import PaperReproError
from ..maps.io import check_maps

#: default number of pixels promoted to float64 at once (4 maps of 256^2)
CHUNK_PIXELS = 2**18
#: buffers at most this large (bytes) are kept between calls, per thread (fresh memory costs page
#: faults on first touch: ~10 ms for the ~8 MB a 256^2 workspace needs, more than computing 8 maps)
KEEP_BYTES = 64 * 2**20

#: per-thread buffers kept between calls (see :func:`thread_buffer`)
THREAD_BUFFERS = threading.local()


def as_batch(maps, name: str = "maps") -> tuple[np.ndarray, bool]:
    """Return an (N, H, W) view of ``maps`` and whether the input was a single map. No copy.

    Checks rank, float dtype and squareness (not finiteness: :func:`iter_chunks` does, on the fly);
    at least one map of at least 5x5 pixels (LensTools' stencils reach two pixels away).
    """
    arr = maps if isinstance(maps, np.ndarray) else np.asarray(maps)
    single = arr.ndim == 2
    arr = check_maps(arr[None] if single else arr, name=name, check_finite=False, min_maps=0)
    n, h, w = arr.shape
    if n == 0 or h < 5:
        raise PaperReproError(
            f"{name}: expected at least one map of at least 5x5 pixels, found shape {arr.shape}")
    return arr, single


def unbatch(out: np.ndarray, single: bool) -> np.ndarray:
    """``out[0]`` for a single-map input (see :func:`as_batch`), else ``out`` as it is."""
    return out[0] if single else out


def thread_buffer(key: str, shape: tuple[int, ...], factory: Callable[[], object]):
    """This thread's buffer ``key`` of ``shape``, made by ``factory`` when missing or of another shape.

    Kept between calls when it has at most ``KEEP_BYTES`` (its ``nbytes``): reused memory costs no
    page faults, which is what makes the memory-bound per-map loops fast.
    """
    buf = getattr(THREAD_BUFFERS, key, None)
    if buf is not None and buf.shape == shape:
        return buf
    buf = factory()
    if buf.nbytes <= KEEP_BYTES:
        setattr(THREAD_BUFFERS, key, buf)
    return buf


def iter_chunks(arr: np.ndarray, chunk_maps: int | None, name: str = "maps",
                offset: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (start, maps[start:start + step] as C-contiguous float64), checking finiteness.

    Float32 (or strided, or memory-mapped) input is converted into one buffer reused for every
    chunk: a caller must not keep a chunk past the next iteration. ``offset`` only shifts the
    map numbers in error messages.
    """
    n, h, w = arr.shape
    step = max(1, CHUNK_PIXELS // (h * w)) if chunk_maps is None else int(chunk_maps)
    if step < 1:
        raise PaperReproError(f"chunk_maps: expected a positive number of maps, found {chunk_maps!r}")
    direct = arr.dtype == np.float64 and arr.flags.c_contiguous and not isinstance(arr, np.memmap)
    shape = (min(step, n), h, w)
    buf = None if direct else thread_buffer("chunk", shape, lambda: np.empty(shape))
    for start in range(0, n, step):
        src = arr[start:start + step]
        if direct:
            chunk = src
        else:
            chunk = buf[:len(src)]
            np.copyto(chunk, src, casting="same_kind")
        # a NaN or inf makes its map's sum non-finite (so may an overflow: then look closer)
        sums = np.add.reduce(chunk.reshape(len(chunk), -1), axis=1)
        if not np.isfinite(sums).all():
            for j in np.flatnonzero(~np.isfinite(sums)):
                if not np.isfinite(chunk[j]).all():
                    raise PaperReproError(f"{name}: map {offset + start + j} contains NaN or inf")
        yield start, chunk


#: thread pools by size, kept: their threads keep their per-thread buffers between calls
EXECUTORS: dict[int, ThreadPoolExecutor] = {}


def run_parallel(n: int, workers: int | None, fn: Callable[[int, int], None]) -> None:
    """Run fn(lo, hi) over contiguous ranges of the n maps, on ``workers`` threads (default 1)."""
    w = 1 if workers is None else int(workers)
    if w < 1:
        raise PaperReproError(f"workers: expected a positive number of threads, found {workers!r}")
    w = min(w, n)
    if w == 1:
        fn(0, n)
        return
    bounds = np.linspace(0, n, w + 1).astype(int)
    ex = EXECUTORS.get(w)
    if ex is None:
        ex = EXECUTORS[w] = ThreadPoolExecutor(w, thread_name_prefix="paper_repro.stats")
    for f in [ex.submit(fn, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]:
        f.result()


def check_edges(edges, name: str, min_len: int = 2) -> np.ndarray:
    """``edges`` as a float64 1-D array of at least ``min_len`` finite, strictly increasing values."""
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < min_len:
        raise PaperReproError(
            f"{name}: expected a 1-D array of at least {min_len} edges, found shape {e.shape}")
    if not np.isfinite(e).all() or np.any(np.diff(e) <= 0):
        raise PaperReproError(f"{name}: expected finite, strictly increasing edges, found {e[:6]}...")
    return e


def check_angle(angle_deg) -> float:
    """A map's side angle as a positive finite float (degrees); PaperReproError otherwise."""
    try:
        a = float(angle_deg)
    except (TypeError, ValueError):
        raise PaperReproError(
            f"angle_deg: expected a positive number of degrees, found {angle_deg!r}") from None
    if not (math.isfinite(a) and a > 0):
        raise PaperReproError(f"angle_deg: expected a positive number of degrees, found {angle_deg!r}")
    return a
