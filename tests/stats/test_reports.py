"""paper_repro.stats.reports: strict JSON from NumPy values; the report mix-in of every verdict."""
import json
from dataclasses import dataclass

import numpy as np
import pytest

from paper_repro.stats.reports import JsonReport, jsonable


def test_jsonable_gives_plain_json():
    out = jsonable({1: np.array([1.5, np.nan]), "b": (np.int64(3), np.bool_(True), np.float32(np.inf))})
    assert out == {"1": [1.5, None], "b": [3, True, None]}
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_json_report_is_strict_json():
    @dataclass
    class Result(JsonReport):
        value: float
        values: np.ndarray

    r = Result(float("nan"), np.array([1.0, np.inf]))
    assert r.to_dict() == {"value": None, "values": [1.0, None]}
    assert json.loads(r.to_json()) == r.to_dict()
    with pytest.raises(ValueError):                    # what jsonable protects against
        json.dumps({"v": float("nan")}, allow_nan=False)
