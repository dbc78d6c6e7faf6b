"""paper_repro.stats.birthday: the birthday-paradox test flags a mode-collapsed batch in every space
(pixel, ln power, a feature map) and passes an independent one; its support estimate recovers the
number of distinct maps."""
import json

import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.stats.birthday import birthday_test
from tests.helpers import check_birthday_separates, smooth_maps
from tests.stats.references import ANGLE


def projection(maps, out=None):
    """A feature map for the ``features`` space: a fixed random projection of each map to 64 numbers."""
    w = np.random.default_rng(0).standard_normal((32 * 32, 64)).astype(np.float32)
    f = np.asarray(maps, dtype=np.float32).reshape(len(maps), -1) @ w
    if out is not None:
        np.save(out, f)
        return np.load(out, mmap_mode="r")
    return f


def test_birthday_flags_collapsed_set_and_passes_independent_set():
    bad = check_birthday_separates(projection, ANGLE)
    json.dumps(bad.to_dict(), allow_nan=False)


def test_large_feature_sets_go_through_a_file_and_bad_input_raises(tmp_path):
    maps, ref = smooth_maps(40, 32, seed=35), smooth_maps(30, 32, seed=36)
    written = []

    def recording(m, out=None):
        written.append(out)
        return projection(m, out)

    res = birthday_test(maps, ref, spaces=("features",), features=recording, feature_memory_bytes=1,
                        workdir=tmp_path)
    assert written[0] is None and written[1] is not None and written[1].endswith("features.npy")
    assert res.spaces["features"]["n_maps"] == 40 and not list(tmp_path.iterdir())    # removed after use
    q = smooth_maps(3, 16, seed=51)
    with pytest.raises(PaperReproError, match="features=None"):
        birthday_test(q, smooth_maps(10, 16, seed=50), spaces=("features",))
    with pytest.raises(PaperReproError, match="maps"):
        birthday_test(np.zeros((5, 16, 16), np.int32), smooth_maps(10, 16, seed=50), spaces=("pixel",))
    with pytest.raises(PaperReproError, match="spaces"):
        birthday_test(q, smooth_maps(10, 16, seed=50), spaces=("cosine",))
    with pytest.raises(PaperReproError, match=r"features\(reference\)"):
        birthday_test(maps, ref, spaces=("features",), features=lambda m, out=None: np.ones(len(m)))
