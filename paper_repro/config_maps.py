"""Typed settings of the maps (simulation, datasets, cosmology grids) and their named presets:
part of :mod:`paper_repro.config`, which re-exports them, kept apart for size."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import PaperReproError, require

#: 0.203 arcmin pixels: the paper's 3.464 deg / 1024 px. A 64 px crop is 64 * 3.464 / 1024 deg.
PIXEL_DEG = 3.464 / 1024


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
