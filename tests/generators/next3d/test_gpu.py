"""CUDA paths (skipped without a GPU): fp32 parity with the CPU reference, fast paths, CUDA graphs,
torch.compile, autocast and batch sizing.

fp32 on the GPU means TF32 off (the model's entry points turn it off for matmuls and cuDNN
convolutions and restore the caller's setting), so the GPU agrees with the CPU reference to float
rounding; the fast paths, graphs and compile are held to the same 1e-4 relative as on CPU
(docs/next3d.md). Random numbers differ between CPU and CUDA generators, so renders are compared
with the ray jitter and importance-sampling draws made once on the CPU and handed to both.
"""

from __future__ import annotations

import copy

import pytest
import torch

from sfray.generators.next3d.layers import seeded_generators
from sfray.generators.next3d.perf import FastPaths, apply_fast_paths, tf32_scope
from sfray.generators.next3d.renderer import draw_uniforms, ray_sampler
from sfray.generators.next3d.wrapper import Next3DGenerator

from .conftest import frontal_label
from .helpers import FakeHead

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _inputs(model, head, b):
    v, lms = head.vertices(torch.linspace(0, 1, b))
    z = torch.randn(b, model.cfg.z_dim, generator=torch.Generator().manual_seed(0))
    return z, frontal_label(b), torch.cat([v, lms], 1)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double().cpu() - b.double().cpu()).abs().max() / b.double().abs().max())


def _render_inputs(model, c, b):
    res = model.neural_rendering_resolution
    origins, dirs = ray_sampler(c[:, :16].reshape(-1, 4, 4), c[:, 16:25].reshape(-1, 3, 3), res)
    jitter, u = draw_uniforms(b, res * res, model.rendering_kwargs, seeded_generators(range(b), "cpu"),
                              torch.device("cpu"))
    return origins, dirs, jitter, u


def _full(model, z, c, v, device, fast: FastPaths):
    """mapping -> texture planes -> render_core on ``device`` with the CPU-drawn random numbers."""
    model = copy.deepcopy(model).to(device)
    apply_fast_paths(model, fast)

    def to(t):
        return None if t is None else t.to(device)

    with torch.no_grad():
        ws = model.mapping(z.to(device), c.to(device), 0.7, 14)
        tp = model.texture_planes(ws, v.to(device))
        origins, dirs, jitter, u = _render_inputs(model, c, z.shape[0])
        out = model.render_core(tp["planes"], tp["eg3d_ws"], to(origins), to(dirs), to(jitter), to(u))
    return tp, out


def test_cuda_fp32_matches_cpu_given_the_same_samples(small_model, synthetic_head):
    z, c, v = _inputs(small_model, synthetic_head, 2)
    cpu = small_model.texture_planes(small_model.mapping(z, c, 0.7, 14), v)
    gpu_model = copy.deepcopy(small_model).cuda()
    with tf32_scope(True):  # the caller's TF32 setting must not leak into the generator's fp32
        gpu = gpu_model.texture_planes(gpu_model.mapping(z.cuda(), c.cuda(), 0.7, 14), v.cuda())
    torch.testing.assert_close(gpu["planes"].cpu(), cpu["planes"], atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("fast", [FastPaths(), FastPaths(True, True)])
def test_cuda_end_to_end_within_1e4_of_the_cpu_reference(small_model, synthetic_head, fast):
    z, c, v = _inputs(small_model, synthetic_head, 2)
    _, ref = _full(small_model, z, c, v, "cpu", FastPaths())
    _, got = _full(small_model, z, c, v, "cuda", fast)
    for key in ("image", "image_raw", "image_depth"):
        assert relative(got[key], ref[key]) <= 1e-4, key


def _generator(small_model, synthetic_head, **kw) -> Next3DGenerator:
    return Next3DGenerator(copy.deepcopy(small_model), FakeHead(synthetic_head), identity="t", device="cuda",
                           resolution=small_model.cfg.img_resolution, **kw)


def _specs(gen, b):
    specs = gen._probe_specs(b)
    specs.latent = torch.randn(b, gen.latent_dim, generator=torch.Generator().manual_seed(3)).cuda()
    return specs


def test_cuda_graphs_replay_the_eager_result(small_model, synthetic_head):
    eager = _generator(small_model, synthetic_head)
    graphed = _generator(small_model, synthetic_head, cuda_graphs=True)
    assert graphed.cuda_graphs and eager.fast_paths == FastPaths(True, True)
    specs = _specs(eager, 4)
    ref = eager.generate(specs)
    for _ in range(3):  # capture once, then replay
        out = graphed.generate(specs)
        assert relative(out.extras["image_raw"], ref.extras["image_raw"]) <= 1e-4
        assert relative(out.depth, ref.depth) <= 1e-4
    other = _specs(eager, 4)
    other.latent = other.latent.flip(0)
    assert relative(graphed.generate(other).extras["image_raw"], eager.generate(other).extras["image_raw"]) <= 1e-4


def test_torch_compile_matches_eager(small_model, synthetic_head):
    eager = _generator(small_model, synthetic_head)
    compiled = _generator(small_model, synthetic_head, compile=True)
    assert compiled.compiled
    specs = _specs(eager, 2)
    ref, out = eager.generate(specs), compiled.generate(specs)
    assert relative(out.extras["image_raw"], ref.extras["image_raw"]) <= 1e-4
    assert relative(out.depth, ref.depth) <= 1e-4


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


def test_bf16_fast_paths_within_the_documented_tolerance(small_model, synthetic_head):
    ref = _generator(small_model, synthetic_head)
    low = _generator(small_model, synthetic_head, precision="bf16")
    specs = _specs(ref, 4)
    a, b = ref.generate(specs), low.generate(specs)
    assert relative(b.extras["image_raw"], a.extras["image_raw"]) <= 0.1  # docs/next3d.md bf16 tolerance
    assert relative(b.depth, a.depth) <= 2.5e-2


def test_fit_batch_size_on_cuda(small_model, synthetic_head):
    gen = _generator(small_model, synthetic_head)
    b = gen.fit_batch_size(8, limit=64)
    assert 1 <= b <= 64
    gen.generate(_specs(gen, min(b, 16)))
