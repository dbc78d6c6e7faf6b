"""Latent vectors and generation: z ~ N(0, 1) from one seeded stream, maps in convergence units."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..errors import PaperReproError


def latents(n: int, latent_dim: int, seed: int) -> Iterator[np.ndarray]:
    """z ~ N(0, 1), (n, latent_dim) float32, drawn from one seeded stream in blocks of 1024."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, 1024):
        yield rng.standard_normal((min(1024, n - start), latent_dim), dtype=np.float32)


def generate(generator, n: int, seed: int, *, batch_size: int = 256, data_scale: float = 1.0,
             progress: bool = False, params: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Yield generated maps (b, H, W) float32 in convergence units (tanh output / data_scale).

    The maps depend only on ``seed`` and ``n``'s prefix: map i is the same whatever the batch size.
    ``params``: a conditional generator's normalised parameters, one row (P,) for every map
    (:mod:`paper_repro.gan.conditional`).
    """
    if n <= 0:
        raise PaperReproError(f"number of maps must be positive, got {n}")
    if batch_size <= 0:
        raise PaperReproError(f"batch size must be positive, got {batch_size}")
    latent_dim = int(generator.inputs[0].shape[-1])
    if (len(generator.inputs) > 1) != (params is not None):
        raise PaperReproError("a conditional generator makes maps at given parameters (Omega_m, sigma_8), "
                              "an unconditional one takes none" if params is not None else
                              "this generator is conditional: it makes maps at given parameters (Omega_m, "
                              "sigma_8), which this command does not take yet")
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n, unit="map", desc="generate")
    for z in latents(n, latent_dim, seed):
        for s in range(0, len(z), batch_size):
            zb = z[s:s + batch_size]
            inputs = zb if params is None else [zb, np.repeat(np.reshape(params, (1, -1)), len(zb), axis=0)]
            out = generator(inputs, training=False)
            maps = np.asarray(out, dtype=np.float32)[..., 0] / np.float32(data_scale)
            if bar is not None:
                bar.update(len(maps))
            yield maps
    if bar is not None:
        bar.close()
