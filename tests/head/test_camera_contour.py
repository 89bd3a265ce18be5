"""``annotate.contour``: the jaw contour follows the camera (``camera``) or the head pose (``head``).

``camera`` slides each jaw point along a fixed curve on the mesh to the outline the camera sees,
whatever the direction (yaw, elevation, head pose); ``head`` keeps the head model's own table row.
Silhouettes are measured on the annotation's own depth map, independently of the code under test.
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
from sfray.geometry.transform import head_to_world_matrix
from sfray.head.contour import CameraContour, camera_centre_in_head
from sfray.head.layer import batch_rodrigues
from tests.annotate.annotate_helpers import camera_labels, make_specs, mesh_output, procedural_head

RES = 160
RIGHT, LEFT = list(range(0, 8)), list(range(9, 17))  # the subject's right / left jaw halves


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


def _annotate(yaw_deg: float, pitch: float, contour: str = "camera", pose: torch.Tensor | None = None):
    specs = make_specs(camera_labels(torch.tensor([math.radians(yaw_deg)]), torch.tensor([pitch])), pose=pose)
    out = mesh_output(specs, RES)
    return out, Annotator(procedural_head(), RES, AnnotateConfig(contour=contour)).annotate(out)


@pytest.mark.parametrize("yaw_deg, far", [(25.0, RIGHT), (-25.0, LEFT)])
def test_far_side_points_lie_on_the_silhouette(yaw_deg, far):
    """A camera moved towards the subject's left (+x) sees the subject's right side turn away."""
    dist = {}
    for contour in ("camera", "head"):
        _, ann = _annotate(yaw_deg, 0.0, contour)
        dist[contour] = _silhouette_distance(ann.landmarks_2d[0, far], ann.mask[0], ann.depth[0])
        if contour == "camera":
            assert ann.landmarks_visible[0, :17].all()
    assert float(dist["camera"].max()) <= 1.5, dist["camera"]
    # the head's own (frontal) row leaves the cheek and jaw-angle points inside the face
    cheek = dist["head"][:6] if far == RIGHT else dist["head"][-6:]
    assert float(cheek.min()) > 2.0 and float(dist["head"].mean()) > 3.0, dist["head"]


@pytest.mark.parametrize("yaw_deg", [-15.0, 0.0, 15.0])
def test_camera_above_keeps_the_jaw_on_the_visible_outline(yaw_deg):
    """Camera about 20 degrees above the head: the table's frontal points sit under the jaw (hidden);
    the camera contour moves them up to the outline the camera sees, all visible."""
    _, head = _annotate(yaw_deg, -0.6, "head")
    assert int((~head.landmarks_visible[0, 4:13]).sum()) >= 3  # the lower jaw is hidden from above
    _, ann = _annotate(yaw_deg, -0.6)
    assert ann.landmarks_visible[0, :17].all()
    lower = list(range(4, 13))
    dist = _silhouette_distance(ann.landmarks_2d[0, lower], ann.mask[0], ann.depth[0])
    # 2 px: the near side's jaw angle is smoothed (its anchors sit a little inside the corner)
    assert float(dist.max()) <= 2.0, dist


def test_contour_follows_elevation_on_the_mesh():
    """Same head, camera moving up: the chin point climbs the chin (head-model y grows), and with the
    camera below it stays where the frontal camera has it."""
    contour = CameraContour(procedural_head())
    ys = []
    for pitch in (0.6, 0.0, -0.3, -0.6):
        out, _ = _annotate(0.0, pitch)
        centre = camera_centre_in_head(out.camera, out.mesh_to_world.double())
        ys.append(float(contour.contour(out.head_vertices, out.mesh_to_world.double(), out.camera)[0, 8, 1]))
        assert centre.shape == (1, 3)
    assert abs(ys[0] - ys[1]) < 0.002 and ys[1] < ys[2] < ys[3], ys


def test_head_pose_and_camera_turn_together():
    """Rotating the head (global + neck) and the camera by the same rotation picks the same mesh
    points: the choice depends on where the camera is relative to the head, nothing else."""
    head = procedural_head()
    contour = CameraContour(head)
    yaw = math.radians(20.0)
    pose = torch.zeros(1, 15)
    pose[0, 1] = yaw  # global yaw: the face turns towards +x
    cam_front = camera_labels(torch.zeros(1), torch.zeros(1), pivot=(0.0, 0.0, 0.0), radius=20.0)
    cam_turned = camera_labels(torch.tensor([yaw]), torch.zeros(1), pivot=(0.0, 0.0, 0.0), radius=20.0)
    with torch.no_grad():
        rest = head(pose=torch.zeros(1, 15))
        turned = head(pose=pose).vertices
    root = rest.joints[0, 0].double()  # the global rotation turns the head about its root joint
    to_world = torch.diag(torch.tensor([2.5, 2.5, 2.5, 1.0], dtype=torch.float64))[None].clone()
    to_world[0, :3, 3] = -2.5 * root  # the cameras orbit the root joint
    a = contour.contour(rest.vertices, to_world, cam_front)
    b = contour.contour(turned, to_world, cam_turned)
    rot = batch_rodrigues(pose[:, :3].double())[0]
    expected = (a[0] - root) @ rot.T + root
    assert float((b[0] - expected).norm(dim=-1).max()) < 0.0015  # metres


def test_frontal_contour_is_visible_and_on_the_outline():
    """Frontal camera: every jaw point visible; the cheek points and the chin on the outline or the
    jaw / neck border (those round the jaw angles sit a little inside its smoothed corner)."""
    _, ann = _annotate(0.0, 0.0)
    assert ann.landmarks_visible[0, :17].all()
    dist = _silhouette_distance(ann.landmarks_2d[0, :17], ann.mask[0], ann.depth[0])
    neck = (ann.segmentation[0] == SEG_ID["neck"]).float()[None, None]
    near_neck = F.max_pool2d(neck, 5, stride=1, padding=2)[0, 0] > 0
    assert float(dist.max()) <= 6.0, dist
    for k in (0, 1, 2, 3, 7, 8, 9, 13, 14, 15, 16):
        x, y = ann.landmarks_2d[0, k].floor().long().tolist()
        assert float(dist[k]) <= 1.5 or bool(near_neck[y, x]), (k, float(dist[k]))


def test_contour_setting_is_validated():
    with pytest.raises(ConfigError, match="annotate.contour"):
        AnnotateConfig(contour="pose").validate()
    with pytest.raises(ConfigError, match="annotate.contour"):
        Annotator(procedural_head(), RES, AnnotateConfig(contour="pose"))
    AnnotateConfig().validate()
    assert AnnotateConfig().contour == "camera"
    assert head_to_world_matrix(1).shape == (1, 4, 4)
