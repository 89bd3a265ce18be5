"""Acceptance tests of the annotator on the procedural head.

The annotator reads only the mesh, so these tests drive it with geometry-only generator outputs
(``helpers.mesh_output``); the renderer has its own tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sfray.annotate.annotator import Annotator, to_record_fields
from sfray.config.schema import AnnotateConfig, CameraConfig, SamplingConfig
from sfray.conventions import (
    BACKGROUND_ID,
    IBUG68_MIRROR,
    LANDMARK_GROUPS,
    ORTH_SCALE,
    ORTH_SHIFT,
    SEG_FLIP_PERMUTATION,
    SEG_ID,
    WORLD_Z_OFFSET,
    Field,
)
from sfray.geometry.alignment_map import AlignmentMap
from tests.annotate.annotate_helpers import camera_labels, make_specs, mesh_output, procedural_head

RES = 160

# Expected regions of each landmark group, with why:
# - brows: iBUG brow points trace the brow itself; 17-21 are the subject's right brow.
# - nose: 27-30 run down the bridge to the tip, 31-35 along the nostril base, all on the nose.
# - eyes: the six points trace the lid margins, i.e. the border between the eyeball and the
#   eye region around it (FLAME's label map also has the shared "eye_region" band).
# - lips: outer-lip points sit on the lip vermilion, inner-lip points on the line where the lips
#   meet or part, which borders the inner mouth when the jaw opens.
# - jaw contour: points on the lower face outline and the cheek towards the ear.
_EYE_R = ("right_eye_region", "right_eyeball", "eye_region")
_EYE_L = ("left_eye_region", "left_eyeball", "eye_region")
_LIPS = ("upper_lip", "lower_lip", "inner_mouth")
EXPECTED = {
    "jaw": ("face", "neck", "left_ear", "right_ear"),
    "right_brow": ("right_eyebrow",),
    "left_brow": ("left_eyebrow",),
    "nose_bridge": ("nose",),
    "nostrils": ("nose",),
    "right_eye": _EYE_R,
    "left_eye": _EYE_L,
    "outer_lip": _LIPS,
    "inner_lip": _LIPS,
}
# No per-point exceptions: 33 (subnasale) must land on the nose (the label covers the columella
# base) and the brow tails 17 / 26 on their brows (the label keeps its width out to the temple).
EXPECTED_POINT: dict[int, tuple[str, ...]] = {}
CONTOURS = ("camera", "head")


def _random_batch(n: int, seed: int = 7):
    """n specs from sfray's own sampler: release cameras, gaussian identity/expression, open jaws."""
    from sfray.sampling import make_specs as sample_specs

    head = procedural_head()
    sampling = SamplingConfig(jaw_open_range=[0.0, 0.35], eye_range=[-0.25, 0.25], neck_range=[-0.15, 0.15])
    return sample_specs(np.arange(n), seed, sampling, CameraConfig(), n_shape=head.n_shape,
                        n_expression=head.n_expression, latent_dim=0)


@pytest.fixture(scope="module")
def random_outputs():
    specs = _random_batch(100)
    return specs, mesh_output(specs, RES)


@pytest.fixture(scope="module")
def random_annotations_by_contour(random_outputs):
    specs, out = random_outputs
    return {c: Annotator(procedural_head(), RES, AnnotateConfig(contour=c)).annotate(out) for c in CONTOURS}


@pytest.fixture(scope="module")
def random_annotations(random_outputs, random_annotations_by_contour):
    """The default annotator (``annotate.contour=camera``) on 100 sampled specs."""
    specs, out = random_outputs
    return specs, out, random_annotations_by_contour["camera"]


def test_shapes_and_dtypes(random_annotations):
    specs, out, ann = random_annotations
    b = len(specs)
    assert ann.landmarks_2d.shape == (b, 68, 2) and ann.landmarks_2d.dtype == torch.float32
    assert ann.landmarks_3d.shape == (b, 68, 3) and ann.landmarks_3d_fixed.shape == (b, 68, 3)
    assert ann.landmarks_visible.shape == (b, 68) and ann.landmarks_visible.dtype == torch.bool
    assert ann.segmentation.shape == (b, RES, RES) and ann.segmentation.dtype == torch.uint8
    assert ann.depth.shape == (b, RES, RES) and ann.depth.dtype == torch.float32
    assert ann.mask.dtype == torch.bool
    assert int(ann.segmentation.max()) <= BACKGROUND_ID


def test_mask_equals_segmentation_foreground_and_depth(random_annotations):
    _, _, ann = random_annotations
    assert torch.equal(ann.mask, ann.segmentation != BACKGROUND_ID)
    assert torch.equal(ann.mask, ann.depth > 0)
    assert bool((ann.depth[ann.mask] > 1.0).all())  # camera ~2.7 from the origin: plausible z


@pytest.mark.parametrize("contour", CONTOURS)
def test_visible_landmarks_lie_on_their_regions(random_annotations_by_contour, contour):
    ann = random_annotations_by_contour[contour]
    seg = ann.segmentation.long()
    b = seg.shape[0]
    onehot = F.one_hot(seg, BACKGROUND_ID + 1).permute(0, 3, 1, 2).float()  # (B, C, H, W)
    near = F.max_pool2d(onehot, 5, stride=1, padding=2) > 0  # region within 2 px of each pixel
    px = ann.landmarks_2d.floor().long()
    col, row = px[..., 0].clamp(0, RES - 1), px[..., 1].clamp(0, RES - 1)  # (B, 68)
    regions_at = near[torch.arange(b)[:, None], :, row, col]  # (B, 68, C)
    checked = failures = 0
    report = []
    for group, idx in LANDMARK_GROUPS.items():
        for i in idx:
            allowed = [SEG_ID[name] for name in EXPECTED_POINT.get(i, EXPECTED[group])]
            ok = regions_at[:, i, allowed].any(dim=1)
            vis = ann.landmarks_visible[:, i]
            checked += int(vis.sum())
            bad = vis & ~ok
            failures += int(bad.sum())
            if bad.any():
                report.append((group, i, int(bad.sum())))
    assert checked > 100 * 40  # most landmarks are visible under release cameras
    assert failures == 0, f"landmarks off their regions (group, index, count): {report}"


def test_projection_matches_independent_pinhole(random_outputs, random_annotations_by_contour):
    """``contour=head`` projects ``head_landmarks`` as they are; ``camera`` keeps the 51 static points."""
    specs, out = random_outputs
    ann = random_annotations_by_contour["head"]
    cam_mode = random_annotations_by_contour["camera"]
    assert torch.equal(cam_mode.landmarks_2d[:, 17:], ann.landmarks_2d[:, 17:])
    assert not torch.equal(cam_mode.landmarks_2d[:, :17], ann.landmarks_2d[:, :17])
    p = out.head_landmarks.double().numpy()
    world = (p + np.array(ORTH_SHIFT)) * (ORTH_SCALE / 2.0) + np.array([0.0, 0.0, WORLD_Z_OFFSET])
    label = specs.camera.double().numpy()
    c2w = label[:, :16].reshape(-1, 4, 4)
    k = label[:, 16:].reshape(-1, 3, 3)
    w2c = np.linalg.inv(c2w)
    cam = np.einsum("bij,bnj->bni", w2c[:, :3, :3], world) + w2c[:, None, :3, 3]
    uvw = np.einsum("bij,bnj->bni", k, cam)
    pix = uvw[..., :2] / uvw[..., 2:3] * RES
    np.testing.assert_allclose(ann.landmarks_2d.numpy(), pix, atol=1e-3)
    np.testing.assert_allclose(ann.landmarks_3d.numpy(), cam, atol=1e-5)


@pytest.mark.parametrize("contour", CONTOURS)
def test_flip_equals_mirrored_camera(contour):
    """Neutral symmetric head: flipping the render (with flipped labels) == rendering from the mirror."""
    yaw = torch.tensor([0.35, -0.6, 0.0, 0.7])
    pitch = torch.tensor([0.1, -0.3, 0.25, 0.0])
    ann = Annotator(procedural_head(), RES, AnnotateConfig(contour=contour))
    a = ann.annotate(mesh_output(make_specs(camera_labels(yaw, pitch)), RES))
    m = ann.annotate(mesh_output(make_specs(camera_labels(-yaw, pitch)), RES))
    perm = torch.tensor(SEG_FLIP_PERMUTATION, dtype=torch.long)
    flipped = perm[a.segmentation.long().flip(-1)]
    agree = (flipped == m.segmentation.long()).float().mean(dim=(1, 2))
    assert bool((agree >= 0.99).all()), agree
    mirror = torch.tensor(IBUG68_MIRROR)
    lm = a.landmarks_2d[:, mirror].clone()
    lm[..., 0] = RES - lm[..., 0]
    assert float((lm - m.landmarks_2d).abs().max()) < 0.5
    assert torch.equal(a.landmarks_visible[:, mirror], m.landmarks_visible)
    torch.testing.assert_close(a.depth.flip(-1), m.depth, atol=2e-3, rtol=0)  # except the odd edge pixel


def test_profile_view_hides_the_far_side():
    """Camera at 90 degrees on the subject's left (+x): the right-side features are hidden."""
    ann = Annotator(procedural_head(), RES, AnnotateConfig())
    a = ann.annotate(mesh_output(make_specs(camera_labels(torch.tensor([math.pi / 2]), torch.zeros(1))), RES))
    vis = a.landmarks_visible[0]
    far = [36, 37, 38, 39, 40, 41, 17, 18, 19, 31, 48, 0, 1, 2]  # right eye, brow, nostril, mouth corner, jaw
    near = [24, 25, 26, 30, 54]  # left brow, nose tip, left mouth corner (eye corners sit deep: borderline)
    assert not vis[far].any(), vis[far]
    assert vis[near].all(), vis[near]


def test_points_outside_the_image_are_invisible():
    """A narrow field of view crops the face: landmarks outside [0, W) are invisible, others not."""
    ann = Annotator(procedural_head(), RES, AnnotateConfig())
    a = ann.annotate(mesh_output(make_specs(camera_labels(torch.zeros(1), torch.zeros(1), fov_deg=7.0)), RES))
    x, y = a.landmarks_2d[0, :, 0], a.landmarks_2d[0, :, 1]
    outside = (x < 0) | (x >= RES) | (y < 0) | (y >= RES)
    assert outside.any() and (~outside).any()
    assert not a.landmarks_visible[0, outside].any()
    nose_and_eyes = torch.tensor([27, 28, 29, 30, 36, 39, 42, 45])
    inside_front = nose_and_eyes[~outside[nose_and_eyes]]
    assert len(inside_front) > 0 and a.landmarks_visible[0, inside_front].all()


def test_alignment_map_moves_annotation():
    """A world translation in the alignment map shifts 2D landmarks by the pinhole amount (with the
    head's own contour: the camera contour would rightly slide, as the head is seen a little turned)."""
    specs = make_specs(camera_labels(torch.zeros(1), torch.zeros(1)))
    out = mesh_output(specs, RES)
    cfg = AnnotateConfig(contour="head")
    base = Annotator(procedural_head(), RES, cfg).annotate(out)
    shift = torch.eye(4, dtype=torch.float64)
    shift[0, 3] = 0.02  # world +x: the subject's left, i.e. image right for the frontal camera
    moved = Annotator(procedural_head(), RES, cfg, AlignmentMap(shift)).annotate(out)
    focal = float(specs.camera[0, 16])
    expected_dx = focal * RES * 0.02 / base.landmarks_3d[0, :, 2]
    torch.testing.assert_close(moved.landmarks_2d[0, :, 0] - base.landmarks_2d[0, :, 0], expected_dx,
                               atol=1e-3, rtol=0)


def test_record_fields_are_numpy_per_sample(random_annotations):
    specs, out, ann = random_annotations
    rec = to_record_fields(ann, out, specs, 3)
    assert rec[Field.SAMPLE_ID] == int(specs.sample_id[3])
    assert rec[Field.IMAGE].shape == (3, RES, RES) and rec[Field.IMAGE].dtype == np.uint8
    assert rec[Field.SEGMENTATION].dtype == np.uint8 and rec[Field.MASK].dtype == bool
    assert rec[Field.LANDMARKS_2D].shape == (68, 2) and rec[Field.LANDMARKS_3D_FIXED].shape == (68, 3)
    np.testing.assert_array_equal(rec[Field.LANDMARKS_VISIBLE], ann.landmarks_visible[3].numpy())
    assert rec[Field.CAMERA].shape == (25,)


def test_camera_contour_makes_more_jaw_points_visible(random_annotations_by_contour):
    """With release cameras the head stays frontal, so ``head`` keeps the far-side jaw points on the
    cheek, hidden; ``camera`` moves them onto the outline the camera sees."""
    jaw = slice(0, 17)
    head_vis = int(random_annotations_by_contour["head"].landmarks_visible[:, jaw].sum())
    cam_vis = int(random_annotations_by_contour["camera"].landmarks_visible[:, jaw].sum())
    total = 100 * 17
    assert cam_vis >= head_vis + 0.15 * total, (head_vis, cam_vis)  # measured: ~60% -> ~84%
    assert cam_vis >= 0.75 * total
