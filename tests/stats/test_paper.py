"""paper_repro.stats.paper: the paper's statistics of a set of maps, labelled, in one call."""
from __future__ import annotations

import numpy as np

from paper_repro.stats import paper
from tests.stats.references import close


def test_paper_statistics_bundle(lenstools_fixture):
    f = lenstools_fixture
    out = paper.paper_statistics(f["maps"], float(f["angle_deg"]), pixel_edges=np.linspace(-0.1, 0.2, 31))
    labels, p = out["power_spectrum"]
    assert p.shape == (4, 248) and labels[0] == 300.0
    labels, mf = out["minkowski_functionals"]
    assert mf.shape == (4, 57) and labels[0] == "V0@-1.9" and labels[19].startswith("V1@")
    close(mf[:, 38:], f["V2"])
    assert out["pixel_histogram"][1].shape == (4, 30)
