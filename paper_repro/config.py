"""Typed configuration for every stage, and the named presets (``paper``, ``cpu64``, ``tiny``).

Every default that comes from the paper (Mustafa et al. 2019, Sect. 2.1-2.3) or from the authors'
training code says where it comes from. Presets are looked up by name with :func:`get_preset`.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, asdict
from typing import Any

from .errors import PaperReproError


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise PaperReproError(msg)


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
        _check(self.n_strided >= 1, f"n_strided must be >= 1, got {self.n_strided}")
        f = 2 ** self.n_strided
        _check(self.image_size > 0 and self.image_size % f == 0,
               f"image_size must be a positive multiple of 2**n_strided={f}, got {self.image_size}")
        _check(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        _check(self.base_filters >= 1, f"base_filters must be >= 1, got {self.base_filters}")
        _check(self.kernel_size >= 1, f"kernel_size must be >= 1, got {self.kernel_size}")
        _check(0.0 <= self.bn_momentum < 1.0, f"bn_momentum must be in [0, 1), got {self.bn_momentum}")
        _check(self.bn_epsilon > 0, f"bn_epsilon must be > 0, got {self.bn_epsilon}")
        _check(self.init_stddev > 0, f"init_stddev must be > 0, got {self.init_stddev}")

    @property
    def start_size(self) -> int:
        """Side of the first feature map after the dense layer (16 for the paper)."""
        return self.image_size // 2 ** self.n_strided


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

    def __post_init__(self) -> None:
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        _check(0.0 <= self.beta_1 < 1.0, f"beta_1 must be in [0, 1), got {self.beta_1}")
        _check(0.0 <= self.flip_prob <= 1.0, f"flip_prob must be in [0, 1], got {self.flip_prob}")
        _check(self.epochs >= 0, f"epochs must be >= 0, got {self.epochs}")
        _check(self.selection_epochs >= 0, f"selection_epochs must be >= 0, got {self.selection_epochs}")
        _check(self.selection_every >= 1, f"selection_every must be >= 1, got {self.selection_every}")
        _check(self.selection_maps >= 2, f"selection_maps must be >= 2, got {self.selection_maps}")
        _check(self.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        _check(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        _check(self.data_scale > 0, f"data_scale must be > 0, got {self.data_scale}")

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
        try:
            return cls(name=d["name"], model=ModelConfig(**d["model"]),
                       training=TrainingConfig(**d["training"]),
                       angle_deg=float(d.get("angle_deg", 0.866)))
        except (KeyError, TypeError) as exc:
            raise PaperReproError(f"invalid configuration: {exc}") from None

    def replace(self, **training_overrides: Any) -> "Preset":
        """A copy with some training settings changed (validated again)."""
        return dataclasses.replace(
            self, training=dataclasses.replace(self.training, **training_overrides))


# --- simulation settings (issue 3: paper_repro.simulation) -----------------------------------

# --- certification settings (issue 4: paper_repro.comparison, validation/) --------------------

# --- presets ------------------------------------------------------------------------------------
# 0.203 arcmin pixels: the paper's 3.464 deg / 1024 px. A 64 px crop is 64 * 3.464 / 1024 deg.
PIXEL_DEG = 3.464 / 1024

PRESETS: dict[str, Preset] = {
    # Tables 1-2 and Sect. 2.3 exactly.
    "paper": Preset("paper", ModelConfig(), TrainingConfig(), angle_deg=256 * PIXEL_DEG),
    # Same topology at 64x64 (0.216 deg) with 32 base filters (G 1.34M, D 1.08M parameters),
    # ~1 s per step on 2 CPU cores. Maps enter tanh scaled by 2.5 (still inside (-1, 1)):
    # a documented departure, see ../shared/reference/cpu-training-notes.md.
    "cpu64": Preset(
        "cpu64",
        ModelConfig(image_size=64, base_filters=32),
        TrainingConfig(epochs=20, selection_epochs=1, selection_every=50, selection_maps=1024,
                       checkpoint_every=200, data_scale=2.5),
        angle_deg=64 * PIXEL_DEG,
    ),
    # For tests: seconds per epoch on a CPU.
    "tiny": Preset(
        "tiny",
        ModelConfig(image_size=32, latent_dim=16, base_filters=8),
        TrainingConfig(batch_size=16, epochs=2, selection_epochs=0, selection_every=2,
                       selection_maps=64, log_every=1, data_scale=2.5),
        angle_deg=32 * PIXEL_DEG,
    ),
}


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (a :class:`Preset` is returned unchanged)."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise PaperReproError(
            f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}") from None
