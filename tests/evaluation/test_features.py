"""paper_repro.evaluation.features: a discriminator's last convolutional activations as a feature map,
and the birthday test in that space (the paper's third space)."""
import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.evaluation.features import discriminator_embedding, discriminator_features
from paper_repro.gan.models import build_discriminator, feature_extractor
from tests.helpers import check_birthday_separates, smooth_maps

#: side angle (deg) of the tiny preset's 32^2 maps at the paper's pixel scale
ANGLE = 32 * 3.464 / 1024


@pytest.fixture(scope="module")
def disc():
    return build_discriminator("tiny", seed=0)


def test_features_are_the_last_convolution_of_scaled_maps_in_batches(disc, tmp_path):
    maps = smooth_maps(7, 32, seed=1)
    f = discriminator_features(disc, maps, data_scale=2.5, batch_size=3)
    ref = np.asarray(feature_extractor(disc)([maps[..., None] * np.float32(2.5)], training=False))
    assert f.dtype == np.float32 and f.shape == (7, int(np.prod(ref.shape[1:])))
    np.testing.assert_allclose(f, ref.reshape(7, -1), rtol=1e-5, atol=1e-6)
    on_disk = discriminator_features(disc, maps, data_scale=2.5, out=tmp_path / "f.npy")
    np.testing.assert_allclose(np.load(tmp_path / "f.npy"), f, rtol=1e-5, atol=1e-6)
    assert isinstance(on_disk, np.memmap)
    bad = maps.copy()
    bad[4, 0, 0] = np.nan
    with pytest.raises(PaperReproError, match="map 4 contains NaN"):
        discriminator_features(disc, bad)
    with pytest.raises(PaperReproError, match="takes 32x32 maps"):
        discriminator_features(disc, smooth_maps(2, 16, seed=2))
    with pytest.raises(PaperReproError, match="batch_size"):
        discriminator_features(disc, maps, batch_size=0)


def test_birthday_flags_collapsed_set_and_passes_independent_set(disc):
    check_birthday_separates(discriminator_embedding(disc, data_scale=2.5), ANGLE)
