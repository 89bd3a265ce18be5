"""The optional PyTorch3D backend agrees with the torch rasterizer (skipped without pytorch3d)."""

import pytest
import torch

from sfray.config.schema import AnnotateConfig
from sfray.geometry.rasterizer import get_rasterizer, rasterize

pytest.importorskip("pytorch3d")


def _soup(b: int, f: int, h: int, w: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(b, f, 1, 2, generator=g) * torch.tensor([float(w), float(h)])
    xy = centre + (torch.rand(b, f, 3, 2, generator=g) - 0.5) * 12
    z = 1 + 2 * torch.rand(b, f, 3, 1, generator=g)
    return torch.cat([xy, z], -1).reshape(b, f * 3, 3), torch.arange(f * 3).reshape(f, 3)


@pytest.mark.parametrize("perspective,cull", [(True, False), (False, True)])
def test_backends_agree(perspective, cull):
    p3d = get_rasterizer(AnnotateConfig(raster_backend="pytorch3d").raster_backend)
    verts, faces = _soup(3, 40, 32, 48, seed=4)
    ours = rasterize(verts, faces, (32, 48), perspective_correct=perspective, cull_backfaces=cull)
    theirs = p3d(verts, faces, (32, 48), perspective_correct=perspective, cull_backfaces=cull)
    same = ours.face_index == theirs.face_index
    assert same.float().mean() > 0.98  # only pixel centres on edges may differ (no tie rule there)
    both = same & ours.coverage
    assert torch.allclose(ours.zbuf[both], theirs.zbuf[both], rtol=1e-4)
    assert torch.allclose(ours.bary[both], theirs.bary[both], atol=1e-4)
