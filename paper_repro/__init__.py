"""paper_repro: CosmoGAN (Mustafa et al. 2019) in Keras 3, with a convergence-map simulator and a
calibrated statistical certification suite.

Heavy modules (Keras, pyccl) are imported on first use, so ``import paper_repro`` is cheap.
"""
from __future__ import annotations

import importlib

from .config import PRESETS, ModelConfig, Preset, TrainingConfig, get_preset
from .errors import PaperReproError

__version__ = "0.1.0"

_LAZY = {
    "build_generator": "gan.models",
    "build_discriminator": "gan.models",
    "CosmoGAN": "gan.cosmogan",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'paper_repro' has no attribute {name!r}")


__all__ = ["ModelConfig", "TrainingConfig", "Preset", "PRESETS", "get_preset", "PaperReproError",
           "build_generator", "build_discriminator", "CosmoGAN", "__version__"]
