"""Output calibration of a trained generator: its fixed pattern removed, its 2D power matched mode by mode.

A generator of stride-2 transposed convolutions leaves two errors that training with the spectral
term did not remove (docs/history.md, 2026-12-03 to 2026-12-04): a fixed pattern, the same on every map, whose power
sits on the upsampling grid (all of the 1.4x excess at mode (16, 16) of the shipped model), and
single Fourier modes 10-15% low or high off that grid. Both are linear, so a fixed linear output
layer corrects them: subtract the pattern (the generator's mean map minus its spatial mean), then
multiply each 2D Fourier mode by a gain, sqrt(real power / generated power). Spectral correction
after the network is how Dzanic et al. (2020, NeurIPS, "Fourier spectrum discrepancies in deep
network generated images") removed such discrepancies; here it is fitted to the training maps and
to the generator's own maps from a seed of its own, never to validation or development data.

The layer is part of the shipped model file (``SpectralCalibration``, Keras-serialisable), so every
command that loads a generator uses it. It is not in the paper.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import keras
import numpy as np
from keras import ops

from ..errors import PaperReproError
from .latents import generate

#: latent seed of the generated maps a calibration is fitted on (used nowhere else)
CALIBRATION_SEED = 31415


def _power_fft2(maps: np.ndarray) -> np.ndarray:
    """Sum over maps (N, H, W) of |fft2|^2, float64 (H, W)."""
    f = np.fft.fft2(np.asarray(maps, np.float64))
    return (f.real ** 2 + f.imag ** 2).sum(axis=0)


def real_mode_power(maps: np.ndarray, *, scale: float = 1.0, chunk: int = 1024) -> np.ndarray:
    """Mean |fft2|^2 (H, W) of real maps (N, H, W) times ``scale``, averaged over the 8 symmetries of
    the square (convergence is isotropic and parity invariant, so this only lowers the noise)."""
    x = np.asarray(maps)
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] != x.shape[2]:
        raise PaperReproError(f"calibration needs square maps (N, H, H), got shape {x.shape}")
    acc = np.zeros(x.shape[1:], np.float64)
    for s in range(0, len(x), chunk):
        block = np.asarray(x[s:s + chunk], np.float64) * scale
        if not np.isfinite(block).all():
            raise PaperReproError(f"calibration maps {s}..{s + len(block) - 1} hold NaN or inf")
        for g in range(8):
            t = np.rot90(block, g % 4, axes=(1, 2))
            acc += _power_fft2(t[:, :, ::-1] if g >= 4 else t)
    return acc / (8 * len(x))


@dataclass(frozen=True)
class CalibrationFit:
    """What a fit measured: the maps it used and how far the generator was from the real power."""
    n_generated: int
    n_real: int
    seed: int
    gain_min: float
    gain_max: float
    rms_log_power_error: float       # rms over modes (but k = 0) of log(P_gen / P_real) before the fit
    pattern_rms_over_map_sd: float   # rms of the removed pattern / sd of the generated pixels

    def to_dict(self) -> dict:
        return asdict(self)


def generated_moments(generator, n_maps: int, seed: int, *, batch_size: int = 256, progress: bool = False,
                      params: np.ndarray | None = None):
    """(mean map, pattern, power about the pattern (H, W), sum of squared pixels) of ``n_maps`` maps of
    ``generator`` in its output units (latent ``seed``; ``params``: a conditional generator's row)."""
    size = int(generator.outputs[0].shape[1])
    total = np.zeros((size, size), np.float64)
    power = np.zeros((size, size), np.float64)
    sq = 0.0
    for maps in generate(generator, n_maps, seed, batch_size=batch_size, progress=progress, params=params):
        m = maps.astype(np.float64)
        if not np.isfinite(m).all():
            raise PaperReproError("the generator produced NaN or inf maps; cannot calibrate it")
        total += m.sum(axis=0)
        power += _power_fft2(m)
        sq += float((m ** 2).sum())
    mean_map = total / n_maps
    pattern = mean_map - mean_map.mean()
    # E|F(G - p)|^2 = E|F G|^2 - |F p|^2 for p = the mean map's pattern (exact: F p = E[F G] off k = 0)
    fp = np.fft.fft2(pattern)
    return mean_map, pattern, power / n_maps - (fp.real ** 2 + fp.imag ** 2), sq


def fit(generator, real_maps: np.ndarray, *, data_scale: float, n_maps: int = 16384,
        seed: int = CALIBRATION_SEED, batch_size: int = 256, progress: bool = False):
    """(pattern (H, W), gain (H, W), CalibrationFit) for ``generator``'s output (tanh units, i.e.
    ``data_scale`` x kappa) from ``n_maps`` of its maps (latent seed ``seed``) and the real maps."""
    if n_maps < 2:
        raise PaperReproError(f"calibration needs at least 2 generated maps, got {n_maps}")
    size = int(generator.outputs[0].shape[1])
    real = np.asarray(real_maps)
    if real.ndim != 3 or real.shape[1:] != (size, size):
        raise PaperReproError(f"real maps must be (N, {size}, {size}) like the generator's output, "
                              f"got shape {real.shape}")
    target = real_mode_power(real, scale=data_scale)

    # one pass: the mean map and the mean power about zero, then the power about the mean map
    mean_map, pattern, gen_power, sq = generated_moments(generator, n_maps, seed, batch_size=batch_size,
                                                         progress=progress)
    if (gen_power[1:, :] <= 0).any() or (gen_power[0, 1:] <= 0).any():
        raise PaperReproError("the generator's maps have no power at some Fourier mode; cannot calibrate")
    gain = np.ones_like(target)
    off = np.ones_like(target, bool)
    off[0, 0] = False                       # k = 0, the map mean, is left alone
    gain[off] = np.sqrt(target[off] / gen_power[off])
    pix_var = sq / (n_maps * size * size) - mean_map.mean() ** 2
    info = CalibrationFit(
        n_generated=n_maps, n_real=int(len(real)), seed=seed,
        gain_min=float(gain[off].min()), gain_max=float(gain[off].max()),
        rms_log_power_error=float(np.sqrt(np.mean(np.log(gen_power[off] / target[off]) ** 2))),
        pattern_rms_over_map_sd=float(np.sqrt(np.mean(pattern ** 2) / pix_var)))
    return pattern.astype(np.float32), gain.astype(np.float32), info


@keras.saving.register_keras_serializable(package="paper_repro", name="SpectralCalibration")
class SpectralCalibration(keras.layers.Layer):
    """(B, H, W, 1) -> the same with a fixed pattern (H, W) subtracted and each 2D Fourier mode
    multiplied by a fixed real gain (H, W), symmetric under k -> -k so the output stays real."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        self.pattern = self.add_weight(name="pattern", shape=(self.size, self.size),
                                       initializer="zeros", trainable=False)
        self.gain = self.add_weight(name="gain", shape=(self.size, self.size),
                                    initializer="ones", trainable=False)

    def call(self, x):
        x = ops.cast(x[..., 0], "float32") - self.pattern
        re, im = ops.fft2((x, ops.zeros_like(x)))
        re, _ = ops.ifft2((re * self.gain, im * self.gain))
        return re[..., None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size}


#: class names of the output calibration layers (this module's and the conditional one,
#: :mod:`paper_repro.gan.conditional_calibration`)
CALIBRATION_LAYERS = ("SpectralCalibration", "ConditionalSpectralCalibration")


def _calibration_layer(generator):
    return next((l for l in generator.layers if type(l).__name__ in CALIBRATION_LAYERS), None)


def is_calibrated(generator) -> bool:
    return _calibration_layer(generator) is not None


def uncalibrated(generator):
    """The network a calibrated generator was made from (shared layers), or ``generator`` itself."""
    layer = _calibration_layer(generator)
    if layer is None:
        return generator
    inner = layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input
    inputs = generator.inputs if len(generator.inputs) > 1 else generator.inputs[0]
    return keras.Model(inputs, inner, name=generator.name)


def calibrated(generator, pattern: np.ndarray, gain: np.ndarray):
    """A new model: ``generator`` (shared layers) followed by the calibration layer."""
    if is_calibrated(generator):
        raise PaperReproError("this generator is already calibrated")
    size = int(generator.outputs[0].shape[1])
    if pattern.shape != (size, size) or gain.shape != (size, size):
        raise PaperReproError(f"pattern and gain must be ({size}, {size}), got {pattern.shape}, {gain.shape}")
    if not (np.isfinite(pattern).all() and np.isfinite(gain).all()) or (gain <= 0).any():
        raise PaperReproError("pattern and gain must be finite and the gain positive")
    if not np.allclose(gain, np.roll(gain[::-1, ::-1], 1, axis=(0, 1)), rtol=1e-5):
        raise PaperReproError("gain must be symmetric under k -> -k (the maps are real)")
    layer = SpectralCalibration(size, name="calibration")
    out = layer(generator.outputs[0])
    layer.pattern.assign(pattern.astype(np.float32))
    layer.gain.assign(gain.astype(np.float32))
    return keras.Model(generator.inputs[0], out, name=generator.name)


def describe(info: CalibrationFit) -> str:
    return json.dumps(info.to_dict(), indent=1)
