"""The complete forward pass at the small configuration on CPU."""

from __future__ import annotations

import pytest
import torch

from sfray.generators.next3d.layers import seeded_generators

from .conftest import frontal_label


@pytest.fixture(scope="module")
def run(small_model, synthetic_head):
    """Two samples: closed and open mouth, same z."""
    v, lms = synthetic_head.vertices(torch.tensor([0.0, 1.0]))
    vv = torch.cat([v, lms], dim=1)
    z = torch.randn(1, small_model.cfg.z_dim, generator=torch.Generator().manual_seed(1)).repeat(2, 1)
    c = frontal_label(2)
    ws = small_model.mapping(z, c, truncation_psi=0.7, truncation_cutoff=14)
    tp = small_model.texture_planes(ws, vv, "const", None)
    out = small_model.render(tp["planes"], tp["eg3d_ws"], c, "const", seeded_generators([3, 3], "cpu"))
    return {"ws": ws, "v": vv, "c": c, "z": z, "tp": tp, "out": out}


def test_shapes_finite_and_depth_range(small_model, run):
    cfg, out = small_model.cfg, run["out"]
    r, n = cfg.neural_rendering_resolution, 2
    assert out["image"].shape == (n, 3, cfg.img_resolution, cfg.img_resolution)
    assert out["image_raw"].shape == (n, 3, r, r) and out["image_depth"].shape == (n, 1, r, r)
    assert run["tp"]["planes"].shape == (n, 3, cfg.plane_channels, cfg.plane_resolution, cfg.plane_resolution)
    for k, x in out.items():
        assert torch.isfinite(x).all(), k
    opts = small_model.rendering_kwargs
    assert (out["image_depth"] >= opts["ray_start"]).all() and (out["image_depth"] <= opts["ray_end"]).all()
    assert (out["image_weight"] >= 0).all() and (out["image_weight"] <= 1 + 1e-6).all()
    assert out["image_raw"].min() >= -1.002 - 1e-6 and out["image_raw"].max() <= 1.002 + 1e-6


def test_expression_changes_mouth_planes_not_static(run, small_model):
    tp = run["tp"]
    v_open = run["v"][[1, 1]]  # sample 0 now has the open mouth too; same ws
    alt = small_model.texture_planes(run["ws"], v_open, "const", None)
    assert torch.equal(alt["static"], tp["static"])  # the static tri-plane ignores the mesh
    assert torch.equal(alt["textures"], tp["textures"])  # so does the neural texture itself
    diff = (tp["views"].features[0, 0] - alt["views"].features[0, 0]).abs().sum(0)  # (R, R) front view
    r0, r1, c0, c1 = alt["mouth_boxes"][0]  # open mouth box
    size = small_model.cfg.plane_resolution
    near = torch.zeros(size, size, dtype=torch.bool)
    near[max(r0 - 6, 0): r1 + 6, max(c0 - 6, 0): c1 + 6] = True
    assert diff[near].sum() > 0.5 * diff.sum() > 0  # the change is concentrated around the mouth
    assert tp["mouth_boxes"][0] != alt["mouth_boxes"][0]
    assert not torch.equal(tp["planes"][0, 0], alt["planes"][0, 0])
    assert torch.equal(tp["planes"][1], alt["planes"][1])  # the unchanged sample is untouched
    # the expression acts only through the texture planes: swapping v with everything else fixed
    # changes the final image
    assert not torch.equal(run["out"]["image"][0], run["out"]["image"][1])


def test_alpha_and_plane_blend(run):
    tp = run["tp"]
    alpha = tp["views"].alpha
    assert ((alpha >= 0) & (alpha <= 1)).all() and (alpha > 0.5).any() and (alpha == 0).any()
    # where every slot's alpha is 0 the planes equal the static tri-plane
    a = torch.stack([alpha[:, 0], (alpha[:, 1] != 0).float(), alpha[:, 3]], 1)
    empty = (a == 0).expand_as(tp["planes"])
    assert torch.equal(tp["planes"][empty], tp["static"][empty])


def test_deterministic_with_seeds_and_const_noise(small_model, run):
    tp = run["tp"]
    again = small_model.render(tp["planes"], tp["eg3d_ws"], run["c"], "const", seeded_generators([3, 3], "cpu"))
    for k in again:
        assert torch.equal(again[k], run["out"][k]), k
    other = small_model.render(tp["planes"], tp["eg3d_ws"], run["c"], "const", seeded_generators([4, 4], "cpu"))
    assert not torch.equal(other["image_depth"], run["out"]["image_depth"])  # ray jitter follows the seed
    # a sample's render depends on its own seed only, not on its batch neighbours
    single = small_model(run["z"][:1], run["c"][:1], run["c"][:1], run["v"][:1], 0.7, 14, "const",
                         seeded_generators([3], "cpu"))
    torch.testing.assert_close(single["image"][0], run["out"]["image"][0], atol=1e-5, rtol=1e-5)
    noisy = small_model.texture_planes(run["ws"], run["v"], "random", seeded_generators([1, 2], "cpu"))
    assert not torch.equal(noisy["planes"], tp["planes"])


def test_bf16_autocast_runs_on_cpu(small_model, run):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = small_model(run["z"], run["c"], run["c"], run["v"], 0.7, 14, "const", seeded_generators([3, 3], "cpu"))
    assert torch.isfinite(out["image"].float()).all()
    assert (out["image"].float() - run["out"]["image"]).abs().mean() < 0.25  # close to fp32


def test_sample_mixed_matches_render_inputs(small_model, run):
    pts = torch.zeros(2, 5, 3)
    out = small_model.sample_mixed(pts, run["ws"], run["v"])
    assert out["sigma"].shape == (2, 5, 1) and out["rgb"].shape == (2, 5, small_model.cfg.decoder_features)
