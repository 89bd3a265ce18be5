"""The procedural renderer: outputs, determinism, the misalign knob, agreement with the annotator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfray.annotate.annotator import Annotator
from sfray.config.schema import AnnotateConfig, GenerateJobConfig, ProceduralGeneratorConfig
from sfray.conventions import Extra
from sfray.errors import ConfigError
from sfray.generators.base import Generator
from sfray.generators.factory import build_generator
from sfray.generators.procedural import ProceduralGenerator
from sfray.generators.procedural.renderer import GAMMA
from sfray.generators.procedural.shading import stable_pow
from sfray.geometry.alignment_map import AlignmentMap
from sfray.geometry.transform import head_to_world_matrix, similarity_matrix
from sfray.train.context import torch_threads
from tests.annotate.annotate_helpers import camera_labels, make_specs, procedural_head

RES = 64
MISALIGN = [4.0, -6.0, 2.0, 0.03, -0.02, 0.01, 1.04]


def _specs(n: int = 3, seed0: int = 11):
    yaw = torch.linspace(-0.5, 0.5, n)
    pitch = torch.linspace(0.2, -0.2, n)
    g = torch.Generator().manual_seed(seed0)
    head = procedural_head()
    expr = 0.5 * torch.randn(n, head.n_expression, generator=g)
    return make_specs(camera_labels(yaw, pitch), expression=expr, seed0=seed0)


def _gen(misalign=None, **cfg) -> ProceduralGenerator:
    return ProceduralGenerator(procedural_head(), RES, ProceduralGeneratorConfig(**cfg), "cpu",
                               misalign=misalign)


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


def test_outputs_shapes_dtypes_and_protocol():
    gen = _gen()
    assert isinstance(gen, Generator) and gen.identity == "procedural-v1" and gen.latent_dim == 0
    specs = _specs()
    out = gen.generate(specs)
    b, v = len(specs), procedural_head().num_vertices
    assert out.image.shape == (b, 3, RES, RES) and out.image.dtype == torch.uint8
    assert out.depth.shape == (b, RES, RES) and out.depth.dtype == torch.float32
    assert out.mask.shape == (b, RES, RES) and 0 <= float(out.mask.min()) and float(out.mask.max()) <= 1
    assert out.head_vertices.shape == (b, v, 3) and out.head_landmarks.shape == (b, 68, 3)
    assert out.head_landmarks_fixed.shape == (b, 68, 3)
    torch.testing.assert_close(out.mesh_to_world, head_to_world_matrix(b))
    assert torch.equal(out.camera, specs.camera)
    assert bool((out.depth[out.mask > 0] > 1.0).all()) and bool((out.depth[out.mask == 0] == 0).all())
    assert 0.1 < float(out.mask.mean()) < 0.9  # a head fills a good part of the frame, not all of it


def test_deterministic_per_seed_and_seeds_differ():
    specs = _specs()
    a = _gen().generate(specs)
    b = _gen().generate(specs)
    assert torch.equal(a.image, b.image) and torch.equal(a.depth, b.depth) and torch.equal(a.mask, b.mask)
    other = _specs()
    other.seed = other.seed + 1000  # same geometry, other appearance / light / background
    c = _gen().generate(other)
    for i in range(len(specs)):
        assert not torch.equal(c.image[i], a.image[i])
    # without the (seed-dependent) hair cap the geometry does not depend on the seed at all
    assert torch.equal(_gen(hair_cap_prob=0.0).generate(other).mask, _gen(hair_cap_prob=0.0).generate(specs).mask)


def test_sample_does_not_depend_on_its_batch():
    specs = _specs()
    batch = _gen().generate(specs)
    alone = _gen().generate(specs.select(slice(1, 2)))
    assert torch.equal(alone.image[0], batch.image[1])


def test_misalign_identity_is_the_default():
    specs = _specs(2)
    default = _gen().generate(specs)
    explicit = _gen(misalign=[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]).generate(specs)
    assert torch.equal(default.image, explicit.image)
    torch.testing.assert_close(default.extras[Extra.RENDER_TO_WORLD], default.mesh_to_world)


def test_misalign_moves_the_render_not_the_annotation():
    specs = _specs(2)
    plain = _gen(hair_cap_prob=0.0).generate(specs)
    moved = _gen(hair_cap_prob=0.0, misalign=MISALIGN).generate(specs)
    ann = Annotator(procedural_head(), RES, AnnotateConfig())
    a_plain, a_moved = ann.annotate(plain), ann.annotate(moved)
    # the annotation only sees the mesh and mesh_to_world, which the knob leaves alone ...
    assert torch.equal(moved.mesh_to_world, plain.mesh_to_world)
    assert torch.equal(a_moved.landmarks_2d, a_plain.landmarks_2d)
    assert torch.equal(a_moved.segmentation, a_plain.segmentation)
    # ... while the rendered silhouette moved
    for i in range(2):
        assert _iou(moved.mask[i] > 0.5, plain.mask[i] > 0.5) < 0.97
    # an alignment map equal to the misalignment puts the annotation back on the image
    fixed = Annotator(procedural_head(), RES, AnnotateConfig(), AlignmentMap(similarity_matrix(MISALIGN)))
    a_fixed = fixed.annotate(moved)
    truth = moved.extras[Extra.LANDMARKS_2D_RENDERED]
    torch.testing.assert_close(a_fixed.landmarks_2d, truth, atol=1e-3, rtol=0)
    for i in range(2):
        assert _iou(a_fixed.mask[i], moved.mask[i] > 0.5) > 0.95


def test_render_agrees_with_annotation_without_hair():
    specs = _specs()
    out = _gen(hair_cap_prob=0.0).generate(specs)
    ann = Annotator(procedural_head(), RES, AnnotateConfig()).annotate(out)
    for i in range(len(specs)):
        assert _iou(out.mask[i] > 0.5, ann.mask[i]) > 0.96
    both = (out.mask == 1.0) & ann.mask  # fully covered pixels: the same surface
    assert float((out.depth[both] - ann.depth[both]).abs().median()) < 0.01
    torch.testing.assert_close(out.extras[Extra.LANDMARKS_2D_RENDERED], ann.landmarks_2d, atol=1e-3, rtol=0)


def test_ground_truth_jaw_contour_follows_the_render_camera():
    """The rendered landmarks use the default ``annotate.contour=camera`` choice: the 51 static
    points are the head's own, the jaw points follow the outline the camera sees."""
    specs = _specs()  # cameras at -0.5, 0, +0.5 rad
    out = _gen(hair_cap_prob=0.0).generate(specs)
    truth = out.extras[Extra.LANDMARKS_2D_RENDERED]
    head_mode = Annotator(procedural_head(), RES, AnnotateConfig(contour="head")).annotate(out)
    torch.testing.assert_close(truth[:, 17:], head_mode.landmarks_2d[:, 17:], atol=1e-3, rtol=0)
    moved = (truth[:, :17] - head_mode.landmarks_2d[:, :17]).norm(dim=-1).amax(dim=1)
    # frontal: the head's frontal row, only spread evenly along it; turned: the far side moved
    assert float(moved[1]) < 2.5 < float(moved[0]) and float(moved[2]) > 2.5, moved


def test_hair_cap_adds_geometry_only_to_the_image():
    specs = _specs(2)
    bald = _gen(hair_cap_prob=0.0).generate(specs)
    hair = _gen(hair_cap_prob=1.0).generate(specs)
    assert bool((hair.mask >= bald.mask - 1e-6).all())  # the shell only adds coverage
    assert float(hair.mask.sum()) > float(bald.mask.sum())
    assert torch.equal(hair.head_vertices, bald.head_vertices)
    ann = Annotator(procedural_head(), RES, AnnotateConfig())
    assert torch.equal(ann.annotate(hair).mask, ann.annotate(bald).mask)


@pytest.mark.parametrize("kind", ["solid", "gradient", "noise"])
def test_background_kinds(kind):
    out = _gen(background=[kind], hair_cap_prob=0.0).generate(_specs(1))
    bg = (out.mask[0] == 0)
    pixels = out.image[0].permute(1, 2, 0)[bg].float()
    spread = float(pixels.std(dim=0).max())
    if kind == "solid":
        assert spread < 4.0  # camera grain only
    else:
        assert spread > 4.0


def test_factory_builds_procedural_and_rejects_unknown():
    cfg = GenerateJobConfig()
    cfg.generate.resolution = RES
    gen = build_generator(cfg, procedural_head(), "cpu")
    assert isinstance(gen, ProceduralGenerator) and gen.resolution == RES
    cfg.generator.kind = "stylegan"
    with pytest.raises(ConfigError, match="generator.kind"):
        build_generator(cfg, procedural_head(), "cpu")


def test_images_are_not_flat():
    out = _gen().generate(_specs(2))
    img = out.image.float()
    face = out.mask > 0.99
    for i in range(2):
        lum = img[i].mean(0)[face[i]]
        assert float(lum.std()) > 5.0  # shading and texture, not a flat sticker
    assert np.isfinite(out.depth.numpy()).all()


@pytest.mark.parametrize("exponent", [GAMMA, 1.0 / GAMMA, 25.0])
def test_stable_pow_is_the_same_bits_whatever_the_thread_count(exponent):
    # large enough to be split across threads (a 256x256 face's pixels); a float32 ``pow`` moved
    # a few of these elements by an ulp between one and two threads
    x = torch.rand(300_001, generator=torch.Generator().manual_seed(5))
    runs = []
    for n in (1, 2, 3):
        with torch_threads(n):
            runs.append(stable_pow(x, exponent))
    assert runs[0].dtype == torch.float32
    assert all(torch.equal(runs[0], r) for r in runs[1:])
    exact = x.double() ** exponent
    # within half a float32 ulp (half the smallest subnormal for results below the normal range)
    assert bool(((runs[0].double() - exact).abs() <= (exact.abs() * 2.0 ** -24).clamp_min(2.0 ** -150)).all())
