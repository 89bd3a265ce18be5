"""CUDA paths (skipped without a GPU): fp32 parity with the CPU reference, autocast, batching."""

from __future__ import annotations

import copy

import pytest
import torch

from sfray.generators.next3d.layers import seeded_generators

from .conftest import frontal_label

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _inputs(model, head, b):
    v, lms = head.vertices(torch.linspace(0, 1, b))
    z = torch.randn(b, model.cfg.z_dim, generator=torch.Generator().manual_seed(0))
    return z, frontal_label(b), torch.cat([v, lms], 1)


def test_cuda_fp32_matches_cpu_given_the_same_samples(small_model, synthetic_head):
    z, c, v = _inputs(small_model, synthetic_head, 2)
    cpu = small_model.texture_planes(small_model.mapping(z, c, 0.7, 14), v)
    gpu_model = copy.deepcopy(small_model).cuda()
    gpu = gpu_model.texture_planes(gpu_model.mapping(z.cuda(), c.cuda(), 0.7, 14), v.cuda())
    torch.testing.assert_close(gpu["planes"].cpu(), cpu["planes"], atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_batched(small_model, synthetic_head, dtype):
    model = copy.deepcopy(small_model).cuda()
    z, c, v = _inputs(model, synthetic_head, 8)
    ref = model(z.cuda(), c.cuda(), c.cuda(), v.cuda(), 0.7, 14, "const", seeded_generators(range(8), "cuda"))
    with torch.autocast("cuda", dtype=dtype):
        out = model(z.cuda(), c.cuda(), c.cuda(), v.cuda(), 0.7, 14, "const", seeded_generators(range(8), "cuda"))
    assert torch.isfinite(out["image"].float()).all()
    assert (out["image"].float() - ref["image"]).abs().mean() < 0.1
    torch.testing.assert_close(out["image_depth"].float(), ref["image_depth"], atol=0.05, rtol=0)
