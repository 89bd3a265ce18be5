"""The jaw contour as the camera sees it: pick the dynamic-contour row from the *effective* yaw.

The head layer picks the 17 contour landmarks from the head's own rotation (FLAME's convention),
which is right when the head turns in front of a fixed camera. SynthForge-style data keeps the
FLAME pose near zero and turns the *camera* instead, so the layer always answers with the frontal
contour and the far-side jaw points stay on the cheek, hidden. :class:`CameraContour` redoes the
choice per sample from what the camera sees:

1. the head's rigid rotation ``R`` (root -> neck chain) is recovered from the posed vertices by a
   Kabsch fit of the back half of the vertices skinned to that chain alone (``GeneratorOutput``
   carries vertices, not the pose);
2. the camera centre ``c`` is taken into head-model space (inverse of head -> world) and then into
   the head's own frame: ``d = R^T (c - t)``, ``t`` where the fit moved the head-model origin
   (the dynamic table is built for an eye on a circle round that origin);
3. the head yaw that makes a fixed frontal camera see the head as this camera does is
   ``-atan2(d_x, d_z)`` (a camera moved towards +x, the subject's left, sees what a head turned
   towards -x shows); the table is indexed by the negated yaw (``HeadModel.contour_rows``), i.e.
   by ``atan2(d_x, d_z)`` in degrees;
4. the 17 points are re-evaluated on the sample's own vertices with that row's faces/barycentrics.

Everything is batched; vertices may be float32 or float64.
"""

from __future__ import annotations

import numpy as np
import torch

from sfray.conventions import NUM_CONTOUR_LANDMARKS
from sfray.geometry.camera import camera_label_to_matrices
from sfray.head.layer import NECK_JOINT, HeadModel, dynamic_contour_rows, vertices_to_landmarks

#: Vertices whose skinning weight on the root -> neck chain's last joint is at least this move
#: rigidly with the head (skull and upper face; not the jaw, the eyeballs or the neck).
RIGID_WEIGHT = 0.99
#: Upper bound on the vertices used for the rigid fit (an even subsample; the fit is a 3x3 SVD).
MAX_FIT_VERTICES = 2000


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def camera_centre_in_head(camera: torch.Tensor, head_to_world: torch.Tensor) -> torch.Tensor:
    """(B, 3) float64 camera centres in head-model space from labels (B, 25) and head -> world (B, 4, 4)."""
    c2w, _ = camera_label_to_matrices(camera.to(torch.float64))
    return torch.linalg.solve(head_to_world.to(torch.float64), c2w[:, :, 3:])[:, :3, 0]


class CameraContour:
    """Per-sample dynamic-contour rows from head pose + camera, and the re-evaluated contour points."""

    def __init__(self, head: HeadModel):
        weights = _as_numpy(head.lbs_weights)
        joint = NECK_JOINT if weights.shape[1] > NECK_JOINT else 0
        template = _as_numpy(head.v_template)
        ids = np.flatnonzero(weights[:, joint] >= RIGID_WEIGHT)
        if ids.size < 6:  # a head without a clear rigid part: fit on everything
            ids = np.arange(weights.shape[0])
        # the back half (the face looks to +z): expressions and most identity asymmetries live on
        # the face and would tilt the fit
        ids = ids[template[ids, 2] <= np.median(template[ids, 2])]
        if ids.size > MAX_FIT_VERTICES:
            ids = ids[np.linspace(0, ids.size - 1, MAX_FIT_VERTICES).round().astype(np.int64)]
        self.fit_ids = torch.as_tensor(ids, dtype=torch.int64)
        rest = torch.as_tensor(template[ids], dtype=torch.float64)
        self.rest_mean = rest.mean(dim=0)
        self.rest_centred = rest - self.rest_mean  # (N, 3)
        self.faces = torch.as_tensor(_as_numpy(head.faces), dtype=torch.int64)
        # the dynamic table: (79, 17) faces and (79, 17, 3) barycentrics
        self.table_faces = torch.as_tensor(_as_numpy(head.dynamic_lmk_faces), dtype=torch.int64)
        self.table_bary = torch.as_tensor(_as_numpy(head.dynamic_lmk_bary), dtype=torch.float64)

    def _to(self, device: torch.device) -> None:
        if self.faces.device != device:
            for name in ("fit_ids", "rest_mean", "rest_centred", "faces", "table_faces", "table_bary"):
                setattr(self, name, getattr(self, name).to(device))

    def head_pose(self, vertices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rigid head pose ``(R (B, 3, 3), t (B, 3))`` with ``posed ~ R rest + t`` (float64)."""
        self._to(vertices.device)
        posed = vertices[:, self.fit_ids].to(torch.float64)  # (B, N, 3)
        mean = posed.mean(dim=1)
        cov = torch.einsum("ni,bnj->bij", self.rest_centred, posed - mean[:, None])  # sum rest^T posed
        u, _, vh = torch.linalg.svd(cov)
        v = vh.transpose(1, 2)
        det = torch.det(v @ u.transpose(1, 2))
        fix = torch.ones_like(u[:, 0])
        fix[:, 2] = torch.sign(det)
        rot = v @ torch.diag_embed(fix) @ u.transpose(1, 2)
        t = mean - (rot @ self.rest_mean[:, None]).squeeze(-1)
        return rot, t

    def table_yaw(self, vertices: torch.Tensor, camera_centre: torch.Tensor) -> torch.Tensor:
        """(B,) degrees ``atan2(d_x, d_z)``: the dynamic table's yaw (negated effective head yaw).

        ``camera_centre`` (B, 3) is the camera centre in head-model space.
        """
        rot, t = self.head_pose(vertices)
        d = (rot.transpose(1, 2) @ (camera_centre.to(torch.float64) - t)[..., None]).squeeze(-1)
        return torch.rad2deg(torch.atan2(d[:, 0], d[:, 2]))

    def rows(self, vertices: torch.Tensor, camera_centre: torch.Tensor) -> torch.Tensor:
        """(B,) long rows of the 79-row dynamic table for each sample's own camera."""
        return dynamic_contour_rows(self.table_yaw(vertices, camera_centre))

    def apply(self, vertices: torch.Tensor, landmarks: torch.Tensor, head_to_world: torch.Tensor,
              camera: torch.Tensor) -> torch.Tensor:
        """(B, 68, 3) ``landmarks`` with the 17 contour points redone for each sample's camera.

        ``vertices`` (B, V, 3) and ``landmarks`` (B, 68, 3) head-model space, ``head_to_world``
        (B, 4, 4) the transform the camera label (B, 25) is expressed against.
        """
        rows = self.rows(vertices, camera_centre_in_head(camera, head_to_world))
        jaw = self.landmarks(vertices, rows).to(landmarks.dtype)
        return torch.cat([jaw, landmarks[:, NUM_CONTOUR_LANDMARKS:]], dim=1)

    def landmarks(self, vertices: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """(B, 17, 3) contour points of ``rows`` on ``vertices`` (B, V, 3), in the vertices' dtype."""
        self._to(vertices.device)
        rows = rows.to(vertices.device)
        return vertices_to_landmarks(vertices, self.faces, self.table_faces[rows], self.table_bary[rows])
