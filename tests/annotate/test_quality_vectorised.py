"""The batch-vectorised quality figures give exactly the numbers of the per-sample computation."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from sfray.annotate.quality import depth_residuals, landmark_depth_residual, masked_quantiles
from sfray.geometry.resample import resample_depth_mask, sample_bilinear


def _per_sample(values: torch.Tensor, keep: torch.Tensor, q: float) -> tuple[list[float], list[float], list[float]]:
    """The old way: one ``median`` / ``torch.quantile`` / ``mean`` call per row."""
    med, quant, mean = [], [], []
    for i in range(values.shape[0]):
        v = values[i][keep[i]]
        if v.numel() == 0:
            med.append(math.inf), quant.append(math.inf), mean.append(math.inf)
        else:
            med.append(float(v.median())), quant.append(float(torch.quantile(v, q))), mean.append(float(v.mean()))
    return med, quant, mean


def test_masked_quantiles_match_per_row_torch_calls_bit_for_bit():
    g = torch.Generator().manual_seed(3)
    for trial in range(20):
        b, n = 6, int(torch.randint(1, 300, (1,), generator=g))
        scale = 10 ** float(torch.randint(-3, 3, (1,), generator=g))
        values = torch.rand(b, n, generator=g, dtype=torch.float64) * scale
        keep = torch.rand(b, n, generator=g) < float(torch.rand(1, generator=g))
        keep[0] = False  # a row with nothing kept
        keep[1, :] = False
        keep[1, 0] = True  # a row with a single value
        for q in (0.5, 0.9, 0.25):
            med, quant, count = masked_quantiles(values, keep, q)
            want_med, want_q, _ = _per_sample(values, keep, q)
            assert med.tolist() == want_med, (trial, q)
            assert quant.tolist() == want_q, (trial, q)
            assert count.tolist() == keep.sum(1).tolist()


def _old_depth_residuals(mesh_depth, mesh_mask, gen_depth, gen_mask):
    h = gen_depth.shape[-1]
    d, m = resample_depth_mask(mesh_depth, mesh_mask.to(torch.float64), h)
    both = m & (gen_mask.to(torch.float64) >= 0.5)
    diff = (d - gen_depth.to(torch.float64)).abs()
    return _per_sample(diff.flatten(1), both.flatten(1), 0.9)


def test_depth_residuals_equal_the_per_sample_loop_on_random_batches():
    g = torch.Generator().manual_seed(7)
    for _ in range(5):
        b, big, small = 4, 32, 16
        mesh_depth = 2.0 + torch.rand(b, big, big, generator=g, dtype=torch.float64)
        mesh_mask = torch.rand(b, big, big, generator=g) < 0.6
        gen_depth = 2.0 + torch.rand(b, small, small, generator=g)
        gen_mask = torch.rand(b, small, small, generator=g)
        gen_mask[2] = 0.0  # no shared pixel: inf
        med, p90, mean = depth_residuals(mesh_depth, mesh_mask, gen_depth, gen_mask)
        want_med, want_p90, want_mean = _old_depth_residuals(mesh_depth, mesh_mask, gen_depth, gen_mask)
        assert med.tolist() == torch.tensor(want_med).tolist()  # stored as float32, as always
        assert p90.tolist() == torch.tensor(want_p90).tolist()
        assert math.isinf(mean[2]) and math.isinf(want_mean[2])
        finite = [i for i in range(b) if i != 2]
        assert torch.allclose(mean[finite], torch.tensor(want_mean)[finite], rtol=1e-6)


def test_landmark_depth_equals_the_per_sample_loop():
    g = torch.Generator().manual_seed(11)
    b, res, h = 5, 64, 32
    ann = SimpleNamespace(
        landmarks_2d=torch.rand(b, 68, 2, generator=g) * res,
        landmarks_3d=2.0 + torch.rand(b, 68, 3, generator=g),
        landmarks_visible=torch.rand(b, 68, generator=g) < 0.7,
    )
    ann.landmarks_visible[3] = False  # no usable landmark: inf
    gen_depth = 2.0 + torch.rand(b, h, h, generator=g)
    gen_mask = (torch.rand(b, h, h, generator=g) < 0.95).float()
    got = landmark_depth_residual(ann, gen_depth, gen_mask, res)
    # the old per-sample computation
    xy = ann.landmarks_2d.to(torch.float64) * (h / float(res))
    z = ann.landmarks_3d[..., 2].to(torch.float64)
    idx = torch.arange(b).repeat_interleave(68)
    d = sample_bilinear(gen_depth.to(torch.float64), idx, xy.reshape(-1, 2)).reshape(b, -1)
    cov = sample_bilinear(gen_mask.to(torch.float64), idx, xy.reshape(-1, 2)).reshape(b, -1)
    ok = ann.landmarks_visible & (cov > 0.99)
    want = [float((d[i] - z[i])[ok[i]].abs().median()) if ok[i].any() else math.inf for i in range(b)]
    assert got.tolist() == want
    assert math.isinf(got[3])
