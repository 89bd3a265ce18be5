"""make_specs: SampleSpecs rows depend on (seed, id, config) only; cameras within the configured ranges."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sfray.geometry.camera_sampling", reason="camera sampling module not available yet")
pytest.importorskip("sfray.head.layer", reason="head layer (SampleSpecs import) not available yet")

from sfray.config.schema import CameraConfig, SamplingConfig  # noqa: E402
from sfray.conventions import EG3D_FOV_DIVISOR  # noqa: E402
from sfray.errors import ConfigError  # noqa: E402
from sfray.sampling import STRATEGIES, make_specs  # noqa: E402
from sfray.sampling.draw import Dims  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from guide_rows import guide_kw  # noqa: E402

KW = dict(n_shape=10, n_expression=6, latent_dim=4)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_specs_are_batch_invariant(name):
    sampling = SamplingConfig(strategy=name, jaw_open_range=[0.0, 0.3], eye_range=[-0.2, 0.2],
                              **guide_kw(name, Dims(10, 6, 4)))
    camera = CameraConfig()
    whole = make_specs(np.arange(12), 5, sampling, camera, **KW)
    parts = [make_specs(torch.arange(6, 12), 5, sampling, camera, **KW),
             make_specs(np.arange(6), 5, sampling, camera, **KW)]
    joined = type(whole).concat([parts[1], parts[0]])
    for f in ("sample_id", "seed", "latent", "shape", "expression", "pose", "camera", "cond_camera"):
        assert torch.equal(getattr(whole, f), getattr(joined, f)), f
    assert whole.camera.shape == (12, 25) and whole.camera.dtype == torch.float32
    assert whole.latent.shape == (12, 4) and whole.pose.shape == (12, 15) and whole.seed.dtype == torch.int64
    assert len({tuple(r.tolist()) for r in whole.camera}) == 12
    assert torch.equal(whole.cond_camera, whole.cond_camera[:1].expand(12, -1))


def test_cameras_respect_the_fov_range_and_orbit_radius():
    camera = CameraConfig(fov_range=[18.0, 24.0])
    specs = make_specs(np.arange(64), 0, SamplingConfig(strategy="sobol"), camera, **KW)
    focal = specs.camera[:, 16].double()  # intrinsics [0, 0]
    f_of = lambda deg: 1.0 / (EG3D_FOV_DIVISOR * math.tan(math.radians(deg) / 2))  # noqa: E731
    assert (focal <= f_of(18.0) + 1e-4).all() and (focal >= f_of(24.0) - 1e-4).all()
    pos = specs.camera[:, :16].reshape(-1, 4, 4)[:, :3, 3].double()
    dist = pos.norm(dim=1)  # EG3D's look-at sampler orbits the world origin
    assert torch.allclose(dist, torch.full_like(dist, camera.radius), atol=1e-4)
    assert len({round(float(x), 4) for x in pos[:, 0]}) == 64  # yaw varies per sample


def test_zero_latent_dim_and_empty_batch():
    specs = make_specs([3, 4], 1, SamplingConfig(), CameraConfig(), n_shape=5, n_expression=2, latent_dim=0)
    assert specs.latent.shape == (2, 0)
    empty = make_specs(np.zeros(0, np.int64), 1, SamplingConfig(), CameraConfig(), **KW)
    assert len(empty) == 0 and empty.camera.shape == (0, 25)


def test_conditioning_camera_is_frontal_or_the_render_camera():
    """``camera.conditioning``: ``frontal`` gives every sample the frontal label at ``cond_fov``,
    ``render`` each sample its own rendering camera (the SynthForge release)."""
    from sfray.geometry.camera import frontal_camera_label

    sampling = SamplingConfig()
    frontal = make_specs(np.arange(5), 2, sampling, CameraConfig(conditioning="frontal", cond_fov=20.0), **KW)
    render = make_specs(np.arange(5), 2, sampling, CameraConfig(conditioning="render"), **KW)
    expected = frontal_camera_label(20.0).float()
    assert torch.allclose(frontal.cond_camera, expected.expand(5, -1))
    assert torch.equal(render.cond_camera, render.camera) and torch.equal(render.camera, frontal.camera)
    assert not torch.equal(render.cond_camera, frontal.cond_camera)
    with pytest.raises(ConfigError, match="camera.conditioning"):
        make_specs(np.arange(2), 0, sampling, CameraConfig(conditioning="side"), **KW)
