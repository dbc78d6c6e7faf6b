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
from .errors import PaperReproError, require

#: 0.203 arcmin pixels: the paper's 3.464 deg / 1024 px. A 64 px crop is 64 * 3.464 / 1024 deg.
PIXEL_DEG = 3.464 / 1024


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


# --- simulation settings (paper_repro.maps.simulation) ---------------------------------------
#: matter power spectra pyccl can compute without extra packages ("boltzmann_camb" needs camb)
TRANSFER_FUNCTIONS = ("eisenstein_hu", "bbks", "boltzmann_camb", "boltzmann_class")
FIELD_MODELS = ("lognormal", "gaussian")
SPLITS = ("train", "validation", "development", "auxiliary")


@dataclass(frozen=True)
class CosmologyConfig:
    """Flat wCDM cosmology of the maps (Sect. 2.1: Kratochvil et al. 2012 / Yang et al. 2011 runs).

    Omega_Lambda = 1 - Omega_m (flat). Omega_b = 0.046 (baryon fraction Omega_b/Omega_m = 0.177) is
    the WMAP5-era value of those simulations' initial conditions; the paper does not print it.
    C_ell uses pyccl's Halofit (Takahashi et al. 2012) on an Eisenstein & Hu linear spectrum.
    """

    Omega_m: float = 0.26          # Sect. 2.1
    sigma_8: float = 0.798         # Sect. 2.1
    n_s: float = 0.96              # Sect. 2.1
    h: float = 0.72                # Sect. 2.1 ("H_0 = 0.72": h)
    w: float = -1.0                # Sect. 2.1
    Omega_b: float = 0.046         # not in the paper: WMAP5, as the Kratochvil et al. suites
    transfer_function: str = "eisenstein_hu"

    def __post_init__(self) -> None:
        for name in ("Omega_m", "sigma_8", "n_s", "h", "w", "Omega_b"):
            v = getattr(self, name)
            require(isinstance(v, (int, float)) and v == v and abs(v) != float("inf"),
                   f"cosmology {name} must be a finite number, got {v!r}")
        require(0.0 < self.Omega_m < 1.0, f"Omega_m must be in (0, 1), got {self.Omega_m}")
        require(0.0 < self.Omega_b < self.Omega_m,
               f"Omega_b must be in (0, Omega_m={self.Omega_m}), got {self.Omega_b}")
        require(0.0 < self.sigma_8 < 5.0, f"sigma_8 must be in (0, 5), got {self.sigma_8}")
        require(0.5 < self.n_s < 1.5, f"n_s must be in (0.5, 1.5), got {self.n_s}")
        require(0.2 < self.h < 2.0, f"h must be in (0.2, 2), got {self.h}")
        require(-3.0 < self.w < -1.0 / 3.0, f"w must be in (-3, -1/3), got {self.w}")
        require(self.transfer_function in TRANSFER_FUNCTIONS,
               f"transfer_function must be one of {', '.join(TRANSFER_FUNCTIONS)}, "
               f"got {self.transfer_function!r}")

    @property
    def Omega_L(self) -> float:
        return 1.0 - self.Omega_m

    @property
    def baryon_fraction(self) -> float:
        return self.Omega_b / self.Omega_m


@dataclass(frozen=True)
class SimulationConfig:
    """One large convergence map: geometry, source redshift and field model (Sect. 2.1).

    Default: 1024^2 px over 3.464 deg (12 deg^2, 0.203 arcmin pixels), generated on a grid
    ``fine_factor`` times finer and averaged down, as the paper's 2048^2 -> 1024^2 maps.
    ``shift`` is the log-normal shift lambda (convergence units); None takes the empty-beam
    convergence |kappa_min(z_source)| of the cosmology (Hilbert et al. 2011).
    """

    cosmology: CosmologyConfig = field(default_factory=CosmologyConfig)
    z_source: float = 1.0          # Sect. 2.1: source plane at z = 1.0
    map_size: int = 1024           # Sect. 2.1: 1024^2 after downsampling
    angle_deg: float = 3.464       # Sect. 2.1: 12 square degrees
    fine_factor: int = 2           # Sect. 2.1: 2048^2 -> 1024^2
    model: str = "lognormal"
    shift: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.cosmology, dict):   # from JSON
            object.__setattr__(self, "cosmology", CosmologyConfig(**self.cosmology))
        require(isinstance(self.cosmology, CosmologyConfig),
               f"cosmology must be a CosmologyConfig, got {type(self.cosmology).__name__}")
        require(isinstance(self.z_source, (int, float)) and 0.0 < self.z_source <= 20.0,
               f"z_source must be in (0, 20], got {self.z_source!r}")
        require(isinstance(self.map_size, int) and self.map_size >= 8,
               f"map_size must be an integer >= 8 pixels, got {self.map_size!r}")
        require(isinstance(self.angle_deg, (int, float)) and 0.0 < self.angle_deg <= 30.0,
               f"angle_deg must be in (0, 30] degrees (flat sky), got {self.angle_deg!r}")
        require(isinstance(self.fine_factor, int) and 1 <= self.fine_factor <= 8,
               f"fine_factor must be an integer in [1, 8], got {self.fine_factor!r}")
        require(self.model in FIELD_MODELS,
               f"model must be one of {', '.join(FIELD_MODELS)}, got {self.model!r}")
        require(self.shift is None or (isinstance(self.shift, (int, float)) and 0.0 < self.shift < 10.0),
               f"shift must be None or in (0, 10), got {self.shift!r}")

    @property
    def pixel_arcmin(self) -> float:
        return self.angle_deg * 60.0 / self.map_size

    @property
    def fine_size(self) -> int:
        return self.map_size * self.fine_factor


@dataclass(frozen=True)
class SplitSizes:
    """Parent (large) maps per split; a split with 0 maps is not written."""

    train: int = 1000              # Sect. 2.1: 1000 maps
    validation: int = 100
    development: int = 50
    auxiliary: int = 100           # independent seeds (Sect. 2.1, auxiliary set)

    def __post_init__(self) -> None:
        for name in SPLITS:
            v = getattr(self, name)
            require(isinstance(v, int) and v >= 0, f"split {name} must have >= 0 maps, got {v!r}")
        require(sum(getattr(self, n) for n in SPLITS) > 0, "at least one split must have maps")

    def items(self) -> list[tuple[str, int]]:
        return [(n, getattr(self, n)) for n in SPLITS if getattr(self, n) > 0]


@dataclass(frozen=True)
class DatasetConfig:
    """A dataset: large maps cut into ``crops_per_map`` random ``crop_size``^2 crops per split.

    Paper (Sect. 2.1): 200 random 256^2 crops from each of 1000 maps = 200,000 training maps.
    """

    name: str = "custom"
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    crop_size: int = 256           # Sect. 2.1
    crops_per_map: int = 200       # Sect. 2.1
    splits: SplitSizes = field(default_factory=SplitSizes)
    seed: int = 0
    auxiliary_seed: int | None = None   # None: seed + 1 (another stream of the same generator)

    def __post_init__(self) -> None:
        if isinstance(self.simulation, dict):
            object.__setattr__(self, "simulation", SimulationConfig(**self.simulation))
        if isinstance(self.splits, dict):
            object.__setattr__(self, "splits", SplitSizes(**self.splits))
        for name, low, what in (("crop_size", 1, "a positive"), ("crops_per_map", 1, "a positive"),
                                ("seed", 0, "a non-negative")):
            v = getattr(self, name)
            require(isinstance(v, int) and v >= low, f"{name} must be {what} integer, got {v!r}")
        require(self.crop_size <= self.simulation.map_size,
               f"crop_size {self.crop_size} is larger than map_size {self.simulation.map_size}")
        require(self.auxiliary_seed is None
               or (isinstance(self.auxiliary_seed, int) and self.auxiliary_seed >= 0),
               f"auxiliary_seed must be None or a non-negative integer, got {self.auxiliary_seed!r}")

    @property
    def crop_angle_deg(self) -> float:
        return self.crop_size * self.simulation.angle_deg / self.simulation.map_size

    @property
    def aux_seed(self) -> int:
        return self.seed + 1 if self.auxiliary_seed is None else self.auxiliary_seed

    def n_crops(self, split: str) -> int:
        return getattr(self.splits, split) * self.crops_per_map

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DATASET_PRESETS: dict[str, DatasetConfig] = {
    # Sect. 2.1: 200,000 training crops of 256^2 from 1000 maps of 1024^2 (~52 GB of float32).
    "paper": DatasetConfig("paper"),
    # The cpu64 training preset's data: 64^2 crops (0.216 deg) at the paper's 0.203 arcmin pixels
    # from paper-sized maps; 25,600 training crops, a few thousand in each other split.
    "cpu": DatasetConfig("cpu", crop_size=64, crops_per_map=200,
                         splits=SplitSizes(train=128, validation=20, development=10, auxiliary=20)),
    # Certifying the shipped cpu64 model: validation and auxiliary sets from seeds never used in
    # training (the cpu preset trains on seed 0; its auxiliary seed is 1).
    "reference": DatasetConfig("reference", crop_size=64, crops_per_map=200, seed=7001, auxiliary_seed=7002,
                               splits=SplitSizes(train=0, validation=20, development=0, auxiliary=20)),
    # For tests: 256^2 maps at the paper's pixel scale, seconds to build.
    "tiny": DatasetConfig("tiny", SimulationConfig(map_size=256, angle_deg=256 * PIXEL_DEG),
                          crop_size=32, crops_per_map=16,
                          splits=SplitSizes(train=4, validation=2, development=1, auxiliary=2)),
}


def get_dataset_preset(name: str | DatasetConfig) -> DatasetConfig:
    """The dataset preset called ``name`` (a :class:`DatasetConfig` is returned unchanged)."""
    return name if isinstance(name, DatasetConfig) else _named(DATASET_PRESETS, name, "dataset preset")


def _named(table: dict, name, what: str):
    """``table[name]``, or a one-line error listing the names of ``table``."""
    try:
        return table[name]
    except (KeyError, TypeError):
        raise PaperReproError(f"unknown {what} {name!r}; choose one of {', '.join(sorted(table))}") from None


# --- datasets over cosmology (paper_repro.maps.cosmo_grid) -------------------------------------
#: the conditioning parameters of the conditional emulator, in this order
COSMO_PARAMETERS = ("Omega_m", "sigma_8")


@dataclass(frozen=True)
class CosmoGridConfig:
    """Maps at a grid of (Omega_m, sigma_8) nodes plus held-out nodes (issue: conditional emulator).

    Training nodes: every pair of ``omega_m`` x ``sigma_8`` (a regular grid through the paper's
    fiducial (0.26, 0.798), so that finite differences at the fiducial use neighbouring nodes; its
    convex hull is the box of the axes). Held-out nodes are never trained on: ``held_out`` lists
    them, inside the box and at least one on its edge. Each node is one :class:`DatasetConfig`
    (``node``'s geometry and splits; held-out nodes ``held_out_splits``, no train split) at its own
    cosmology and its own seeds: node k of the training grid has seed ``seed + 2k`` and auxiliary seed
    ``seed + 2k + 1``, held-out node j ``held_out_seed + 2j`` and ``+ 1``. Omega_b follows Omega_m at
    the fiducial baryon fraction (as ``paper-repro simulate --omega-m`` does), and the log-normal shift
    is the empty-beam convergence of each node's cosmology.
    """

    name: str
    node: DatasetConfig
    omega_m: tuple = (0.20, 0.23, 0.26, 0.29, 0.32, 0.35)
    sigma_8: tuple = (0.65, 0.724, 0.798, 0.872, 0.946)
    held_out: tuple = ((0.275, 0.761), (0.245, 0.835), (0.305, 0.687), (0.35, 0.835))
    held_out_splits: SplitSizes = field(default_factory=lambda: SplitSizes(
        train=0, validation=20, development=0, auxiliary=20))
    seed: int = 36000
    held_out_seed: int = 36900

    def __post_init__(self) -> None:
        for name in ("omega_m", "sigma_8"):
            v = tuple(float(x) for x in getattr(self, name))
            require(len(v) >= 2 and all(math.isfinite(x) for x in v) and list(v) == sorted(set(v)),
                   f"cosmology grid {name} must be >= 2 increasing finite values, got {v!r}")
            object.__setattr__(self, name, v)
        held = tuple((float(a), float(b)) for a, b in self.held_out)
        object.__setattr__(self, "held_out", held)
        (lo_m, lo_s), (hi_m, hi_s) = self.low, self.high
        for om, s8 in held:
            require(lo_m <= om <= hi_m and lo_s <= s8 <= hi_s,
                   f"held-out node ({om}, {s8}) lies outside the training grid's hull")
            require((om, s8) not in self.training_nodes(), f"held-out node ({om}, {s8}) is a training node")
        require(self.node.splits.train > 0, "the training nodes need a train split")
        require(self.held_out_splits.train == 0, "held-out nodes must not have a train split")
        for name in ("seed", "held_out_seed"):
            v = getattr(self, name)
            require(isinstance(v, int) and v >= 0, f"{name} must be a non-negative integer, got {v!r}")

    @property
    def low(self) -> tuple[float, float]:
        """The hull's lower corner (Omega_m, sigma_8)."""
        return self.omega_m[0], self.sigma_8[0]

    @property
    def high(self) -> tuple[float, float]:
        """The hull's upper corner (Omega_m, sigma_8)."""
        return self.omega_m[-1], self.sigma_8[-1]

    def training_nodes(self) -> list[tuple[float, float]]:
        """(Omega_m, sigma_8) of every training node, Omega_m slowest."""
        return [(om, s8) for om in self.omega_m for s8 in self.sigma_8]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


COSMO_GRID_PRESETS: dict[str, CosmoGridConfig] = {
    # 6 x 5 = 30 training nodes of 8 parents x 200 crops of 64^2 (48,000 training crops), with
    # 2,000 validation and 2,000 auxiliary crops per node; 4 held-out nodes with 4,000 + 4,000
    # (3 inside the grid, (0.35, 0.835) on its edge). About 3.5 GB.
    "cosmo-grid": CosmoGridConfig(
        "cosmo-grid", DatasetConfig("cosmo-grid-node", crop_size=64, crops_per_map=200,
                                    splits=SplitSizes(train=8, validation=10, development=2, auxiliary=10))),
    # For tests: 2 x 2 nodes of 256^2 parents (the paper's pixels), one held-out node inside and one
    # on the edge; seconds to build.
    "tiny-cosmo": CosmoGridConfig(
        "tiny-cosmo", DatasetConfig("tiny-cosmo-node", SimulationConfig(map_size=256, angle_deg=256 * PIXEL_DEG),
                                    crop_size=32, crops_per_map=8,
                                    splits=SplitSizes(train=2, validation=1, development=0, auxiliary=1)),
        omega_m=(0.22, 0.32), sigma_8=(0.70, 0.90), held_out=((0.27, 0.80), (0.32, 0.80)),
        held_out_splits=SplitSizes(train=0, validation=1, development=0, auxiliary=1)),
}


def get_cosmo_grid_preset(name: str | CosmoGridConfig) -> CosmoGridConfig:
    """The cosmology-grid dataset preset called ``name`` (a config is returned unchanged)."""
    return name if isinstance(name, CosmoGridConfig) else _named(COSMO_GRID_PRESETS, name, "cosmology-grid preset")


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


@dataclass(frozen=True)
class ConditionalPreset(Preset):
    """A preset of the conditional emulator G(z | parameters), D(x | parameters): the same topology
    and training settings as :class:`Preset`, plus the parameter space it conditions on."""

    parameters: ParameterSpace = field(default_factory=ParameterSpace)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ConditionalPreset":
        base = Preset.from_dict({k: v for k, v in d.items() if k != "parameters"})
        try:
            space = ParameterSpace(**d["parameters"])
        except (KeyError, TypeError) as exc:
            raise PaperReproError(f"invalid configuration: {exc}") from None
        return cls(base.name, base.model, base.training, base.angle_deg, space)



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
# For tests: the tiny networks over the tiny-cosmo grid.
PRESETS["tiny-cond"] = ConditionalPreset(
    "tiny-cond", PRESETS["tiny"].model, PRESETS["tiny"].training,
    angle_deg=PRESETS["tiny"].angle_deg, parameters=ParameterSpace.of_grid(COSMO_GRID_PRESETS["tiny-cosmo"]))


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (a :class:`Preset` is returned unchanged)."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise PaperReproError(
            f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}") from None
