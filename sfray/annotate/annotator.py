"""Annotations from the mesh that drove the generator: landmarks, visibility, segmentation, depth.

The annotator never looks at the image. It takes the head mesh from ``GeneratorOutput``, maps it
to the generator's world with the generator's own ``mesh_to_world`` followed by the global
:class:`AlignmentMap` (identity unless ``annotate.alignment_map`` is set), and projects it with the
rendering camera (``sfray.geometry.camera``), then rasterizes it once with sfray's rasterizer:

* ``landmarks_2d`` (B, 68, 2) pixels and ``landmarks_3d`` (B, 68, 3) camera space are the 68 iBUG
  points with the *dynamic* contour, the points 2D benchmarks mean. ``annotate.contour`` picks the
  17 jaw points: ``camera`` (default) re-evaluates them on ``head_vertices`` from the dynamic-table
  row of the yaw this sample's camera sees (head pose + camera azimuth, ``sfray.head.contour``),
  so a camera turned round the head moves the far-side jaw points onto the visible outline;
  ``head`` keeps ``head_landmarks`` as the head model chose them from its own rotation (FLAME's
  convention, blind to the camera). The 51 static points are ``head_landmarks[:, 17:]`` either way.
  ``landmarks_3d`` is the unprojected partner of the 2D points, so ``project(landmarks_3d) ==
  landmarks_2d``.
* ``landmarks_3d_fixed`` / ``landmarks_2d_fixed`` come from ``head_landmarks_fixed``: the 68
  points at fixed mesh locations (DECA's "full" embedding), which is what 3D landmark users want
  (a contour that does not slide with the pose). ``landmarks_world`` is the dynamic set in world.
* ``landmarks_visible`` (B, 68): inside the image and on the surface the image shows there (the
  rendered mesh within ``annotate.visibility_tolerance`` of the landmark's depth somewhere in its
  3x3 pixel block, ``sfray.geometry.visibility``).
* ``segmentation`` (B, H, W) uint8: per-pixel UV (perspective-correct barycentrics of the per-face
  -corner UVs) looked up *nearest* in the UV label map (``sfray.geometry.uv_labels``);
  ``BACKGROUND_ID`` where no face covers the pixel centre.
* ``depth`` (B, H, W) float32 camera-space z of the mesh, 0 outside; ``mask`` (B, H, W) bool, which
  equals ``segmentation != BACKGROUND_ID`` and the mesh coverage (unlabelled UV texels are filled
  from their nearest region, so every covered pixel gets a region).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sfray.config.registries import CONTOUR_MODES
from sfray.config.schema import AnnotateConfig
from sfray.conventions import BACKGROUND_ID, DepthSource, Extra, Field
from sfray.errors import ConfigError
from sfray.generators.base import GeneratorOutput, SampleSpecs
from sfray.geometry.alignment_map import AlignmentMap
from sfray.geometry.raster_backends import rasterizer_for
from sfray.geometry.rasterizer import interpolate
from sfray.geometry.uv_labels import fill_unlabelled, lookup_labels
from sfray.geometry.visibility import ZBufferVisibility, head_points_to_screen, landmark_visibility
from sfray.head.contour import CONTOUR_TOLERANCE_SHARE, CameraContour
from sfray.head.layer import HeadModel


@dataclass
class Annotation:
    """Annotations of a batch of B samples at H = W = resolution."""

    landmarks_2d: torch.Tensor  # (B, 68, 2) float32 pixels
    landmarks_3d: torch.Tensor  # (B, 68, 3) float32 camera space
    landmarks_visible: torch.Tensor  # (B, 68) bool
    landmarks_2d_fixed: torch.Tensor  # (B, 68, 2) float32 pixels
    landmarks_3d_fixed: torch.Tensor  # (B, 68, 3) float32 camera space
    landmarks_world: torch.Tensor  # (B, 68, 3) float32 (aligned) generator world
    segmentation: torch.Tensor  # (B, H, W) uint8 SEG_CLASSES ids
    depth: torch.Tensor  # (B, H, W) float32 camera z, 0 outside the mask
    mask: torch.Tensor  # (B, H, W) bool
    mesh_to_world: torch.Tensor  # (B, 4, 4) the transform used: alignment @ generator mesh_to_world


def _as_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class Annotator:
    """Turns a :class:`GeneratorOutput` into an :class:`Annotation` (no image content is used)."""

    def __init__(self, head: HeadModel, resolution: int, cfg: AnnotateConfig | None = None,
                 alignment: AlignmentMap | None = None):
        self.cfg = cfg if cfg is not None else AnnotateConfig()
        CONTOUR_MODES.check(self.cfg.contour)
        self.resolution = int(resolution)
        if alignment is None and self.cfg.alignment_map:
            from sfray.geometry.alignment_map import load_alignment_map

            alignment = load_alignment_map(self.cfg.alignment_map)
        self.alignment = alignment if alignment is not None else AlignmentMap()
        self.rasterize = rasterizer_for(self.cfg.raster_backend)
        self.faces = torch.as_tensor(_as_numpy(head.faces), dtype=torch.int64)
        uv = torch.as_tensor(_as_numpy(head.uv_coords), dtype=torch.float32)
        uv_faces = torch.as_tensor(_as_numpy(head.uv_faces), dtype=torch.int64)
        self.face_uv = uv[uv_faces]  # (F, 3, 2) per-face-corner UVs (seams have distinct corners)
        self.label_map = torch.as_tensor(fill_unlabelled(_as_numpy(head.uv_label_map)))  # (H, W) uint8
        self.contour = CameraContour.for_head(head) if self.cfg.contour == "camera" else None
        self._device: torch.device | None = None

    def _to(self, device: torch.device) -> None:
        if self._device != device:
            self.faces = self.faces.to(device)
            self.face_uv = self.face_uv.to(device)
            self.label_map = self.label_map.to(device)
            self._device = device

    def world_transform(self, out: GeneratorOutput) -> torch.Tensor:
        """(B, 4, 4) head space -> aligned world: ``alignment @ out.mesh_to_world`` (float64).

        A map fitted on the SynthForge release's transform (the authors' ``fixMapMLP01.pth``,
        ``base="synthforge"``) composes with the generator's ``extras["mesh_to_world_synthforge"]``
        when it reports one (Next3D does), since that is what the map corrects.
        """
        base = out.mesh_to_world
        if getattr(self.alignment, "base", "generator") == "synthforge":
            base = out.extras.get(Extra.MESH_TO_WORLD_SYNTHFORGE, base)
        return self.alignment.compose(base.to(torch.float64))

    def dynamic_landmarks(self, out: GeneratorOutput, m: torch.Tensor, zbuf: torch.Tensor) -> torch.Tensor:
        """(B, 68, 3) head-space landmarks with the contour chosen per ``annotate.contour``.

        ``m`` (B, 4, 4) is the head -> (aligned) world transform (its inverse takes the camera
        centre into head-model space) and ``zbuf`` (B, H, W) the mesh rendered with it, so the
        ``camera`` choice puts each jaw point where the image shows the outline.
        """
        if self.contour is None:
            return out.head_landmarks
        tolerance = CONTOUR_TOLERANCE_SHARE * float(self.cfg.visibility_tolerance)
        visible = ZBufferVisibility(zbuf, m, out.camera, tolerance)
        return self.contour.apply(out.head_vertices, out.head_landmarks, m, out.camera, visible)

    def project(self, points_head: torch.Tensor, m: torch.Tensor, camera: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Head-space points (B, N, 3) -> (world, camera, screen), each (B, N, 3) float64
        (``sfray.geometry.visibility.head_points_to_screen`` at ``resolution``)."""
        return head_points_to_screen(points_head, m, camera, self.resolution)

    def annotate(self, out: GeneratorOutput) -> Annotation:
        """Annotate a batch; all tensors stay on the output's device."""
        device = out.head_vertices.device
        self._to(device)
        res = self.resolution
        if out.image.shape[-2:] != (res, res):
            raise ConfigError(f"annotator built for {res}x{res} (generate.resolution) but the generator "
                              f"returned {tuple(out.image.shape[-2:])} images; build both from one config")
        m = self.world_transform(out)
        _, _, v_screen = self.project(out.head_vertices, m, out.camera)
        frags = self.rasterize(v_screen.to(torch.float32), self.faces, (res, res), perspective_correct=True)
        lm_world, lm_cam, lm_screen = self.project(self.dynamic_landmarks(out, m, frags.zbuf), m, out.camera)
        _, lf_cam, lf_screen = self.project(out.head_landmarks_fixed, m, out.camera)

        covered = frags.face_index >= 0
        uv = interpolate(frags, self.face_uv)  # (B, H, W, 2)
        seg = lookup_labels(self.label_map, uv)
        seg = torch.where(covered, seg, torch.full_like(seg, BACKGROUND_ID)).to(torch.uint8)
        depth = torch.where(covered, frags.zbuf, torch.zeros_like(frags.zbuf)).to(torch.float32)
        visible = landmark_visibility(lm_screen[..., :2], lm_screen[..., 2], frags.zbuf.to(torch.float64),
                                      float(self.cfg.visibility_tolerance))
        f32 = torch.float32
        return Annotation(
            landmarks_2d=lm_screen[..., :2].to(f32), landmarks_3d=lm_cam.to(f32), landmarks_visible=visible,
            landmarks_2d_fixed=lf_screen[..., :2].to(f32), landmarks_3d_fixed=lf_cam.to(f32),
            landmarks_world=lm_world.to(f32), segmentation=seg, depth=depth,
            mask=seg != BACKGROUND_ID, mesh_to_world=m.to(f32),
        )


def to_record_fields(annotation: Annotation, out: GeneratorOutput, specs: SampleSpecs, i: int) -> dict[str, Any]:
    """Sample ``i`` of a batch as record fields (numpy arrays keyed by ``Field``) for the encoder.

    The generator identity (``Field.GENERATOR``) and quality figures are added by the caller.
    ``depth`` is the annotation mesh's z-buffer; ``generator_depth`` / ``generator_mask`` are the
    generator's own depth and coverage at their native resolution (docs/dataset.md).
    """
    def np_(x: torch.Tensor) -> np.ndarray:
        return x[i].detach().cpu().numpy()

    return {
        Field.SAMPLE_ID: int(specs.sample_id[i]),
        Field.SEED: int(specs.seed[i]),
        Field.IMAGE: np_(out.image).astype(np.uint8),
        Field.SEGMENTATION: np_(annotation.segmentation).astype(np.uint8),
        Field.DEPTH: np_(annotation.depth).astype(np.float32),
        Field.MASK: np_(annotation.mask).astype(bool),
        Field.DEPTH_SOURCE: DepthSource.MESH.value,
        Field.GENERATOR_DEPTH: np_(out.depth).astype(np.float32),
        Field.GENERATOR_MASK: np_(out.mask).astype(np.float32),
        Field.GENERATOR_DEPTH_SOURCE: str(out.depth_source),
        Field.LANDMARKS_2D: np_(annotation.landmarks_2d).astype(np.float32),
        Field.LANDMARKS_3D: np_(annotation.landmarks_3d).astype(np.float32),
        Field.LANDMARKS_VISIBLE: np_(annotation.landmarks_visible).astype(bool),
        Field.LANDMARKS_2D_FIXED: np_(annotation.landmarks_2d_fixed).astype(np.float32),
        Field.LANDMARKS_3D_FIXED: np_(annotation.landmarks_3d_fixed).astype(np.float32),
        Field.CAMERA: np_(out.camera).astype(np.float32),
        Field.SHAPE: np_(specs.shape).astype(np.float32),
        Field.EXPRESSION: np_(specs.expression).astype(np.float32),
        Field.POSE: np_(specs.pose).astype(np.float32),
        Field.LATENT: np_(specs.latent).astype(np.float32),
    }
