"""paper_repro.evaluation.interpolation: slerp stays on the sphere and hits its ends; a generator's
path reproduces its maps and the smoothness measure tells a smooth generator from a scrambled one."""
import json

import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.evaluation.interpolation import slerp, slerp_path
from tests.helpers import smooth_maps

#: side angle (deg) of the tiny preset's 32^2 maps at the paper's pixel scale
ANGLE = 32 * 3.464 / 1024


def test_slerp_endpoints_equal_generator_maps():
    from paper_repro.gan.models import build_generator

    gen = build_generator("tiny", seed=3)
    z0, z1 = np.random.default_rng(40).standard_normal((2, 16)).astype(np.float32)
    res = slerp_path(gen, z0, z1, n_steps=9, data_scale=2.5, angle_deg=ANGLE, n_random=64)
    np.testing.assert_array_equal(res.latents[0], z0)
    np.testing.assert_array_equal(res.latents[-1], z1)
    ends = np.asarray(gen(np.stack([z0, z1]), training=False))[..., 0] / np.float32(2.5)
    np.testing.assert_allclose(res.maps[0], ends[0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(res.maps[-1], ends[1], atol=1e-6, rtol=0)
    assert res.maps.shape == (9, 32, 32) and len(res.ell) == 3
    assert set(res.stats) >= {"mean", "variance", "pixel_step"} and len(res.stats) == 6
    assert res.max_step["pixel"] < 0.5
    json.dumps(res.summary(), allow_nan=False)


def test_slerp_interpolates_on_the_sphere():
    rng = np.random.default_rng(41)
    z0, z1 = rng.standard_normal((2, 64))
    z1 *= np.linalg.norm(z0) / np.linalg.norm(z1)
    path = slerp(z0, z1, np.linspace(0, 1, 11)).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z0), rtol=1e-6)
    cos = path @ z0 / (np.linalg.norm(path, axis=1) * np.linalg.norm(z0))
    ang = np.arccos(np.clip(cos, -1, 1))
    np.testing.assert_allclose(np.diff(ang), ang[-1] / 10, rtol=1e-4)      # constant angular speed


def test_slerp_smoothness_separates_smooth_and_scrambled_generators():
    basis = smooth_maps(16, 32, seed=42).reshape(16, -1)

    def linear(z):                   # a smooth generator: maps linear in z
        return (z @ basis).reshape(len(z), 32, 32) / 4

    def scrambled(z):                # nearby latents give unrelated maps
        seeds = np.abs(np.asarray(z)[:, 0] * 1e6).astype(np.int64)
        return np.stack([smooth_maps(1, 32, seed=int(s))[0] for s in seeds])

    z0, z1 = np.random.default_rng(43).standard_normal((2, 16)).astype(np.float32)
    smooth = slerp_path(linear, z0, z1, angle_deg=ANGLE, n_random=128)
    rough = slerp_path(scrambled, z0, z1, angle_deg=ANGLE, n_random=128)
    assert smooth.smooth and max(smooth.max_step.values()) < 0.5
    assert not rough.smooth and rough.max_step["pixel"] > 0.9


def test_bad_input_raises():
    with pytest.raises(PaperReproError, match="antipodal"):
        slerp(np.ones(4), -np.ones(4), [0.5])
    with pytest.raises(PaperReproError, match="z0, z1"):
        slerp(np.ones(4), np.ones(5), [0.5])
    with pytest.raises(PaperReproError, match="NaN"):
        slerp(np.array([1.0, np.nan]), np.ones(2), [0.5])
    with pytest.raises(PaperReproError, match="n_steps"):
        slerp_path(lambda z: np.zeros((len(z), 8, 8)), np.ones(4), np.ones(4) * 2, n_steps=1)
