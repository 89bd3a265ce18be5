"""``annotate.contour``: the jaw contour follows the camera (``camera``) or the head pose (``head``).

Sign convention under test: a camera moved towards the subject's left (+x) sees what a frontal
camera sees of a head turned towards the subject's right (negative yaw), so the far side is the
subject's right (iBUG 0..7) and the dynamic table row is the one the head layer picks for that
turned head.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sfray.annotate.annotator import Annotator
from sfray.config.schema import AnnotateConfig
from sfray.conventions import SEG_ID
from sfray.errors import ConfigError
from sfray.head.contour import CameraContour, camera_centre_in_head
from sfray.head.layer import batch_rodrigues, yaw_degrees
from sfray.head.procedural.landmarks import row_yaw_degrees
from tests.annotate.annotate_helpers import camera_labels, make_specs, mesh_output, procedural_head

RES = 160
RIGHT, LEFT = list(range(0, 8)), list(range(9, 17))  # the subject's right / left jaw halves


def _orbit(yaw_deg: float) -> torch.Tensor:
    """(1, 25) label of a camera at ``yaw_deg`` round the world origin, looking at it from far away
    (so that joints turning the head about the neck, not its origin, do not shift the azimuth)."""
    return camera_labels(torch.tensor([math.radians(yaw_deg)]), torch.zeros(1), pivot=(0.0, 0.0, 0.0),
                         radius=100.0)


def _pose(global_yaw_deg: float = 0.0, neck_yaw_deg: float = 0.0) -> torch.Tensor:
    pose = torch.zeros(1, 15)
    pose[0, 1] = math.radians(global_yaw_deg)
    pose[0, 4] = math.radians(neck_yaw_deg)
    return pose


def _rows(specs) -> torch.Tensor:
    """Camera-contour rows with the head-model origin at the world origin (exact camera azimuths)."""
    out = mesh_output(specs, RES)
    scale_only = torch.tensor([2.5, 2.5, 2.5, 1.0], dtype=torch.float64)
    head_to_world = torch.diag(scale_only).expand(len(specs), 4, 4)
    centre = camera_centre_in_head(out.camera, head_to_world)
    return CameraContour(procedural_head()).rows(out.head_vertices, centre)


def _silhouette_distance(points: torch.Tensor, mask: torch.Tensor, depth: torch.Tensor,
                         jump: float = 0.02) -> torch.Tensor:
    """Pixels (N, 2) -> distance to the nearest occluding-edge pixel centre of one view.

    Edge pixels are covered pixels next to background or to a surface ``jump`` (world units)
    farther away: the outline of the head and the folds where the jaw passes in front of the neck.
    """
    z = torch.where(mask, depth, torch.full_like(depth, float("inf")))
    padded = F.pad(z[None, None], (1, 1, 1, 1), value=float("inf"))[0, 0]
    h, w = z.shape
    edge = torch.zeros_like(mask)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= mask & (padded[dy:dy + h, dx:dx + w] > z + jump)
    ys, xs = torch.nonzero(edge, as_tuple=True)
    centres = torch.stack([xs, ys], dim=1).float() + 0.5
    return torch.cdist(points.float(), centres).min(dim=1).values


def test_camera_on_the_left_equals_head_turned_to_the_right():
    """Camera at +25 deg (subject's left), frontal head == frontal camera, head at -25 deg."""
    head = procedural_head()
    cam_row = _rows(make_specs(_orbit(25.0)))
    head_row = head.contour_rows(_pose(global_yaw_deg=-25.0))
    assert int(cam_row[0]) == int(head_row[0])
    assert row_yaw_degrees(int(cam_row[0])) == -25
    # the far side is the subject's right: its points moved towards the outline the camera sees,
    # the near side kept the frontal points
    table = head.dynamic_lmk_faces
    assert not torch.equal(table[cam_row[0], RIGHT], table[0, RIGHT])
    assert torch.equal(table[cam_row[0], LEFT], table[0, LEFT])
    # the mirror image picks the mirrored row
    mirror_row = _rows(make_specs(_orbit(-25.0)))
    assert int(mirror_row[0]) == int(head.contour_rows(_pose(global_yaw_deg=25.0))[0])


def test_head_yaw_and_camera_azimuth_add_up():
    """The effective yaw is the head's own yaw minus the camera's azimuth around it."""
    head = procedural_head()
    # the camera follows a head turned 20 deg to its left: it sees the head frontally
    specs = make_specs(_orbit(20.0), pose=_pose(neck_yaw_deg=20.0))
    assert int(_rows(specs)[0]) == 0
    # head turned 15 deg to its left by the root joint, camera 10 deg to the subject's right
    specs = make_specs(_orbit(-10.0), pose=_pose(global_yaw_deg=15.0))
    assert int(_rows(specs)[0]) == int(head.contour_rows(_pose(global_yaw_deg=25.0))[0])


def test_head_rotation_is_recovered_from_the_vertices():
    """Kabsch on the rigid back of the head finds root @ neck despite shape, expression and jaw."""
    head = procedural_head()
    g = torch.Generator().manual_seed(3)
    n = 16
    pose = torch.zeros(n, 15)
    pose[:, 0:6] = 0.3 * (2 * torch.rand(n, 6, generator=g) - 1)
    pose[:, 6] = 0.35 * torch.rand(n, generator=g)
    with torch.no_grad():
        shape = 0.8 * torch.randn(n, head.n_shape, generator=g)
        out = head(shape, 0.6 * torch.randn(n, head.n_expression, generator=g), pose)
    rot, _ = CameraContour(head).head_pose(out.vertices)
    rots = batch_rodrigues(pose.reshape(-1, 3).double()).view(n, 5, 3, 3)
    true = rots[:, 0] @ rots[:, 1]
    angle = torch.rad2deg(torch.arccos(((torch.einsum("bij,bij->b", rot, true) - 1) / 2).clamp(-1, 1)))
    assert float(angle.max()) < 1.5
    assert float((yaw_degrees(rot) - yaw_degrees(true)).abs().max()) < 0.5


@pytest.mark.parametrize("yaw_deg, far", [(25.0, RIGHT), (-25.0, LEFT)])
def test_far_side_points_lie_on_the_silhouette(yaw_deg, far):
    specs = make_specs(camera_labels(torch.tensor([math.radians(yaw_deg)]), torch.zeros(1)))
    out = mesh_output(specs, RES)
    dist = {}
    for contour in ("camera", "head"):
        ann = Annotator(procedural_head(), RES, AnnotateConfig(contour=contour)).annotate(out)
        dist[contour] = _silhouette_distance(ann.landmarks_2d[0, far], ann.mask[0], ann.depth[0])
        if contour == "camera":
            assert ann.landmarks_visible[0, :17].all()
    assert float(dist["camera"].max()) <= 1.5, dist["camera"]
    # the head's own (frontal) row leaves the cheek and jaw-angle points inside the face; only the
    # points next to the chin come close to the outline by themselves
    cheek = dist["head"][:6] if far == RIGHT else dist["head"][-6:]
    assert float(cheek.min()) > 2.0 and float(dist["head"].mean()) > 3.0, dist["head"]


def test_frontal_contour_is_visible_and_on_the_outline():
    """Frontal camera: every jaw point is visible; the cheek points, the jaw angles and the chin sit
    on the outline, the points between them on the jaw line (the face / neck border)."""
    out = mesh_output(make_specs(camera_labels(torch.zeros(1), torch.zeros(1))), RES)
    ann = Annotator(procedural_head(), RES, AnnotateConfig()).annotate(out)
    assert ann.landmarks_visible[0, :17].all()
    outline = [0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 14, 15, 16]
    dist = _silhouette_distance(ann.landmarks_2d[0, outline], ann.mask[0], ann.depth[0])
    assert float(dist.max()) <= 1.5, dist
    neck = (ann.segmentation[0] == SEG_ID["neck"]).float()[None, None]
    near_neck = F.max_pool2d(neck, 5, stride=1, padding=2)[0, 0] > 0
    for k in (5, 6, 7, 9, 10, 11):  # the lower jaw meets the neck
        x, y = ann.landmarks_2d[0, k].floor().long().tolist()
        assert bool(near_neck[y, x]), k


def test_contour_setting_is_validated():
    with pytest.raises(ConfigError, match="annotate.contour"):
        AnnotateConfig(contour="pose").validate()
    with pytest.raises(ConfigError, match="annotate.contour"):
        Annotator(procedural_head(), RES, AnnotateConfig(contour="pose"))
    AnnotateConfig().validate()
    assert AnnotateConfig().contour == "camera"
