"""Camera samplers: preset ranges, the vertical mapping of each preset, determinism."""

import math

import numpy as np
import pytest
import torch

from sfray.config.schema import CameraConfig
from sfray.errors import ConfigError
from sfray.geometry.camera import camera_label_to_matrices, focal_to_fov
from sfray.geometry.camera_sampling import camera_labels_from_uniform, effective_camera_ranges


def _decode(labels: torch.Tensor, cfg: CameraConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels -> (yaw, pitch, fov) by inverting the orbit geometry independently of the sampler."""
    c2w, k = camera_label_to_matrices(labels.double())
    centre = c2w[:, :3, 3].numpy()
    r = np.linalg.norm(centre, axis=1)
    yaw = np.arctan2(centre[:, 0], centre[:, 2])  # azimuth from +z towards +x
    polar = np.arccos(centre[:, 1] / r)
    if effective_camera_ranges(cfg)["vertical_mapping"] == "linear":
        pitch = polar - math.pi / 2
    else:  # EG3D: polar = arccos(1 - 2 v / pi), v = pi/2 + pitch
        pitch = (1 - np.cos(polar)) * math.pi / 2 - math.pi / 2
    return yaw, pitch, focal_to_fov(k[:, 0, 0]).numpy()


PRESET_EXPECTED = {
    "release": ((-0.8, 0.8), (-0.8, 0.8), (18.0, 24.0)),
    "paper": ((-math.pi / 4, math.pi / 4), (-math.pi / 4, math.pi / 4), (12.0, 27.0)),
}


@pytest.mark.parametrize("preset", ["release", "paper", "custom"])
def test_ranges_respected(preset):
    cfg = CameraConfig(preset=preset)
    if preset == "custom":
        cfg = CameraConfig(preset="custom", yaw_range=[-0.3, 0.5], pitch_range=[-0.2, 0.1],
                           fov_range=[14, 16], radius=3.0, pivot=[0.0, 0.05, 0.1])
        expected = ((-0.3, 0.5), (-0.2, 0.1), (14.0, 16.0))
    else:
        expected = PRESET_EXPECTED[preset]
    ranges = effective_camera_ranges(cfg)
    got_ranges = [ranges["yaw_range"], ranges["pitch_range"], ranges["fov_range"]]
    assert np.allclose(np.array(got_ranges), np.array(expected))
    u = torch.rand(256, 3, generator=torch.Generator().manual_seed(0))
    u[0] = 0.0
    u[1] = 1.0
    labels = camera_labels_from_uniform(u, cfg)
    assert labels.shape == (256, 25) and labels.dtype == torch.float32
    yaw, pitch, fov = _decode(labels, cfg)
    for got, (lo, hi) in zip((yaw, pitch, fov), expected):
        assert got.min() >= lo - 1e-4 and got.max() <= hi + 1e-4
        assert got[0] == pytest.approx(lo, abs=1e-4) and got[1] == pytest.approx(hi, abs=1e-4)
    # the camera sits on the sphere of cfg.radius around the world origin, looking at the pivot
    c2w, _ = camera_label_to_matrices(labels.double())
    assert np.allclose(np.linalg.norm(c2w[:, :3, 3].numpy(), axis=1), cfg.radius, atol=1e-5)
    to_pivot = torch.tensor(cfg.pivot, dtype=torch.float64) - c2w[:, :3, 3]
    fwd = c2w[:, :3, 2]
    assert torch.allclose(torch.nn.functional.normalize(to_pivot, dim=1), fwd, atol=1e-5)


def test_release_pitch_goes_through_arccos_and_paper_does_not():
    u = torch.tensor([[0.5, 1.0, 0.5]])  # zero yaw, maximal pitch
    polar = {}
    for preset in ("release", "paper"):
        c2w, _ = camera_label_to_matrices(camera_labels_from_uniform(u, CameraConfig(preset=preset)).double())
        polar[preset] = math.acos(c2w[0, 1, 3].item() / 2.7) - math.pi / 2
    assert polar["release"] == pytest.approx(0.534, abs=2e-3)  # 0.8 rad in, ~0.53 rad out
    assert polar["paper"] == pytest.approx(math.pi / 4, abs=1e-6)  # a plain elevation angle


def test_deterministic_given_u_and_rows_independent():
    g = torch.Generator().manual_seed(3)
    u = torch.rand(32, 3, generator=g)
    cfg = CameraConfig()
    a = camera_labels_from_uniform(u, cfg)
    assert torch.equal(a, camera_labels_from_uniform(u.clone(), cfg))
    assert torch.equal(a, camera_labels_from_uniform(u.numpy().astype(np.float64), cfg))
    assert torch.equal(a[7:9], camera_labels_from_uniform(u[7:9], cfg))
    b = camera_labels_from_uniform(torch.rand(32, 3, generator=g), cfg)
    assert not torch.equal(a, b)


def test_preset_rejects_conflicting_ranges_and_bad_input():
    with pytest.raises(ConfigError, match="camera.yaw_range"):
        effective_camera_ranges(CameraConfig(preset="release", yaw_range=[-0.5, 0.5]))
    with pytest.raises(ConfigError, match="camera.preset"):
        effective_camera_ranges(CameraConfig(preset="wide"))
    with pytest.raises(ValueError):
        camera_labels_from_uniform(torch.rand(4, 2), CameraConfig())
    with pytest.raises(ValueError):
        camera_labels_from_uniform(torch.full((4, 3), 1.5), CameraConfig())
