"""Training crops held as their parent maps and corners, for training without the crops on disk.

The paper's training set is 200 crops of 256^2 from each of 1,000 parent maps of 1024^2: 52 GB as
crops, 4.2 GB as parents. :class:`ParentCrops` keeps the parents and the (parent, row, column) index
the dataset builder writes (``<split>_index.npy``), so a batch is cut when it is needed, and the
crops are bit for bit those of the on-disk dataset. :meth:`ParentCrops.simulate` regenerates the
parents and corners of a dataset configuration from its seeds, with no dataset on disk at all.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..errors import PaperReproError
from .datasets import child_seed, load_dataset, parent_map, parent_seed, progress_bar, random_crops


class ParentCrops:
    """Crops ``index`` (N, 3) = (parent, row, column) of ``crop``^2 pixels cut from ``parents`` (P, H, W)."""

    def __init__(self, parents: np.ndarray, index: np.ndarray, crop: int):
        parents = np.asarray(parents, np.float32)
        index = np.asarray(index, np.int32)
        if parents.ndim != 3:
            raise PaperReproError(f"parents must be (P, H, W), got shape {parents.shape}")
        if index.ndim != 2 or index.shape[1] != 3 or len(index) == 0:
            raise PaperReproError(f"the crop index must be (N, 3) = (parent, row, column), got {index.shape}")
        h, w = parents.shape[1:]
        if not 1 <= crop <= min(h, w):
            raise PaperReproError(f"crop size {crop} does not fit parent maps of {h}x{w}")
        if (index[:, 0].min() < 0 or index[:, 0].max() >= len(parents) or index[:, 1].min() < 0
                or index[:, 2].min() < 0 or index[:, 1].max() > h - crop or index[:, 2].max() > w - crop):
            raise PaperReproError("the crop index points outside the parent maps")
        self.parents, self.index, self.crop = parents, index, int(crop)

    def __len__(self) -> int:
        return len(self.index)

    def crops(self, idx) -> np.ndarray:
        """Crops ``idx`` (k,) as a (k, crop, crop) float32 array, in that order."""
        c = self.crop
        out = np.empty((len(idx), c, c), np.float32)
        for k, (p, r, col) in enumerate(self.index[np.asarray(idx)]):
            out[k] = self.parents[p, r:r + c, col:col + c]
        return out

    @classmethod
    def simulate(cls, config, split: str = "train", *, n_parents: int | None = None,
                 progress: bool = True, workers: int = 1) -> "ParentCrops":
        """The parents and crop corners of ``split`` of a dataset configuration (first ``n_parents``
        parents; default all), regenerated from its seeds exactly as the dataset builder makes them;
        ``workers`` processes simulate the parents (each map depends on its seed alone)."""
        total = getattr(config.splits, split)
        n = total if n_parents is None else int(n_parents)
        if not 1 <= n <= total:
            raise PaperReproError(f"{config.name} has {total} {split} parent maps; asked for {n_parents}")
        size, c = config.simulation.map_size, config.crop_size
        parents = np.empty((n, size, size), np.float32)
        index = np.empty((n * config.crops_per_map, 3), np.int32)
        bar = progress_bar(n, progress, f"parents {config.name}/{split}")
        with ProcessPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
            maps = pool.map(parent_map, [config] * n, [split] * n, range(n), chunksize=4) if pool else \
                (parent_map(config, split, i) for i in range(n))
            for i, kappa in enumerate(maps):
                parents[i] = kappa
                bar.update(1)
        for i in range(n):
            ss = parent_seed(config, split, i)
            _, corners = random_crops(parents[i], c, config.crops_per_map, np.random.default_rng(child_seed(ss, 1)))
            rows = slice(i * config.crops_per_map, (i + 1) * config.crops_per_map)
            index[rows, 0], index[rows, 1:] = i, corners
        bar.close()
        return cls(parents, index, c)

    @classmethod
    def from_dataset(cls, directory: str | os.PathLike, split: str = "train", *,
                     progress: bool = True) -> "ParentCrops":
        """The parents of a simulated dataset's split (regenerated from its manifest's configuration)
        with the crop index it wrote."""
        dataset = load_dataset(directory)
        index = dataset.index(split)
        source = cls.simulate(dataset.config, split, n_parents=int(index[:, 0].max()) + 1, progress=progress)
        if not np.array_equal(source.index, index):
            raise PaperReproError(f"{directory}: the recorded {split} crop corners differ from those of "
                                  "the dataset configuration's seeds")
        return source
