"""Tables 1 and 2, layer by layer (paper-facts.md gives the exact counts)."""
import keras
import numpy as np
import pytest

from paper_repro import build_discriminator, build_generator, get_preset
from paper_repro.gan.models import (
    count_params,
    feature_extractor,
    flops_per_map,
    layer_table,
    recalibrate_batch_norm,
    recalibrated_copy,
)

G_TABLE = [  # (layer, output shape HWC, trainable params)
    ("dense", (131072,), 8_519_680), ("reshape", (16, 16, 512), 0), ("bn0", (16, 16, 512), 1024),
    ("relu0", (16, 16, 512), 0), ("deconv1", (32, 32, 256), 3_277_056), ("bn1", (32, 32, 256), 512),
    ("relu1", (32, 32, 256), 0), ("deconv2", (64, 64, 128), 819_328), ("bn2", (64, 64, 128), 256),
    ("relu2", (64, 64, 128), 0), ("deconv3", (128, 128, 64), 204_864), ("bn3", (128, 128, 64), 128),
    ("relu3", (128, 128, 64), 0), ("deconv4", (256, 256, 1), 1601), ("tanh", (256, 256, 1), 0),
]
D_TABLE = [
    ("conv0", (128, 128, 64), 1664), ("lrelu0", (128, 128, 64), 0),
    ("conv1", (64, 64, 128), 204_928), ("bn1", (64, 64, 128), 256), ("lrelu1", (64, 64, 128), 0),
    ("conv2", (32, 32, 256), 819_456), ("bn2", (32, 32, 256), 512), ("lrelu2", (32, 32, 256), 0),
    ("conv3", (16, 16, 512), 3_277_312), ("bn3", (16, 16, 512), 1024), ("lrelu3", (16, 16, 512), 0),
    ("flatten", (131072,), 0), ("logit", (1,), 131_073),
]


@pytest.fixture(scope="module")
def paper_models():
    return build_generator("paper", seed=0), build_discriminator("paper", seed=0)


def test_generator_table_1(paper_models):
    g, _ = paper_models
    assert layer_table(g) == G_TABLE
    assert count_params(g) == (12_824_449, 1_920)


def test_discriminator_table_2(paper_models):
    _, d = paper_models
    assert layer_table(d) == D_TABLE
    assert count_params(d) == (4_436_225, 1_792)


def test_batchnorm_and_activations(paper_models):
    g, d = paper_models
    bns = [l for m in (g, d) for l in m.layers if l.__class__.__name__ == "BatchNormalization"]
    assert len(bns) == 4 + 3
    assert all(l.momentum == 0.9 and l.epsilon == 1e-5 and l.center and l.scale for l in bns)
    assert g.layers[-1].activation.__name__ == "tanh"
    lrelu = [l for l in d.layers if l.name.startswith("lrelu")]
    assert all(l.negative_slope == pytest.approx(0.2) for l in lrelu)
    assert d.get_layer("logit").activation.__name__ == "linear"  # logits; sigmoid in the loss


def test_initialisers(paper_models):
    g, d = paper_models
    k = g.get_layer("deconv1").kernel.numpy()
    assert k.std() == pytest.approx(0.02, rel=0.02) and abs(k.mean()) < 1e-3
    c = d.get_layer("conv3").kernel.numpy()
    assert np.abs(c).max() <= 2 * 0.02 + 1e-7  # truncated at 2 sigma
    assert c.std() == pytest.approx(0.02 * 0.88, rel=0.03)  # std of N(0,1) truncated to +-2
    assert all(np.all(l.bias.numpy() == 0) for l in g.layers + d.layers if getattr(l, "bias", None) is not None)


def test_seeded_build_is_reproducible():
    a, b = build_generator("tiny", seed=4), build_generator("tiny", seed=4)
    c = build_generator("tiny", seed=5)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert not np.array_equal(a.get_layer("dense").kernel.numpy(), c.get_layer("dense").kernel.numpy())


def test_generator_range_and_discriminator_logits():
    g, d = build_generator("tiny", seed=1), build_discriminator("tiny", seed=1)
    maps = g(np.random.default_rng(0).standard_normal((3, 16)).astype("float32")).numpy()
    assert maps.shape == (3, 32, 32, 1) and np.all(np.abs(maps) < 1)
    assert d(maps).shape == (3, 1)
    assert feature_extractor(d)(maps).shape == (3, 2, 2, 64)


def test_flops_counts_paper_generator():
    f = flops_per_map(get_preset("paper").model)
    # dense 64 x 131072 MACs + four transposed convs (25 k^2 cin cout per input pixel)
    expected_g = 2 * (64 * 131072 + 25 * (512 * 256 * 16 ** 2 + 256 * 128 * 32 ** 2
                                          + 128 * 64 * 64 ** 2 + 64 * 1 * 128 ** 2))
    assert f["generator"] == expected_g
    assert f["discriminator"] > 0


# ------------------------------------------------------------------ batch-norm recalibration
def _bn_layers(model):
    return [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]


def test_recalibration_sets_moving_statistics_to_mean_batch_statistics():
    g = build_generator("tiny", seed=3)
    before = [w.copy() for w in (np.asarray(v) for v in g.trainable_weights)]
    recalibrate_batch_norm(g, batches=3, batch_size=16, seed=11)
    # trainable weights untouched
    for a, v in zip(before, g.trainable_weights):
        np.testing.assert_array_equal(a, np.asarray(v))
    # bn0 normalises the reshaped dense output: recompute its batch statistics by hand
    dense = keras.Model(g.input, g.get_layer("reshape").output)
    rng = np.random.default_rng(11)
    means, variances = [], []
    for _ in range(3):
        x = np.asarray(dense(rng.standard_normal((16, 16), dtype=np.float32)), dtype=np.float64)
        means.append(x.mean(axis=(0, 1, 2)))
        variances.append(x.var(axis=(0, 1, 2)))
    bn0 = g.get_layer("bn0")
    np.testing.assert_allclose(np.asarray(bn0.moving_mean), np.mean(means, 0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(bn0.moving_variance), np.mean(variances, 0), rtol=1e-4, atol=1e-7)
    assert all(l.momentum == 0.9 for l in _bn_layers(g))      # momentum restored


def test_recalibration_brings_inference_mode_to_training_mode():
    g = build_generator("tiny", seed=4)          # fresh: moving statistics are 0 / 1, far off
    z = np.random.default_rng(0).standard_normal((256, 16), dtype=np.float32)
    trained_mode = np.asarray(g(z, training=True))
    gap_before = np.abs(np.asarray(g(z, training=False)) - trained_mode).mean()
    original = np.asarray(g.get_layer("bn0").moving_mean).copy()
    copy = recalibrated_copy(g, batches=20, batch_size=64, seed=1)
    gap_after = np.abs(np.asarray(copy(z, training=False)) - trained_mode).mean()
    assert gap_after < gap_before / 10
    # the original keeps its statistics; the copy is deterministic for a seed
    np.testing.assert_array_equal(np.asarray(g.get_layer("bn0").moving_mean), original)
    again = recalibrated_copy(g, batches=20, batch_size=64, seed=1)
    np.testing.assert_array_equal(np.asarray(copy(z)), np.asarray(again(z)))


@pytest.mark.parametrize("kwargs, match", [({"batches": 0}, "batches"), ({"batch_size": 1}, "batch_size"),
                                           ({"batches": 2.5}, "batches")])
def test_recalibration_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        recalibrate_batch_norm(build_generator("tiny"), **kwargs)
