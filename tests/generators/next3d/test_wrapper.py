"""Next3DGenerator: the Generator protocol over the network."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sfray.config.schema import GenerateJobConfig
from sfray.errors import ConfigError
from sfray.generators.base import Generator, SampleSpecs
from .official_writer import write_official_pickle
from sfray.generators.next3d.world import mesh_to_world
from sfray.generators.next3d.wrapper import RANDOM_SMALL, Next3DGenerator, build_next3d_generator
from sfray.geometry.camera import frontal_camera_label, look_at_cam2world, matrices_to_camera_label, project_points

from .helpers import FakeHead


def job_config(**gen) -> GenerateJobConfig:
    cfg = GenerateJobConfig()
    cfg.generator.kind = "next3d"
    cfg.generator.next3d = dataclasses.replace(cfg.generator.next3d, **{"checkpoint": RANDOM_SMALL, **gen})
    cfg.generate = dataclasses.replace(cfg.generate, resolution=64)
    return cfg


def make_specs(head, b: int, seed0: int = 0, yaw: float = 0.0) -> SampleSpecs:
    g = torch.Generator().manual_seed(seed0)
    cond = frontal_camera_label().unsqueeze(0).repeat(b, 1)
    c2w = look_at_cam2world(torch.full((b,), torch.pi / 2 + yaw), torch.full((b,), torch.pi / 2))
    cam = matrices_to_camera_label(c2w, cond[:, 16:].reshape(b, 3, 3).double()).float()
    return SampleSpecs(
        sample_id=torch.arange(b), seed=torch.arange(seed0, seed0 + b), latent=torch.randn(b, 32, generator=g),
        shape=torch.randn(b, head.n_shape, generator=g), expression=torch.rand(b, head.n_expression, generator=g),
        pose=torch.zeros(b, 15), camera=cam, cond_camera=cond)


@pytest.fixture(scope="module")
def fake_head(synthetic_head):
    return FakeHead(synthetic_head)


@pytest.fixture(scope="module")
def gen(fake_head) -> Next3DGenerator:
    return build_next3d_generator(job_config(), fake_head, "cpu")


def test_protocol_and_output_contract(gen, fake_head):
    assert isinstance(gen, Generator) and gen.identity == "next3d-random-small" and gen.latent_dim == 32
    specs = make_specs(fake_head, 3, yaw=0.3)
    out = gen.generate(specs)
    r = gen.model.cfg.neural_rendering_resolution
    assert out.image.shape == (3, 3, 64, 64) and out.image.dtype == torch.uint8
    assert out.depth.shape == out.mask.shape == (3, r, r) and out.extras["image_raw"].shape == (3, 3, r, r)
    assert ((out.mask >= 0) & (out.mask <= 1)).all() and torch.isfinite(out.depth).all()
    assert out.head_vertices.shape[1] == gen.model.cfg.num_vertices and out.head_landmarks.shape == (3, 68, 3)
    torch.testing.assert_close(out.mesh_to_world, mesh_to_world(3))
    torch.testing.assert_close(out.camera, specs.camera)


def test_depth_is_camera_space_z(gen, fake_head):
    """depth = ray distance * cos: the 3D point at that distance projects with exactly that z."""
    specs = make_specs(fake_head, 2, yaw=0.4)
    out = gen.generate(specs)
    r = out.depth.shape[-1]
    from sfray.generators.next3d.renderer import ray_sampler

    origins, dirs = ray_sampler(specs.camera[:, :16].reshape(-1, 4, 4), specs.camera[:, 16:].reshape(-1, 3, 3), r)
    pts = origins + out.extras["ray_depth"].reshape(2, -1, 1) * dirs
    pix, z = project_points(pts, specs.camera, r)
    torch.testing.assert_close(z.reshape(2, r, r), out.depth, atol=1e-4, rtol=1e-5)
    i, j = torch.meshgrid(torch.arange(r), torch.arange(r), indexing="ij")
    torch.testing.assert_close(pix[0], torch.stack([j.reshape(-1) + 0.5, i.reshape(-1) + 0.5], -1).float(),
                               atol=1e-3, rtol=0)


def test_deterministic_and_batch_independent(gen, fake_head):
    specs = make_specs(fake_head, 3, seed0=10)
    a, b = gen.generate(specs), gen.generate(specs)
    assert torch.equal(a.image, b.image) and torch.equal(a.depth, b.depth)
    one = gen.generate(specs.select(slice(1, 2)))
    assert (one.image[0].int() - a.image[1].int()).abs().max() <= 1
    torch.testing.assert_close(one.depth[0], a.depth[1], atol=1e-4, rtol=1e-4)


def test_truncation_and_resolution(fake_head):
    specs = make_specs(fake_head, 1)
    g1 = build_next3d_generator(job_config(), fake_head, "cpu")
    cfg = job_config()
    cfg.sampling = dataclasses.replace(cfg.sampling, truncation_psi=1.0)
    cfg.generate = dataclasses.replace(cfg.generate, resolution=32)
    g2 = build_next3d_generator(cfg, fake_head, "cpu")
    o1, o2 = g1.generate(specs), g2.generate(specs)
    assert o2.image.shape[-1] == 32
    assert not torch.equal(o1.extras["image_raw"], o2.extras["image_raw"])


def test_checkpoint_identity_and_topology_check(tmp_path, gen, fake_head, synthetic_head):
    path = write_official_pickle(gen.model, tmp_path / "g.pkl", lambda m: "pass\n")
    cfg = job_config(checkpoint=str(path), neural_rendering_resolution=gen.neural_rendering_resolution)
    loaded = build_next3d_generator(cfg, fake_head, "cpu")
    assert loaded.identity.startswith("next3d:") and len(loaded.identity) == len("next3d:") + 16
    specs = make_specs(fake_head, 2)
    torch.testing.assert_close(loaded.generate(specs).image, gen.generate(specs).image, atol=0, rtol=0)

    class OtherHead(FakeHead):
        pass

    other = OtherHead(synthetic_head)
    other.assets.num_vertices = 5023
    with pytest.raises(ConfigError, match="5023"):
        build_next3d_generator(cfg, other, "cpu")


@pytest.fixture(scope="module")
def procedural_head():
    from sfray.config.schema import HeadConfig
    from sfray.head.factory import build_head

    try:
        return build_head(HeadConfig())
    except ImportError as exc:  # pragma: no cover - only while the procedural head is being written
        pytest.skip(f"procedural head not available: {exc}")


def test_procedural_head_drives_the_same_code_path(procedural_head):
    """random-small on the procedural head's own topology: expression/jaw move the mouth planes only."""
    head = procedural_head
    gen = build_next3d_generator(job_config(), head, "cpu")
    assert gen.model.cfg.num_vertices == head.num_vertices
    specs = make_specs(head, 2)
    specs.latent[1] = specs.latent[0]
    specs.expression[0] = 0.0
    specs.expression[1] = 1.5
    specs.pose[1, 6] = 0.3  # jaw open
    out = gen.generate(specs)
    assert torch.isfinite(out.depth).all() and out.image.shape == (2, 3, 64, 64)
    model = gen.model
    ho = head(specs.shape, specs.expression, specs.pose)
    v = torch.cat([ho.vertices, ho.landmarks], 1).float()
    ws = model.mapping(specs.latent, specs.cond_camera, 0.7, 14)
    a = model.texture_planes(ws, v[[0, 0]])
    b = model.texture_planes(ws, v[[0, 1]])
    assert torch.equal(a["static"], b["static"]) and torch.equal(a["planes"][0], b["planes"][0])
    diff = (a["views"].features[1, 0] - b["views"].features[1, 0]).abs().sum(0)
    r0, r1, c0, c1 = b["mouth_boxes"][1]
    size = model.cfg.plane_resolution
    near = torch.zeros(size, size, dtype=torch.bool)
    near[max(r0 - 8, 0): r1 + 8, max(c0 - 8, 0): c1 + 8] = True
    assert diff.sum() > 0 and diff[near].sum() > 0.5 * diff.sum()
