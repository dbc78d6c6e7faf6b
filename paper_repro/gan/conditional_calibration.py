"""Output calibration of a conditional generator: the fixed pattern and mode gains as smooth functions of theta.

The conditional emulator keeps the stride-2 transposed convolutions of Table 1, so it keeps their two
linear errors (:mod:`paper_repro.gan.calibration`): a fixed pattern on the upsampling grid and single
Fourier modes too low or too high. Here both may vary with the parameters. At every training node
of the cosmology grid the pattern (the mean generated map less its spatial mean) and the log gain
per 2D mode, 0.5 ln(real power / generated power), are measured as the unconditional fit measures
them: the real power from the node's training maps, the generated from the generator's own maps at
the node's parameters, from a latent set of the node's own (:func:`node_seed`). Each pattern pixel and
each log gain is then fitted by least squares with a polynomial of ``degree`` in the normalised
parameters u (u in [-1, 1] over the grid's box, as the networks see them), over all training nodes:
between nodes the calibration interpolates smoothly, and the fit averages the nodes' sampling noise.
The latent sets are independent between nodes for that reason: one set shared by every node (as until
2026-12-07) gives generated map means and mode powers whose sampling error is the same smooth function
of u at every node, which the polynomials copy whole (for ``cpu64-shape`` it moved the parameters
recovered at the held-out nodes by 1.3-2.1 posterior sd, all the same way; docs/conditional.md).
Held-out nodes and validation or development maps are never used.

Unlike the unconditional calibration, the map mean (the k = 0 mode) is calibrated like every other
mode: its level to the real maps' mean kappa and its spread over maps to theirs. A generator trained
with a one-point term on standardised quantiles (``pdf_quantiles = "standardised"``) is blind to both,
and its maps' mean sat 0.1 pixel sd low at every node, the largest error of its pixel histogram
(docs/conditional.md).

The layer (``ConditionalSpectralCalibration``, Keras-serialisable) is part of the shipped model file:
G'(z, u) = F^-1[exp(L(u)) F(G(z, u) - P(u))], with P and L the fitted polynomials. Not in the paper.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import keras
import numpy as np
from keras import ops

from ..errors import PaperReproError
from .calibration import CALIBRATION_SEED, generated_moments, real_mode_power


def monomials(n_params: int, degree: int) -> list[tuple[int, ...]]:
    """Exponent tuples of the monomials of u up to ``degree``, constant first (degree 2, 2 parameters:
    1, u1, u2, u1^2, u1 u2, u2^2)."""
    out = []
    for d in range(degree + 1):
        for combo in itertools.combinations_with_replacement(range(n_params), d):
            out.append(tuple(combo.count(i) for i in range(n_params)))
    return out


def design_matrix(u: np.ndarray, degree: int) -> np.ndarray:
    """(N, T) values of the monomials (:func:`monomials`) at normalised parameters u (N, P)."""
    u = np.atleast_2d(np.asarray(u, np.float64))
    return np.stack([np.prod(u ** np.asarray(e), axis=1) for e in monomials(u.shape[1], degree)], axis=1)


def default_degree(n_nodes: int, n_params: int = 2, highest: int = 2) -> int:
    """The highest degree up to ``highest`` with at least twice as many nodes as terms (30 nodes in 2
    parameters: 2, 6 terms; 4 nodes: 0, a calibration the same at every theta)."""
    return max([d for d in range(highest + 1) if n_nodes >= 2 * len(monomials(n_params, d))], default=0)


@dataclass(frozen=True)
class ConditionalCalibrationFit:
    """What a conditional fit measured: nodes, maps, and how far the generator was from the real power."""
    degree: int
    nodes: list
    n_generated_per_node: int
    n_real: int
    seed: int                          # base latent seed; node j's maps come from node_seed(seed, j)
    gain_min: float
    gain_max: float
    rms_log_power_error: float         # rms over nodes and modes (but k = 0) of ln(P_gen / P_real) before the fit
    rms_log_power_error_after: float   # the same with the fitted gains (what the polynomial leaves)
    pattern_rms_over_map_sd: float     # rms of the fitted patterns (less their means) / sd of the generated pixels
    per_node: dict                     # node -> {"rms_log_power_error", "after", "mean_offset", "mean_sd_ratio"}
    mean_offset: float                 # rms over nodes of (generated - real mean kappa) / sd of the real map means
    mean_sd_ratio_min: float           # sd of the generated map means / the real ones, over nodes
    mean_sd_ratio_max: float

    def to_dict(self) -> dict:
        return asdict(self)


def node_seed(seed: int, index: int) -> int:
    """The latent seed of the ``index``-th training node in a fit of base ``seed``: independent streams
    (numpy's SeedSequence of the pair), so that no two nodes share their generated maps' noise."""
    return int(np.random.SeedSequence((int(seed), int(index))).generate_state(1)[0])


def node_measurements(generator, maps: np.ndarray, u: np.ndarray, *, data_scale: float, n_maps: int,
                      seed: int, batch_size: int = 256) -> dict[str, np.ndarray | float]:
    """At one node: the map P(u) to subtract (H, W) and 0.5 ln(real / generated power) (H, W) that
    together give the real maps' mean map and mode powers, the generated pixel variance, and the
    generated map means' offset (in sd of the real map means) and sd ratio, from ``n_maps`` generated
    maps (latent ``seed``) at normalised parameters ``u`` (P,) and the node's real ``maps``.

    k = 0: the calibrated map mean is g0 (m - mu_g + r / g0) with m a map's generated mean, mu_g their
    average, r the real maps' mean (both x ``data_scale``) and g0 the ratio of their sds; so P(u) is
    the generated mean map less r / g0. Real map means without spread (maps made zero-mean one by one)
    leave g0 = 1 and match the level only."""
    size = int(generator.outputs[0].shape[1])
    real = np.asarray(maps)
    target = real_mode_power(real, scale=data_scale)
    mean_map, pattern, gen_power, sq = generated_moments(generator, n_maps, seed, batch_size=batch_size,
                                                         params=np.asarray(u, np.float32))
    off = np.ones((size, size), bool)
    off[0, 0] = False
    if (gen_power[off] <= 0).any() or (target[off] <= 0).any():
        raise PaperReproError("the generated or real maps have no power at some Fourier mode; cannot calibrate")
    log_gain = np.zeros((size, size))
    log_gain[off] = 0.5 * np.log(target[off] / gen_power[off])
    pixel_var = sq / (n_maps * size * size) - mean_map.mean() ** 2
    # k = 0: fft2 there is the sum of the pixels, so |F|^2 / size^4 is the squared map mean
    real_level = data_scale * float(np.mean(real, dtype=np.float64))     # buffered: no float64 copy
    gen_level = float(mean_map.mean())
    real_var = target[0, 0] / size ** 4 - real_level ** 2
    gen_var = gen_power[0, 0] / size ** 4 - gen_level ** 2
    tiny = 1e-10 * pixel_var
    g0 = float(np.sqrt(real_var / gen_var)) if real_var > tiny and gen_var > tiny else 1.0
    log_gain[0, 0] = np.log(g0)
    return {"pattern": mean_map - real_level / g0, "log_gain": log_gain, "pixel_var": pixel_var,
            "mean_offset": (gen_level - real_level) / np.sqrt(max(real_var, tiny)),
            "mean_sd_ratio": float(np.sqrt(max(gen_var, 0.0) / max(real_var, tiny)))}


def fit_conditional(generator, nodes: list[tuple[str, np.ndarray, np.ndarray]], *, data_scale: float, n_maps: int,
                    degree: int | None = None, seed: int = CALIBRATION_SEED, batch_size: int = 256,
                    progress: bool = False):
    """(pattern coefficients (T, H, W), log-gain coefficients (T, H, W), ConditionalCalibrationFit)
    for ``generator`` (tanh units) from ``nodes``: (name, normalised parameters u (P,), real training
    maps (N, H, W) in kappa) per training node; T monomials of ``degree`` in u (:func:`monomials`;
    default :func:`default_degree`); node j's ``n_maps`` generated maps from ``node_seed(seed, j)``
    (``pick``'s number: ``evaluation.conditional_selection.CALIBRATION_MAPS``)."""
    if degree is None:
        degree = default_degree(len(nodes), len(nodes[0][1]) if nodes else 2)
    if degree < 0:
        raise PaperReproError(f"the calibration's degree must be >= 0, got {degree}")
    if n_maps < 2:
        raise PaperReproError(f"calibration needs at least 2 generated maps per node, got {n_maps}")
    if len(generator.inputs) < 2:
        raise PaperReproError("this generator is not conditional; calibrate it with 'pick --checkpoint'")
    n_params = int(generator.inputs[1].shape[-1])
    n_terms = len(monomials(n_params, degree))
    if len(nodes) < n_terms:
        raise PaperReproError(f"a degree-{degree} calibration in {n_params} parameters needs at least {n_terms} "
                              f"nodes, got {len(nodes)}")
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(nodes), unit="node", desc="calibrate")
    meas, us = [], []
    for j, (_name, u, maps) in enumerate(nodes):
        meas.append(node_measurements(generator, maps, u, data_scale=data_scale, n_maps=n_maps,
                                      seed=node_seed(seed, j), batch_size=batch_size))
        us.append(np.asarray(u, np.float64))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    x = design_matrix(np.stack(us), degree)                       # (J, T)
    size = meas[0]["pattern"].shape[0]
    patterns = np.stack([m["pattern"] for m in meas]).reshape(len(meas), -1)
    log_gains = np.stack([m["log_gain"] for m in meas]).reshape(len(meas), -1)
    pattern_coef = np.linalg.lstsq(x, patterns, rcond=None)[0].reshape(n_terms, size, size)
    gain_coef = np.linalg.lstsq(x, log_gains, rcond=None)[0].reshape(n_terms, size, size)
    fitted = (x @ gain_coef.reshape(n_terms, -1)).reshape(len(meas), size, size)
    fitted_pattern = (x @ pattern_coef.reshape(n_terms, -1)).reshape(len(meas), size, size)
    off = np.ones((size, size), bool)
    off[0, 0] = False
    before = [float(np.sqrt(np.mean((2 * m["log_gain"][off]) ** 2))) for m in meas]
    after = [float(np.sqrt(np.mean((2 * (m["log_gain"][off] - f[off])) ** 2))) for m, f in zip(meas, fitted)]
    gains = np.exp(fitted[:, off])
    sd_ratios = [float(m["mean_sd_ratio"]) for m in meas]
    info = ConditionalCalibrationFit(
        degree=int(degree), nodes=[n for n, _, _ in nodes], n_generated_per_node=int(n_maps),
        n_real=int(sum(len(m) for _, _, m in nodes)), seed=int(seed),
        gain_min=float(gains.min()), gain_max=float(gains.max()),
        rms_log_power_error=float(np.sqrt(np.mean(np.square(before)))),
        rms_log_power_error_after=float(np.sqrt(np.mean(np.square(after)))),
        pattern_rms_over_map_sd=float(np.sqrt(np.mean((fitted_pattern - fitted_pattern.mean(axis=(1, 2), keepdims=True)) ** 2)
                                              / np.mean([m["pixel_var"] for m in meas]))),
        per_node={n: {"rms_log_power_error": b, "after": a, "mean_offset": float(m["mean_offset"]),
                      "mean_sd_ratio": float(m["mean_sd_ratio"])}
                  for (n, _, _), b, a, m in zip(nodes, before, after, meas)},
        mean_offset=float(np.sqrt(np.mean([m["mean_offset"] ** 2 for m in meas]))),
        mean_sd_ratio_min=min(sd_ratios), mean_sd_ratio_max=max(sd_ratios))
    return pattern_coef.astype(np.float32), gain_coef.astype(np.float32), info


@keras.saving.register_keras_serializable(package="paper_repro", name="ConditionalSpectralCalibration")
class ConditionalSpectralCalibration(keras.layers.Layer):
    """[(B, H, W, 1) maps, (B, P) normalised parameters] -> the maps less the pattern P(u), each 2D
    Fourier mode times exp(L(u)); P and L polynomials of ``degree`` in u (coefficients (T, H, W),
    each L term symmetric under k -> -k so the output stays real)."""

    def __init__(self, size: int, n_params: int, degree: int, **kwargs):
        super().__init__(**kwargs)
        self.size, self.n_params, self.degree = int(size), int(n_params), int(degree)
        self.exponents = monomials(self.n_params, self.degree)
        t = len(self.exponents)
        self.pattern = self.add_weight(name="pattern", shape=(t, self.size, self.size), initializer="zeros",
                                       trainable=False)
        self.log_gain = self.add_weight(name="log_gain", shape=(t, self.size, self.size), initializer="zeros",
                                        trainable=False)

    def features(self, u):
        """(B, T) monomials of u (B, P)."""
        u = ops.cast(u, "float32")
        cols = []
        for e in self.exponents:
            term = ops.ones_like(u[:, 0])
            for i, p in enumerate(e):
                for _ in range(p):
                    term = term * u[:, i]
            cols.append(term)
        return ops.stack(cols, axis=1)

    def call(self, inputs):
        x, u = inputs
        f = self.features(u)
        pattern = ops.einsum("bt,thw->bhw", f, self.pattern)
        gain = ops.exp(ops.einsum("bt,thw->bhw", f, self.log_gain))
        x = ops.cast(x[..., 0], "float32") - pattern
        re, im = ops.fft2((x, ops.zeros_like(x)))
        re, _ = ops.ifft2((re * gain, im * gain))
        return re[..., None]

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "size": self.size, "n_params": self.n_params, "degree": self.degree}


def calibrated_conditional(generator, pattern_coef: np.ndarray, gain_coef: np.ndarray, degree: int):
    """A new model G'(z, u): ``generator`` (shared layers) followed by the conditional calibration."""
    from .calibration import is_calibrated

    if is_calibrated(generator):
        raise PaperReproError("this generator is already calibrated")
    if len(generator.inputs) < 2:
        raise PaperReproError("this generator is not conditional")
    size = int(generator.outputs[0].shape[1])
    n_params = int(generator.inputs[1].shape[-1])
    t = len(monomials(n_params, degree))
    for name, c in (("pattern", pattern_coef), ("log gain", gain_coef)):
        if c.shape != (t, size, size):
            raise PaperReproError(f"{name} coefficients must be ({t}, {size}, {size}), got {c.shape}")
        if not np.isfinite(c).all():
            raise PaperReproError(f"{name} coefficients must be finite")
    sym = np.roll(gain_coef[:, ::-1, ::-1], 1, axis=(1, 2))
    if not np.allclose(gain_coef, sym, atol=1e-5 * max(1.0, float(np.abs(gain_coef).max()))):
        raise PaperReproError("the log gains must be symmetric under k -> -k (the maps are real)")
    layer = ConditionalSpectralCalibration(size, n_params, degree, name="calibration")
    out = layer([generator.outputs[0], generator.inputs[1]])
    layer.pattern.assign(pattern_coef.astype(np.float32))
    layer.log_gain.assign(gain_coef.astype(np.float32))
    return keras.Model(generator.inputs, out, name=generator.name)


def grid_nodes_for(grid, preset) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, normalised parameters (P,), training maps) of every training node of a loaded cosmology
    grid (:class:`~paper_repro.maps.cosmo_grid.CosmoGrid`), checked against the conditional preset."""
    from .conditional import normalise_parameters

    maps, _ = grid.training()
    out = []
    for n in grid.nodes:
        if n["role"] != "train":
            continue
        a, b = n["train_rows"]
        u = normalise_parameters([n["Omega_m"], n["sigma_8"]], preset.parameters, strict=True)[0]
        out.append((n["name"], u, maps[a:b]))
    if not out:
        raise PaperReproError(f"{grid.path}: no training nodes to calibrate on")
    if math.prod(maps.shape[1:]) != preset.model.image_size ** 2:
        raise PaperReproError(f"{grid.path}: maps of {maps.shape[1]}^2 px, the preset makes "
                              f"{preset.model.image_size}^2")
    return out
