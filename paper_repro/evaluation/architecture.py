"""The architecture is part of the certificate: a generator's layers against its preset's.

:func:`expected_generator` and :func:`expected_discriminator` derive every layer's output shape and
parameter counts from a :class:`~paper_repro.config.ModelConfig` by arithmetic alone (they never
build a model), so checking a model against them is not checking it against itself. For the
``paper`` preset they give Tables 1 and 2 of Mustafa et al. (2019) (:data:`PAPER_TABLE_1`,
:data:`PAPER_TABLE_2` transcribe the tables as printed); for ``cpu64`` the scaled networks.
:func:`run_architecture` loads a run's generator and records, layer by layer, what was found next
to what its preset implies (the report's ``architecture`` entry); :func:`require_match` turns a
mismatch into a one-line error. The output calibration layer (:mod:`paper_repro.gan.calibration`)
is not in the paper: it is reported on its own and not counted against Table 1.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from ..config import PRESETS, ConditionalPreset, ModelConfig, Preset
from ..errors import PaperReproError
from ..maps.io import shown_path

#: Table 1 as printed: (layer type, output shape channels x height x width, trainable parameters
#: as the paper rounds them); the BatchNorm rows carry the ReLU, the last row the tanh
PAPER_TABLE_1 = (("Dense", (512, 16, 16), "8.5M"), ("BatchNorm", (512, 16, 16), "1024"),
                 ("TransposedConv", (256, 32, 32), "3.3M"), ("BatchNorm", (256, 32, 32), "512"),
                 ("TransposedConv", (128, 64, 64), "819K"), ("BatchNorm", (128, 64, 64), "256"),
                 ("TransposedConv", (64, 128, 128), "205K"), ("BatchNorm", (64, 128, 128), "128"),
                 ("TransposedConv", (1, 256, 256), "1601"))
#: Table 2 as printed (the LReLU activations carry no parameters and sit in the rows before)
PAPER_TABLE_2 = (("Conv", (64, 128, 128), "1664"), ("Conv", (128, 64, 64), "205K"),
                 ("BatchNorm", (128, 64, 64), "256"), ("Conv", (256, 32, 32), "819K"),
                 ("BatchNorm", (256, 32, 32), "512"), ("Conv", (512, 16, 16), "3.3M"),
                 ("BatchNorm", (512, 16, 16), "1024"), ("Linear", (1,), "131K"))
#: the layer classes of the output calibration (reported apart from the preset's network)
CALIBRATION_KINDS = ("SpectralCalibration", "ConditionalSpectralCalibration")


@dataclass(frozen=True)
class LayerSpec:
    """One layer: Keras name and class, output shape without the batch axis (H, W, C) or (K,),
    trainable and non-trainable parameter counts (batch norm's moving mean and variance)."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    trainable: int = 0
    non_trainable: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "output_shape": list(self.output_shape)}


def _batch_norm(name: str, shape: tuple[int, ...]) -> LayerSpec:
    """Batch norm over the last axis: gamma and beta trained, moving mean and variance not."""
    return LayerSpec(name, "BatchNormalization", shape, 2 * shape[-1], 2 * shape[-1])


def _conv(name: str, kind: str, shape: tuple[int, ...], k: int, c_in: int) -> LayerSpec:
    """A k x k (transposed) convolution from c_in channels to shape[-1], with biases."""
    return LayerSpec(name, kind, shape, k * k * c_in * shape[-1] + shape[-1])


def expected_generator(cfg: ModelConfig, n_params: int = 0, film: bool = False) -> list[LayerSpec]:
    """Table 1 for ``cfg``: z (latent) -> Dense -> reshape (s, s, f0) -> [BN, ReLU, ConvT k/2] x n
    -> tanh, f0 = base_filters x 2^(n-1) channels halving each step to base_filters, then 1.
    ``n_params`` > 0: a conditional generator, the parameters concatenated to z before the dense layer;
    ``film``: and each batch norm followed by its conditional scale and shift (2 x n_params x channels)."""
    s, k, n = cfg.start_size, cfg.kernel_size, cfg.n_strided
    f0 = cfg.base_filters * 2 ** (n - 1)
    width = cfg.latent_dim + n_params
    layers = [LayerSpec("z", "InputLayer", (cfg.latent_dim,))]
    if n_params:
        layers += [LayerSpec("params", "InputLayer", (n_params,)), LayerSpec("z_params", "Concatenate", (width,))]
    layers += [LayerSpec("dense", "Dense", (s * s * f0,), width * s * s * f0 + s * s * f0),
               LayerSpec("reshape", "Reshape", (s, s, f0))]
    size, c_in = s, f0
    for i in range(n):
        layers.append(_batch_norm(f"bn{i}", (size, size, c_in)))
        if film:
            layers.append(LayerSpec(f"film{i}", "ConditionalAffine", (size, size, c_in), 2 * n_params * c_in))
        layers.append(LayerSpec(f"relu{i}", "ReLU", (size, size, c_in)))
        c_out = 1 if i == n - 1 else f0 // 2 ** (i + 1)
        size *= 2
        layers.append(_conv(f"deconv{i + 1}", "Conv2DTranspose", (size, size, c_out), k, c_in))
        c_in = c_out
    layers.append(LayerSpec("tanh", "Activation(tanh)", (size, size, 1)))
    return layers


def expected_discriminator(cfg: ModelConfig) -> list[LayerSpec]:
    """Table 2 for ``cfg``: map (H, H, 1) -> Conv k/2 + LReLU -> [Conv k/2, BN, LReLU] x (n-1) ->
    flatten -> Dense(1), base_filters channels doubling each step."""
    k, size, c_in = cfg.kernel_size, cfg.image_size, 1
    layers = [LayerSpec("map", "InputLayer", (size, size, 1))]
    for i in range(cfg.n_strided):
        c_out, size = cfg.base_filters * 2 ** i, size // 2
        layers.append(_conv(f"conv{i}", "Conv2D", (size, size, c_out), k, c_in))
        if i > 0:
            layers.append(_batch_norm(f"bn{i}", (size, size, c_out)))
        layers.append(LayerSpec(f"lrelu{i}", "LeakyReLU", (size, size, c_out)))
        c_in = c_out
    flat = size * size * c_in
    layers += [LayerSpec("flatten", "Flatten", (flat,)), LayerSpec("logit", "Dense", (1,), flat + 1)]
    return layers


def totals(layers: list[LayerSpec]) -> tuple[int, int]:
    """(trainable, non-trainable) parameters of ``layers``."""
    return sum(x.trainable for x in layers), sum(x.non_trainable for x in layers)


def table_rows(layers: list[LayerSpec]) -> list[tuple[str, tuple[int, ...], int]]:
    """The layers with parameters as the paper's tables list them: (name, output shape channels x
    height x width, trainable parameters); the dense layer of G with the shape it is reshaped to."""
    rows = []
    for i, x in enumerate(layers):
        if not x.trainable:
            continue
        shape = x.output_shape
        if x.kind == "Dense" and i + 1 < len(layers) and layers[i + 1].kind == "Reshape":
            shape = layers[i + 1].output_shape
        rows.append((x.name, shape[-1:] + shape[:-1], x.trainable))
    return rows


def agrees_with_print(count: int, printed: str) -> bool:
    """Whether ``count`` rounds to a parameter count printed as the paper prints them ("8.5M",
    "819K", "1601"): within half a unit of the last printed digit."""
    scale = {"M": 1e6, "K": 1e3}.get(printed[-1:], 1.0)
    digits = printed.rstrip("MK")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return abs(count - float(digits) * scale) <= 0.5 * scale * 10.0 ** -decimals


def paper_table(layers: list[LayerSpec], table=PAPER_TABLE_1) -> list[dict[str, Any]]:
    """``layers`` (:func:`table_rows`) beside the paper's table row by row: shape and rounded count agree?"""
    rows = table_rows(layers)
    if len(rows) != len(table):
        return [{"agrees": False, "note": f"{len(rows)} layers with parameters, the table lists {len(table)}"}]
    return [{"name": name, "table_type": kind, "table_shape": list(t_shape), "table_params": printed,
             "shape": list(shape), "params": count,
             "agrees": tuple(shape) == tuple(t_shape) and agrees_with_print(count, printed)}
            for (name, shape, count), (kind, t_shape, printed) in zip(rows, table)]


def found_layers(model) -> list[LayerSpec]:
    """The layers of a Keras model as :class:`LayerSpec` (input layers included, by their names;
    an ``Activation`` layer's kind names its function, e.g. ``Activation(tanh)``)."""
    out = []
    for layer in model.layers:
        shape = layer.output.shape
        kind = type(layer).__name__
        if kind == "Activation":
            kind = f"Activation({layer.get_config().get('activation')})"
        out.append(LayerSpec(layer.name, kind, tuple(int(d) for d in shape[1:]),
                             sum(math.prod(map(int, w.shape)) for w in layer.trainable_weights),
                             sum(math.prod(map(int, w.shape)) for w in layer.non_trainable_weights)))
    return out


def compare(found: list[LayerSpec], preset: Preset, *, source: str = "generator") -> dict[str, Any]:
    """The report's ``architecture`` entry: ``found`` (a generator's layers) against ``preset``.

    Layers are matched by name; kind, output shape and both parameter counts must agree, in order.
    The calibration layer is taken out and reported under ``calibration``. A preset with the name of
    a built-in preset must also have its model configuration. ``matches`` is False with one line per
    difference in ``mismatches``.
    """
    cfg = preset.model
    n_params = len(preset.parameters.names) if isinstance(preset, ConditionalPreset) else 0
    expected = expected_generator(cfg, n_params, film=n_params > 0 and preset.conditioning == "film")
    calibration = [x for x in found if x.kind in CALIBRATION_KINDS]
    network = [x for x in found if x.kind not in CALIBRATION_KINDS]
    mismatches = []
    named = PRESETS.get(preset.name)
    if named is not None and named.model != cfg:
        diff = ", ".join(f"{f.name}={getattr(cfg, f.name)!r} (preset: {getattr(named.model, f.name)!r})"
                         for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(named.model, f.name))
        mismatches.append(f"the run records preset {preset.name!r} with {diff}")
    by_name = {x.name: x for x in network}
    want_names = [x.name for x in expected]
    rows = []
    for want in expected:
        got = by_name.get(want.name)
        row = {"name": want.name, "expected": want.to_dict(), "found": None if got is None else got.to_dict()}
        if got is None:
            mismatches.append(f"layer {want.name} ({want.kind}) is missing")
        else:
            for what in ("kind", "output_shape", "trainable", "non_trainable"):
                if getattr(got, what) != getattr(want, what):
                    mismatches.append(f"layer {want.name}: {what.replace('_', ' ')} "
                                      f"{_show(getattr(got, what))}, expected {_show(getattr(want, what))}")
        row["matches"] = got is not None and got == want
        rows.append(row)
    extra = [x for x in network if x.name not in want_names]
    for x in extra:
        mismatches.append(f"unexpected layer {x.name} ({x.kind}, {x.trainable:,} trainable parameters)")
        rows.append({"name": x.name, "expected": None, "found": x.to_dict(), "matches": False})
    if not extra and [x.name for x in network] != [n for n in want_names if n in by_name]:
        mismatches.append("the layers are not in the preset's order")
    if len(calibration) > 1 or (calibration and found[-1].kind not in CALIBRATION_KINDS):
        mismatches.append("the calibration layer must be the generator's one last layer")
    trainable, non_trainable = totals(network)
    want_tr, want_nt = totals(expected)
    return {
        "preset": preset.name, "model_config": dataclasses.asdict(cfg), "source": source,
        "matches": not mismatches, "mismatches": mismatches,
        "trainable": trainable, "non_trainable": non_trainable,
        "expected_trainable": want_tr, "expected_non_trainable": want_nt,
        "layers": rows,
        "calibration": calibration[0].to_dict() if calibration else None,
        "calibration_note": "output calibration (paper_repro/gan/calibration.py): fixed, not in the paper, "
                            "not counted against the preset's parameters",
        # a conditional discriminator adds the projection: n_params x its flattened features
        "discriminator_expected_trainable": totals(expected_discriminator(cfg))[0]
        + n_params * expected_discriminator(cfg)[-2].output_shape[0],
        # the paper's Table 1 beside the network found, for runs of the paper's preset
        "paper_table_1": paper_table(network) if named is not None and named.name == "paper" else None,
    }


def _show(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(map(str, v)) + ")"
    return f"{v:,}" if isinstance(v, int) else str(v)


def summary_line(entry: dict[str, Any]) -> str:
    """One line of an ``architecture`` entry, for the report's summary."""
    head = (f"generator {'matches' if entry['matches'] else 'does NOT match'} preset {entry['preset']!r} "
            f"({entry['trainable']:,} trainable parameters, expected {entry['expected_trainable']:,})")
    cal = entry.get("calibration")
    return head + (f" + output calibration ({cal['non_trainable']:,} fixed parameters)" if cal else "")


def require_match(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` if the generator matched its preset, else a one-line :class:`PaperReproError`
    naming the first differences."""
    if entry["matches"]:
        return entry
    bad = entry["mismatches"]
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    raise PaperReproError(f"{entry['source']}: the generator does not match its preset {entry['preset']!r}: "
                          + "; ".join(bad[:3]) + more)


def run_architecture(run: str | os.PathLike, checkpoint: str | int | None = None) -> dict[str, Any]:
    """The ``architecture`` entry of a run's generator (:func:`compare`); loads it with Keras."""
    from ..gan.runs import generator_path, load_generator  # keras

    model, preset = load_generator(run, checkpoint)
    return compare(found_layers(model), preset, source=shown_path(generator_path(run, checkpoint)))


def check_run(run: str | os.PathLike, checkpoint: str | int | None = None) -> dict[str, Any]:
    """:func:`run_architecture`, raising a one-line error when the generator does not match its preset."""
    return require_match(run_architecture(run, checkpoint))
