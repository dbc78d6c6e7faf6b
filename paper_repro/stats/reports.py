"""JSON reports of the statistics stage: plain-Python conversion and a dataclass mix-in.

Every verdict and result the statistics write (bootstrap results, certification verdicts, copying
and birthday tests) goes through :func:`jsonable`, so NaN and inf become ``null`` and the JSON is
strict (``allow_nan=False``).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

import numpy as np


def jsonable(x):
    """Plain Python (lists, dicts, floats; None for NaN/inf) for ``json.dumps(allow_nan=False)``.

    Every report of the statistics stage (bootstrap results, verdicts, copying tests) goes through it.
    """
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    return x


class JsonReport:
    """Mix-in for result dataclasses: :meth:`to_dict` (plain Python) and :meth:`to_json` (strict JSON)."""

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False)
