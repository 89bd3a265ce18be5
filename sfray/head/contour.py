"""The jaw contour as the camera sees it (``annotate.contour=camera``, docs/conventions.md).

The head layer picks the 17 contour landmarks from FLAME's dynamic table, indexed by the head's
own yaw: right for a head turning in front of a fixed frontal camera, blind to the camera itself.
SynthForge-style data keeps the FLAME pose near zero and moves the camera round the head (left,
right, above, below), so the table's choice leaves far-side jaw points on the cheek and, with the
camera above the head, the lower jaw points under the chin: hidden, where no annotator of a 2D
benchmark would put them.

:class:`CameraContour` chooses the 17 points per sample from the mesh and the camera instead:
each point slides along a fixed curve on the mesh (``sfray.head.jaw_curves``, built once from the
template and the head's frontal contour, i.e. the table's yaw-0 row) to where the posed surface
turns away from the camera, the outline in the image, or where it comes out from behind another
part of the head (an ear, the cheekbone) when the rendered z-buffer is given; where its frontal
position is seen it stays there. The camera centre is taken into head-model space through the sample's head ->
world transform, so head pose, camera azimuth and elevation all count, for the procedural head and
for FLAME with RingNet's or DECA's embedding alike.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np
import torch

from sfray.conventions import NUM_CONTOUR_LANDMARKS, NUM_LANDMARKS
from sfray.geometry.camera import camera_label_to_matrices
from sfray.geometry.uv_labels import face_labels
from sfray.geometry.visibility import head_points_to_screen
from sfray.head.jaw_curves import JawOutline, build_jaw_curves, densify
from sfray.head.layer import HeadModel, vertices_to_landmarks

#: Head-space points (B, N, 3) -> (B, N) bool: does the rendered image show them?
Visibility = Callable[[torch.Tensor], torch.Tensor]
#: Jaw curves per gap between two neighbouring jaw points: the outline is traced on all of them.
CURVES_PER_GAP = 4
#: Head-model metres: traced outline points farther apart than this are not blended.
MAX_BLEND = 0.008
#: The chin point: it and the two ends stay on their own curves; the rest are spread between them.
CHIN = 8
#: The contour asks its points to be seen with this share of the landmark flags' depth tolerance,
#: so a chosen point keeps its flag with margin (the flag is re-tested on the stored float16 depth).
CONTOUR_TOLERANCE_SHARE = 0.5


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def camera_centre_in_head(camera: torch.Tensor, head_to_world: torch.Tensor) -> torch.Tensor:
    """(B, 3) float64 camera centres in head-model space from labels (B, 25) and head -> world (B, 4, 4)."""
    c2w, _ = camera_label_to_matrices(camera.to(torch.float64))
    return torch.linalg.solve(head_to_world.to(torch.float64), c2w[:, :, 3:])[:, :3, 0]


def face_centre(head: HeadModel) -> np.ndarray:
    """(3,) the mean of the static landmarks (iBUG 17..67) on the template: the jaw curves run towards it."""
    template = _as_numpy(head.v_template).astype(np.float64)
    faces = _as_numpy(head.faces)
    corners = template[faces[_as_numpy(head.static_lmk_faces)]]
    return np.einsum("lkc,lk->lc", corners, _as_numpy(head.static_lmk_bary).astype(np.float64)).mean(axis=0)


class CameraContour:
    """Per-sample contour landmarks from the posed mesh and the camera (see the module docstring).

    Build one with :meth:`for_head`: the curves depend on the template only, so the annotator and
    the generator of one head share them.
    """

    _built: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @classmethod
    def for_head(cls, head: HeadModel) -> CameraContour:
        """The head's contour, built once per head model."""
        if head not in cls._built:
            cls._built[head] = cls(head)
        return cls._built[head]

    def __init__(self, head: HeadModel):
        template = _as_numpy(head.v_template).astype(np.float64)
        faces = _as_numpy(head.faces)
        frontal = 0  # the dynamic table's yaw-0 row: the head's frontal contour
        anchors = densify(template, faces, _as_numpy(head.dynamic_lmk_faces)[frontal],
                          _as_numpy(head.dynamic_lmk_bary)[frontal].astype(np.float64), CURVES_PER_GAP)
        region = face_labels(_as_numpy(head.uv_label_map), _as_numpy(head.uv_coords), _as_numpy(head.uv_faces))
        self.curves = build_jaw_curves(template, faces, *anchors, face_centre(head), region)
        self.outline = JawOutline(self.curves, faces)
        self.faces = torch.as_tensor(faces, dtype=torch.int64)

    def outline_points(self, vertices: torch.Tensor, camera_centre: torch.Tensor, visible: Visibility | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D, 3) float64: the outline point of every jaw curve (``CURVES_PER_GAP`` per gap between
        two jaw points, D = 16 * CURVES_PER_GAP + 1) for cameras at ``camera_centre`` (B, 3, head
        space), and (B, D) bool: whether the image shows that curve anywhere."""
        faces, bary, found = self.outline.choose(vertices, camera_centre, visible)
        pts = vertices_to_landmarks(vertices.to(torch.float64), self.faces.to(vertices.device), faces, bary)
        return pts, found

    def contour(self, vertices: torch.Tensor, head_to_world: torch.Tensor, camera: torch.Tensor,
                visible: Visibility | None = None) -> torch.Tensor:
        """(B, 17, 3) float64 jaw points: the outline traced on all curves, then points 0, 8 and 16
        on their own curves and the others spread evenly along the trace in the image between them
        (2D annotators space these semi-landmarks evenly; docs/conventions.md). A curve the image
        shows nowhere (a jaw hidden behind the lips) enters the trace at its anchor, hidden."""
        pts, _ = self.outline_points(vertices, camera_centre_in_head(camera, head_to_world), visible)
        _, _, uv = head_points_to_screen(pts, head_to_world, camera, 1)  # normalised image coordinates
        half = CHIN * CURVES_PER_GAP
        right = _spread(pts[:, : half + 1], uv[:, : half + 1, :2], CHIN)
        left = _spread(pts[:, half:], uv[:, half:, :2], NUM_CONTOUR_LANDMARKS - 1 - CHIN)
        return torch.cat([right, left[:, 1:]], dim=1)

    def apply(self, vertices: torch.Tensor, landmarks: torch.Tensor, head_to_world: torch.Tensor,
              camera: torch.Tensor, visible: Visibility | None = None) -> torch.Tensor:
        """(B, 68, 3) ``landmarks`` with the 17 contour points redone for each sample's camera.

        ``vertices`` (B, V, 3) and ``landmarks`` (B, 68, 3) head-model space, ``head_to_world``
        (B, 4, 4) the transform the camera label (B, 25) is expressed against; ``visible`` the
        rendered mesh's visibility test (``sfray.geometry.visibility``), which the annotator and
        the procedural renderer's ground truth both pass, so they choose the same points.
        """
        if landmarks.shape[1] != NUM_LANDMARKS:
            raise ValueError(f"expected (B, {NUM_LANDMARKS}, 3) landmarks, got {tuple(landmarks.shape)}")
        jaw = self.contour(vertices, head_to_world, camera, visible).to(landmarks.dtype)
        return torch.cat([jaw, landmarks[:, NUM_CONTOUR_LANDMARKS:]], dim=1)


def _spread(points: torch.Tensor, image: torch.Tensor, gaps: int) -> torch.Tensor:
    """``gaps + 1`` points (B, gaps + 1, 3) evenly spaced by image arc length along the polyline of
    ``points`` (B, N, 3) whose image positions are ``image`` (B, N, 2); both ends kept."""
    step = (image[:, 1:] - image[:, :-1]).norm(dim=-1)  # (B, N - 1)
    arc = torch.cat([torch.zeros_like(step[:, :1]), step.cumsum(dim=1)], dim=1)  # (B, N)
    target = arc[:, -1:] * torch.linspace(0.0, 1.0, gaps + 1, dtype=arc.dtype, device=arc.device)[None]
    seg = (torch.searchsorted(arc.contiguous(), target.contiguous(), right=True) - 1).clamp(0, arc.shape[1] - 2)
    lo, hi = torch.gather(arc, 1, seg), torch.gather(arc, 1, seg + 1)
    w = ((target - lo) / (hi - lo).clamp_min(1e-12)).clamp(0.0, 1.0)[..., None]
    a = torch.gather(points, 1, seg[..., None].expand(-1, -1, 3))
    b = torch.gather(points, 1, (seg + 1)[..., None].expand(-1, -1, 3))
    # between two traced points far apart the outline jumps (from the cheek to the lips that hide
    # the jaw, say): take the nearer one instead of a point in the air between them
    jump = (b - a).norm(dim=-1, keepdim=True) > MAX_BLEND
    w = torch.where(jump, w.round(), w)
    return a + w * (b - a)
