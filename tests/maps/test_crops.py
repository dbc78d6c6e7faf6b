"""Crops held as parent maps: the same crops as the on-disk dataset, without them on disk."""
import numpy as np
import pytest

from paper_repro.config import get_dataset_preset
from paper_repro.errors import PaperReproError
from paper_repro.maps.crops import ParentCrops
from paper_repro.maps.datasets import build_dataset, load_dataset


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    build_dataset(out, "tiny", progress=False)
    return out


def test_parent_crops_are_the_datasets_crops(tiny_dataset):
    data = load_dataset(tiny_dataset)
    for split in ("train", "auxiliary"):
        source = ParentCrops.from_dataset(tiny_dataset, split, progress=False)
        on_disk = np.asarray(data[split])
        assert len(source) == len(on_disk)
        idx = np.random.default_rng(0).permutation(len(on_disk))[:20]
        np.testing.assert_array_equal(source.crops(idx), on_disk[idx])
        np.testing.assert_array_equal(source.index, data.index(split))


def test_simulated_parents_in_processes_equal_the_serial_ones():
    cfg = get_dataset_preset("tiny")
    serial = ParentCrops.simulate(cfg, "train", n_parents=2, progress=False)
    pooled = ParentCrops.simulate(cfg, "train", n_parents=2, progress=False, workers=2)
    np.testing.assert_array_equal(serial.parents, pooled.parents)
    np.testing.assert_array_equal(serial.index, pooled.index)
    assert len(serial) == 2 * cfg.crops_per_map


def test_bad_parent_crops_are_one_line_errors():
    parents = np.zeros((2, 16, 16), np.float32)
    with pytest.raises(PaperReproError, match="outside the parent maps"):
        ParentCrops(parents, [[0, 10, 0]], 8)
    with pytest.raises(PaperReproError, match="outside the parent maps"):
        ParentCrops(parents, [[2, 0, 0]], 8)
    with pytest.raises(PaperReproError, match="does not fit"):
        ParentCrops(parents, [[0, 0, 0]], 32)
    with pytest.raises(PaperReproError, match=r"\(P, H, W\)"):
        ParentCrops(parents[0], [[0, 0, 0]], 8)
    with pytest.raises(PaperReproError, match="asked for 9"):
        ParentCrops.simulate(get_dataset_preset("tiny"), "train", n_parents=9, progress=False)
