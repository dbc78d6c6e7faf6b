"""A discriminator as a feature map: its last convolutional activations of each map.

The birthday-paradox test (:func:`paper_repro.stats.birthday.birthday_test`) looks for
near-duplicates in this space too (Arora & Zhang 2017 use the discriminator's features); the
statistics stage takes any feature map, and this module makes one from a Keras discriminator.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from ..errors import PaperReproError
from ..gan.models import feature_extractor
from ..stats.distances import check_map_set


def discriminator_features(discriminator, maps, *, data_scale: float = 1.0, batch_size: int = 256,
                           out: str | os.PathLike | None = None) -> np.ndarray:
    """The discriminator's last convolutional activations of each map, flattened: (N, F) float32.

    Maps enter the discriminator as ``data_scale`` x kappa (as in training). Computed in batches;
    with ``out`` (a ``.npy`` path) the features are written there through a memory map, for sets
    too large to hold (32,768 maps of 256^2 give 17 GB of features in the paper's model).
    """
    arr = check_map_set(maps, "maps")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise PaperReproError(f"batch_size: expected a positive integer, found {batch_size!r}")
    expected = tuple(discriminator.inputs[0].shape[1:3])
    if expected != tuple(arr.shape[1:]):
        raise PaperReproError(f"maps: the discriminator takes {expected[0]}x{expected[1]} maps, "
                              f"found {arr.shape[1]}x{arr.shape[2]}")
    fe = feature_extractor(discriminator)
    n_feat = int(np.prod(fe.outputs[0].shape[1:]))
    n = arr.shape[0]
    res = (np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(n, n_feat))
           if out is not None else np.empty((n, n_feat), dtype=np.float32))
    scale = np.float32(data_scale)
    for s in range(0, n, batch_size):
        x = np.asarray(arr[s:s + batch_size], dtype=np.float32)
        if not np.isfinite(x).all():
            bad = s + int(np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(1))[0])
            raise PaperReproError(f"maps: map {bad} contains NaN or inf")
        f = fe([x[..., None] * scale], training=False)
        res[s:s + len(x)] = np.asarray(f, dtype=np.float32).reshape(len(x), -1)
    if out is not None:
        res.flush()
    return res


def discriminator_embedding(discriminator, *, data_scale: float = 1.0, batch_size: int = 256):
    """:func:`discriminator_features` of ``discriminator`` as a function ``f(maps, out=None)``, the
    ``features`` argument of :func:`~paper_repro.stats.birthday.birthday_test`."""
    return functools.partial(discriminator_features, discriminator, data_scale=data_scale,
                             batch_size=batch_size)
