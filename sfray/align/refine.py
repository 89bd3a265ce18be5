"""Per-sample refinement (the paper's per-sample optimisation; off by default).

The global alignment map removes the residual that every sample shares; what is left differs per
sample (a generator's density drifts with the latent). :class:`Refiner` fits, for each sample of a
batch, a small bounded residual map ``R_i`` (rigid by default) on top of the global map ``A`` with
the same losses as ``sfray align`` (depth, silhouette, Chamfer, landmarks when a detector is
configured), for ``annotate.refine.steps`` Gauss-Newton steps at ``annotate.refine.resolution``.

The result is handed to the unchanged annotator through ``mesh_to_world``: the annotator computes
``A @ mesh_to_world``, so replacing ``mesh_to_world_i`` by ``inv(A) @ R_i @ A @ mesh_to_world_i``
makes it annotate with ``R_i @ A`` exactly. The figures record the residual before and after and
the size of ``R_i``; they go into the record's quality dict (and the manifest).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from sfray.align.model import describe
from sfray.align.observe import observe
from sfray.align.residuals import map_points, project
from sfray.align.solver import Bounds, fit
from sfray.config.schema import RefineConfig
from sfray.generators.base import GeneratorOutput
from sfray.geometry.alignment_map import AlignmentMap

#: Figures written per sample (``Field.QUALITY`` keys / manifest ``quality_*`` columns).
REFINE_FIGURES = ("refine_cost_before", "refine_cost_after", "refine_rotation_deg", "refine_translation",
                  "refine_scale", "alignment_residual")


@dataclass
class RefineResult:
    output: GeneratorOutput  # the batch with mesh_to_world carrying the per-sample residuals
    residuals: torch.Tensor  # (B, 4, 4) R_i in world
    figures: list[dict[str, float]] = field(default_factory=list)


class Refiner:
    """Fits a bounded residual map per sample; see the module docstring."""

    def __init__(self, cfg: RefineConfig, faces: torch.Tensor, alignment: AlignmentMap | None = None,
                 *, reference_resolution: int = 512):
        cfg.validate()
        self.cfg = cfg
        self.faces = torch.as_tensor(faces, dtype=torch.int64)
        self.alignment = alignment if alignment is not None else AlignmentMap()
        self.reference_resolution = reference_resolution
        self.bounds = Bounds(cfg.max_rotation_deg, cfg.max_translation, cfg.max_scale_change)

    def refine(self, out: GeneratorOutput, landmark_target: torch.Tensor | None = None) -> RefineResult:
        """Refine a batch. ``landmark_target`` (B, 68, 2) are detector pixels at the generation
        resolution (NaN = none); without it the landmark term is inactive."""
        cfg = self.cfg
        dev = out.head_vertices.device
        batch = observe(out, self.faces, cfg.resolution, landmark_target=landmark_target)
        b = len(batch)
        a = self.alignment.matrix.to(dev, torch.float64)
        base = a.expand(b, 4, 4).clone()
        groups = torch.arange(b, device=dev)
        pivot = (batch.mesh_world.mean(dim=1) @ a[:3, :3].T) + a[:3, 3]
        outcome = fit(batch, kind=cfg.model, loss=cfg.loss, iterations=cfg.steps, base=base, groups=groups,
                      pivot=pivot, bounds=self.bounds, max_points=800)
        full = outcome.maps  # (B, 4, 4) = R_i @ A
        resid = full @ torch.linalg.inv(a)
        m2w = torch.linalg.inv(a) @ full @ out.mesh_to_world.to(torch.float64)
        refined = replace(out, mesh_to_world=m2w.to(out.mesh_to_world.dtype))

        # landmark shift caused by R_i, pixels at the reference resolution
        lm = batch.landmarks_world.reshape(-1, 3)
        idx = groups.repeat_interleave(batch.landmarks_world.shape[1])
        p0, _ = project(map_points(lm, base, idx), batch, idx)
        p1, _ = project(map_points(lm, full, idx), batch, idx)
        to_reference = self.reference_resolution / cfg.resolution
        shift = (p1 - p0).norm(dim=-1).reshape(b, -1).mean(dim=1) * to_reference
        t_slice = slice(9, 12) if cfg.model == "affine" else slice(3, 6)
        figures = []
        for i in range(b):
            figures.append({
                "refine_cost_before": float(outcome.group_cost_first[i]),
                "refine_cost_after": float(outcome.group_cost_last[i]),
                "refine_rotation_deg": describe(resid[i])["rotation_deg"],
                "refine_translation": float(outcome.theta[i, t_slice].norm()),  # about the head centre
                "refine_scale": describe(resid[i])["scale"],
                "alignment_residual": float(shift[i]),
            })
        return RefineResult(refined, resid, figures)
