"""Shared fixtures: a small random Next3D network on a synthetic head (CPU, fractions of a second)."""

from __future__ import annotations

import pytest
import torch

from sfray.generators.next3d import texture_raster
from sfray.generators.next3d.config import Next3DConfig
from sfray.generators.next3d.generator import Next3DTriPlane

from .helpers import make_synthetic_head, sfray_or_reference_rasterize

FRONTAL_C2W = torch.tensor([[1.0, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 2.7], [0, 0, 0, 1]])
INTRINSICS = torch.tensor([[4.2647, 0, 0.5], [0, 4.2647, 0.5], [0, 0, 1.0]])


@pytest.fixture(autouse=True, scope="session")
def _rasterizer():
    """sfray's rasterizer when it is importable, else the brute-force reference of helpers.py."""
    rast = sfray_or_reference_rasterize()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(texture_raster, "_default_rasterize", lambda: rast)
        yield


def frontal_label(batch: int) -> torch.Tensor:
    c = torch.zeros(batch, 25)
    c[:, :16] = FRONTAL_C2W.reshape(-1)
    c[:, 16:] = INTRINSICS.reshape(-1)
    return c


@pytest.fixture(scope="session")
def synthetic_head():
    return make_synthetic_head(n_rings=16, n_segments=24)


def randomize_noise_strength(model: torch.nn.Module, value: float = 0.2) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(value)


@pytest.fixture(scope="session")
def small_model(synthetic_head) -> Next3DTriPlane:
    topo = synthetic_head.topology
    cfg = Next3DConfig.small(len(synthetic_head._base), len(topo.faces), len(topo.uv_coords))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Next3DTriPlane(cfg, topo).eval().requires_grad_(False)
        randomize_noise_strength(model)
    return model
