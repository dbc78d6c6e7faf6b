"""Sect. 3.2: generated maps are no closer to the training maps than independent maps are."""
import pytest

from tests.helpers import check


def test_memorisation(report):
    if "memorisation" not in report.criteria:
        pytest.skip("memorisation needs --training")
    check(report, "memorisation")
