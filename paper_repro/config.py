"""Typed configuration for every stage, and the named presets (``paper``, ``cpu64``, ``tiny``).

Every default that comes from the paper (Mustafa et al. 2019, Sect. 2.1-2.3) or from the authors'
training code says where it comes from. Presets are looked up by name with :func:`get_preset`.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .config_certification import CertificationConfig, HorizonConfig, NoveltyConfig  # noqa: F401 (one place)
from .config_maps import (  # noqa: F401 (one place)
    COSMO_GRID_PRESETS,
    COSMO_PARAMETERS,
    DATASET_PRESETS,
    FIELD_MODELS,
    PIXEL_DEG,
    SPLITS,
    TRANSFER_FUNCTIONS,
    CosmoGridConfig,
    CosmologyConfig,
    DatasetConfig,
    SimulationConfig,
    SplitSizes,
    get_cosmo_grid_preset,
    get_dataset_preset,
)
from .errors import PaperReproError, require


@dataclass(frozen=True)
class ModelConfig:
    """Generator/discriminator topology (Tables 1 and 2 for the ``paper`` preset)."""

    image_size: int = 256          # output maps are image_size x image_size pixels (Table 1)
    latent_dim: int = 64           # z ~ N(0, 1) in 64 dimensions (Sect. 2.3)
    base_filters: int = 64         # D's first conv / G's last hidden layer; 8x this after the dense (Table 1)
    n_strided: int = 4             # strided (transposed) convolutions in each network (Tables 1-2)
    kernel_size: int = 5           # 5x5 kernels, stride 2, 'same' padding (Tables 1-2)
    bn_momentum: float = 0.9       # authors' code: batch-norm decay 0.9
    bn_epsilon: float = 1e-5       # authors' code: epsilon 1e-5
    leaky_slope: float = 0.2       # Table 2: LeakyReLU leakiness 0.2
    init_stddev: float = 0.02      # authors' code: N(0, 0.02) / truncated normal (0.02)

    def __post_init__(self) -> None:
        require(self.n_strided >= 1, f"n_strided must be >= 1, got {self.n_strided}")
        f = 2 ** self.n_strided
        require(self.image_size > 0 and self.image_size % f == 0,
               f"image_size must be a positive multiple of 2**n_strided={f}, got {self.image_size}")
        require(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        require(self.base_filters >= 1, f"base_filters must be >= 1, got {self.base_filters}")
        require(self.kernel_size >= 1, f"kernel_size must be >= 1, got {self.kernel_size}")
        require(0.0 <= self.bn_momentum < 1.0, f"bn_momentum must be in [0, 1), got {self.bn_momentum}")
        require(self.bn_epsilon > 0, f"bn_epsilon must be > 0, got {self.bn_epsilon}")
        require(self.init_stddev > 0, f"init_stddev must be > 0, got {self.init_stddev}")

    @property
    def start_size(self) -> int:
        """Side of the first feature map after the dense layer (16 for the paper)."""
        return self.image_size // 2 ** self.n_strided


#: checkpoint-selection scores (:mod:`paper_repro.evaluation.selection`)
SELECTION_SCORES = ("power_spectrum", "statistics")
#: the compute precisions a run may train at (Keras dtype policies)
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation settings (Sect. 2.3 and the authors' training code)."""

    batch_size: int = 64            # Sect. 2.3
    learning_rate: float = 2e-4     # Adam, DCGAN settings (Sect. 2.3)
    beta_1: float = 0.5             # Sect. 2.3
    flip_prob: float = 0.01         # whole-batch real/fake label swap, one draw per step (authors' code)
    epochs: int = 45                # main epochs (authors' slides: 45 to pass visual + pixel KS)
    selection_epochs: int = 2       # extra epochs scanned for the best checkpoint (Sect. 2.3)
    selection_every: int = 1        # steps between selection scores during the selection epochs
    selection_maps: int = 6400      # generated maps per selection score (paper: 6400)
    checkpoint_every: int = 0       # extra checkpoint every k steps (0: only at epoch ends)
    log_every: int = 10             # steps between rows of log.csv
    data_scale: float = 1.0         # maps enter tanh as data_scale * kappa (paper: 1, no normalisation)
    bn_recalibration: int = 0       # batches of "precise BN" before a generator is scored and kept
                                    # (0: the moving averages as trained, as the paper)
    selection_score: str = "power_spectrum"   # "power_spectrum" (paper: chi2 of P(ell) histograms)
                                              # or "statistics" (pixel, P(ell), MF means; selection.py)
    anneal_epochs: int = 0          # the last anneal_epochs main epochs and all selection epochs run
                                    # at learning_rate * anneal_factor (0: constant rate, as the paper)
    anneal_factor: float = 0.1
    selection_candidates: int = 1   # lowest-scoring selection snapshots kept in candidates/ for
                                    # `paper-repro pick` to calibrate and compare (1: best/ only)
    augment_from_epoch: int = 0     # from this epoch on (1-based, selection epochs included) each real
                                    # map of a batch is turned by a random one of the 8 symmetries of
                                    # the square (rotations by 90 deg, reflections), exact symmetries
                                    # of an isotropic field; 0: never (the paper)
    monitor_maps: int = 512         # after each epoch, the fraction of this many training and of this
                                    # many development maps the discriminator calls real goes to
                                    # discriminator.csv (a memorising discriminator: training >> held-out)
    d_lr_factor: float = 1.0        # the discriminator's Adam rate is the epoch's rate times this (a
                                    # two time-scale update rule, Heusel et al. 2017); 1: the paper
    d_lr_factor_from_epoch: int = 1  # the factor applies from this epoch on (1-based, selection epochs
                                     # included); before it the discriminator runs at the epoch's rate
    spectral_weight: float = 0.0    # weight of the spectral term in G's loss (paper_repro.gan.spectral;
                                    # Durall et al. 2020); 0: off, G's loss purely adversarial (the paper)
    spectral_from_epoch: int = 1    # the term applies from this epoch on (1-based, selection epochs
                                    # included)
    precision: str = "float32"      # "float32" (the paper) or "mixed_bfloat16": layers compute in
                                    # bfloat16 with float32 weights, D's logits and G's output (GPUs)

    def __post_init__(self) -> None:
        require(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        require(0.0 <= self.beta_1 < 1.0, f"beta_1 must be in [0, 1), got {self.beta_1}")
        require(0.0 <= self.flip_prob <= 1.0, f"flip_prob must be in [0, 1], got {self.flip_prob}")
        for name, low in (("batch_size", 1), ("epochs", 0), ("selection_epochs", 0), ("selection_every", 1),
                          ("selection_maps", 2), ("checkpoint_every", 0), ("log_every", 1)):
            require(getattr(self, name) >= low, f"{name} must be >= {low}, got {getattr(self, name)}")
        require(self.data_scale > 0, f"data_scale must be > 0, got {self.data_scale}")
        for name, low, what in (("bn_recalibration", 0, "an integer >= 0"), ("anneal_epochs", 0, "an integer >= 0"),
                                ("selection_candidates", 1, "an integer >= 1"),
                                ("augment_from_epoch", 0, "0 (off) or an epoch >= 1"),
                                ("monitor_maps", 0, "an integer >= 0 (0: off)"),
                                ("d_lr_factor_from_epoch", 1, "an epoch >= 1"), ("spectral_from_epoch", 1, "an epoch >= 1")):
            v = getattr(self, name)
            require(isinstance(v, int) and v >= low, f"{name} must be {what}, got {v!r}")
        require(self.selection_score in SELECTION_SCORES,
               f"unknown selection_score {self.selection_score!r}; choose one of {', '.join(SELECTION_SCORES)}")
        require(self.precision in PRECISIONS,
               f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        require(0.0 < self.anneal_factor <= 1.0, f"anneal_factor must be in (0, 1], got {self.anneal_factor!r}")
        for name, positive in (("d_lr_factor", True), ("spectral_weight", False)):
            v = getattr(self, name)
            require(isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 if positive else v >= 0),
                   f"{name} must be a finite number {'>' if positive else '>='} 0, got {v!r}")

    def learning_rate_at(self, epoch: int) -> float:
        """Adam's learning rate in epoch ``epoch`` (0-based): ``learning_rate``, times
        ``anneal_factor`` from main epoch ``epochs - anneal_epochs`` on (selection epochs included;
        every epoch when ``anneal_epochs >= epochs``, e.g. a short run made with ``--epochs``)."""
        if self.anneal_epochs and epoch >= self.epochs - self.anneal_epochs:
            return self.learning_rate * self.anneal_factor
        return self.learning_rate

    def d_learning_rate_at(self, epoch: int) -> float:
        """The discriminator's Adam rate in epoch ``epoch`` (0-based): the epoch's rate, times
        ``d_lr_factor`` from epoch ``d_lr_factor_from_epoch`` (1-based) on."""
        factor = self.d_lr_factor if epoch + 1 >= self.d_lr_factor_from_epoch else 1.0
        return self.learning_rate_at(epoch) * factor

    def spectral_weight_at(self, epoch: int) -> float:
        """The spectral term's weight in epoch ``epoch`` (0-based)."""
        return float(self.spectral_weight) if epoch + 1 >= self.spectral_from_epoch else 0.0

    def augments(self, epoch: int) -> bool:
        """Whether real maps are randomly turned/reflected in epoch ``epoch`` (0-based)."""
        return bool(self.augment_from_epoch) and epoch + 1 >= self.augment_from_epoch

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.selection_epochs


@dataclass(frozen=True)
class Preset:
    """A named, complete configuration of the emulator: model plus training."""

    name: str
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    angle_deg: float = 0.866         # side of one map in degrees (paper: sqrt(12)/4 = 0.866)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preset":
        """The preset of ``to_dict``; a run recorded with a retired training setting loads when
        the setting was off, and is refused (see :data:`RETIRED_TRAINING`) when it was on."""
        if cls is Preset and isinstance(d, dict) and "parameters" in d:   # a conditional preset
            return ConditionalPreset.from_dict(d)
        try:
            return cls(name=d["name"], model=ModelConfig(**d["model"]),
                       training=TrainingConfig(**drop_retired(d["training"])),
                       angle_deg=float(d.get("angle_deg", 0.866)))
        except (KeyError, TypeError) as exc:
            raise PaperReproError(f"invalid configuration: {exc}") from None

    def replace(self, **training_overrides: Any) -> "Preset":
        """A copy with some training settings changed (validated again)."""
        return dataclasses.replace(
            self, training=dataclasses.replace(self.training, **training_overrides))


#: training settings of features removed from paper_repro (measured worse, off in every preset):
#: field -> (its value when off, or None when any value is harmless; the feature); commit
#: ``RETIRED_AT`` still trains with them
RETIRED_AT = "3ae79eb"
RETIRED_TRAINING: dict[str, tuple[Any, str]] = {
    "spectral_decay": (0.0, "the averaged spectral term"), "minkowski_weight": (0.0, "the Minkowski loss term"),
    "minkowski_from_epoch": (None, "the Minkowski loss term"), "minkowski_decay": (None, "the Minkowski loss term"),
    "confirmation_maps": (None, "the confirmation score of `paper-repro select`"),
}


def drop_retired(training: dict[str, Any]) -> dict[str, Any]:
    """A run's recorded training settings without the retired fields that were off; a
    :class:`PaperReproError` naming the feature when one was on."""
    require(isinstance(training, dict), f"invalid configuration: training must be a mapping, got {training!r}")
    out = dict(training)
    for name, (off, feature) in RETIRED_TRAINING.items():
        value = out.pop(name, off)
        require(off is None or value == off, f"this run used {feature}, removed from paper_repro ({name} = "
                                            f"{value!r}); it can be resumed with commit {RETIRED_AT}")
    return out



@dataclass(frozen=True)
class ParameterSpace:
    """The conditioning parameters of a conditional emulator and the box they were trained over
    (the training grid's hull). The networks see each parameter mapped linearly to [-1, 1] over the
    box (:func:`paper_repro.gan.conditional.normalise_parameters`)."""

    names: tuple = COSMO_PARAMETERS
    low: tuple = (0.20, 0.65)
    high: tuple = (0.35, 0.946)

    def __post_init__(self) -> None:
        for name in ("names", "low", "high"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        require(len(self.names) >= 1 and len(self.low) == len(self.names) == len(self.high),
               f"parameter space: names, low and high need one entry per parameter, got {self.names}, "
               f"{self.low}, {self.high}")
        require(all(isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isfinite(a)
                   and math.isfinite(b) and a < b for a, b in zip(self.low, self.high)),
               f"parameter space: need finite low < high, got {self.low}, {self.high}")

    @classmethod
    def of_grid(cls, grid: "CosmoGridConfig") -> "ParameterSpace":
        """The box of a cosmology grid's training nodes."""
        return cls(COSMO_PARAMETERS, grid.low, grid.high)


#: how the parameters enter the conditional generator (paper_repro.gan.conditional): ``concat`` to z
#: before Table 1's dense layer; ``film``, that and a parameter-dependent scale and shift of every
#: batch-normalised channel (conditional batch norm)
CONDITIONINGS = ("concat", "film")
#: which pixel quantiles the one-point term compares (paper_repro.gan.conditional_pdf): ``raw`` pixel
#: values, or ``standardised`` ones, in units of each map's own std about its mean (shape alone)
PDF_QUANTILES = ("raw", "standardised")


@dataclass(frozen=True)
class ConditionalPreset(Preset):
    """A preset of the conditional emulator G(z | parameters), D(x | parameters): the same topology
    and training settings as :class:`Preset`, plus the parameter space it conditions on and how the
    parameters enter G (:data:`CONDITIONINGS`)."""

    parameters: ParameterSpace = field(default_factory=ParameterSpace)
    conditioning: str = "concat"
    pdf_weight: float = 0.0     # weight of G's one-point-distribution term (paper_repro.gan.conditional_pdf)
    pdf_quantiles: str = "raw"  # the quantiles that term compares (PDF_QUANTILES)

    def __post_init__(self) -> None:
        require(self.conditioning in CONDITIONINGS, f"conditioning must be one of {', '.join(CONDITIONINGS)}, "
                                                    f"got {self.conditioning!r}")
        require(isinstance(self.pdf_weight, (int, float)) and math.isfinite(self.pdf_weight)
                and self.pdf_weight >= 0, f"pdf_weight must be a finite number >= 0, got {self.pdf_weight!r}")
        require(self.pdf_quantiles in PDF_QUANTILES, f"pdf_quantiles must be one of {', '.join(PDF_QUANTILES)}, "
                                                     f"got {self.pdf_quantiles!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ConditionalPreset":
        """The preset of ``to_dict``; a run recorded before ``conditioning`` existed concatenated."""
        base = Preset.from_dict({k: v for k, v in d.items() if k not in ("parameters", "conditioning", "pdf_weight",
                                                                   "pdf_quantiles")})
        try:
            space = ParameterSpace(**d["parameters"])
        except (KeyError, TypeError) as exc:
            raise PaperReproError(f"invalid configuration: {exc}") from None
        return cls(base.name, base.model, base.training, base.angle_deg, space, d.get("conditioning", "concat"),
                   d.get("pdf_weight", 0.0), d.get("pdf_quantiles", "raw"))


# --- presets ------------------------------------------------------------------------------------

PRESETS: dict[str, Preset] = {
    # Tables 1-2 and Sect. 2.3 exactly.
    "paper": Preset("paper", ModelConfig(), TrainingConfig(), angle_deg=256 * PIXEL_DEG),
    # Same topology at 64x64 (0.216 deg) with 32 base filters (G 1.34M, D 1.08M parameters),
    # 0.18-0.21 s per step on 2 AVX-512 cores. Maps enter tanh scaled by 2.5 (still inside (-1, 1)):
    # a documented departure (MODEL_CARD.md, "Output scale"). Every real map turned
    # by a random symmetry of the square (the discriminator otherwise memorises the 25,600 maps).
    # 113 epochs at the paper's rate, then 172 main and 15 selection epochs at a tenth of it, the
    # discriminator at 4 times the generator's rate from epoch 216 on (two time-scale rule), and
    # from epoch 266 on a spectral term in G's loss (weight 20; not in the paper: the stride-2
    # grid pattern, paper_repro/gan/spectral.py); the 16 lowest-scoring snapshots are kept, and
    # `paper-repro pick` calibrates each and ships the lowest worst-mean |z| (MODEL_CARD.md).
    "cpu64": Preset(
        "cpu64",
        ModelConfig(image_size=64, base_filters=32),
        TrainingConfig(epochs=285, selection_epochs=15, selection_every=25, selection_maps=1024,
                       checkpoint_every=200, log_every=20, data_scale=2.5,
                       bn_recalibration=100, selection_score="statistics",
                       anneal_epochs=172, anneal_factor=0.1,
                       selection_candidates=16,
                       augment_from_epoch=1, monitor_maps=512,
                       d_lr_factor=4.0, d_lr_factor_from_epoch=216,
                       spectral_weight=20.0, spectral_from_epoch=266),
        angle_deg=64 * PIXEL_DEG,
    ),
    # For tests: seconds per epoch on a CPU.
    "tiny": Preset(
        "tiny",
        ModelConfig(image_size=32, latent_dim=16, base_filters=8),
        TrainingConfig(batch_size=16, epochs=2, selection_epochs=0, selection_every=2,
                       selection_maps=64, log_every=1, data_scale=2.5,
                       bn_recalibration=2),
        angle_deg=32 * PIXEL_DEG,
    ),
}
# The conditional emulator (paper_repro.gan.conditional) on the cosmology grids (COSMO_GRID_PRESETS).
# cpu64-cond: cpu64's topology, fine-tuned from the certified cpu64 model (`train --init-from`, its
# checkpoint at step 114,000; paper_repro.gan.warm_start): G and D start as the unconditional model with
# their parameter weights at zero and learn the parameters' effect over 25 epochs of the cosmo-grid
# preset's 48,000 crops (18,750 steps of 64): 10 at the paper's rate (at cpu64's final 2e-5, G's
# parameter weights had not moved in 200 steps), then 15 at a tenth of it with D at 4 times G's rate.
# From scratch it would take cpu64's 120,000 steps (about 23 h on 2 AVX2 cores). The shipped run was
# started with 40 epochs (30 annealed) and cut to 25 at step 5,800 for the CPU time at hand; rates are
# set per epoch, so its first 25 epochs are this schedule's. No selection epochs (pick compares
# epoch-end generators over the grid) and no spectral term (the output calibration is fitted over the
# grid). Precise batch norm draws the training maps' parameters with the latents.
PRESETS["cpu64-cond"] = ConditionalPreset(
    "cpu64-cond", PRESETS["cpu64"].model,
    dataclasses.replace(PRESETS["cpu64"].training, epochs=25, selection_epochs=0, anneal_epochs=15,
                        d_lr_factor_from_epoch=11, spectral_weight=0.0, spectral_from_epoch=1),
    angle_deg=PRESETS["cpu64"].angle_deg, parameters=ParameterSpace.of_grid(COSMO_GRID_PRESETS["cosmo-grid"]))
# cpu64-film: cpu64-cond with conditional batch norm in G as well (conditioning "film": every
# normalised channel scaled and shifted by the parameters, 1,920 weights more, zero at the warm
# start), fine-tuned the same way over 12 epochs (9,000 steps): 6 at the paper's rate, then 6 at a
# tenth of it with D at 4 times G's rate (cpu64-cond's pick scores did not improve after epoch 14).
PRESETS["cpu64-film"] = dataclasses.replace(
    PRESETS["cpu64-cond"], name="cpu64-film", conditioning="film",
    training=dataclasses.replace(PRESETS["cpu64-cond"].training, epochs=12, anneal_epochs=6,
                                 d_lr_factor_from_epoch=7))
# cpu64-pdf: cpu64-film with G's loss also on the one-point distribution at the batch's parameters
# (weight 10: about the adversarial loss at the warm start; paper_repro.gan.conditional_pdf).
PRESETS["cpu64-pdf"] = dataclasses.replace(PRESETS["cpu64-film"], name="cpu64-pdf", pdf_weight=10.0)
# cpu64-shape: cpu64-pdf with the term on standardised quantiles (each map's in units of its own std):
# cpu64-pdf's term is mostly the amplitude's change over the grid, and its generator scaled one shape.
PRESETS["cpu64-shape"] = dataclasses.replace(PRESETS["cpu64-pdf"], name="cpu64-shape", pdf_quantiles="standardised")
# For tests: the tiny networks over the tiny-cosmo grid.
PRESETS["tiny-cond"] = ConditionalPreset(
    "tiny-cond", PRESETS["tiny"].model, PRESETS["tiny"].training,
    angle_deg=PRESETS["tiny"].angle_deg, parameters=ParameterSpace.of_grid(COSMO_GRID_PRESETS["tiny-cosmo"]))
PRESETS["tiny-film"] = dataclasses.replace(PRESETS["tiny-cond"], name="tiny-film", conditioning="film")
PRESETS["tiny-pdf"] = dataclasses.replace(PRESETS["tiny-film"], name="tiny-pdf", pdf_weight=10.0)
PRESETS["tiny-shape"] = dataclasses.replace(PRESETS["tiny-pdf"], name="tiny-shape", pdf_quantiles="standardised")


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (a :class:`Preset` is returned unchanged)."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise PaperReproError(
            f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}") from None
