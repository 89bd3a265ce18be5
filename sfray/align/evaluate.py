"""Before/after figures of an alignment map on held-out samples (``align_report.json``).

The figures are measured with the real :class:`~sfray.annotate.annotator.Annotator` at the
generation resolution, i.e. on exactly what a dataset would contain:

* ``landmark_px``: mean distance (pixels at the generation resolution) between the annotated 2D
  landmarks and the generator's ground truth (``extras['landmarks_2d_rendered']``, known to the
  procedural renderer's ``misalign`` knob), else the detector's landmarks, else ``None``;
* ``depth_abs``: mean |mesh z - generator z| over pixels both cover (world units);
* ``mask_iou``: mesh mask vs generator foreground.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from sfray.annotate.annotator import Annotator
from sfray.annotate.quality import depth_residuals, landmark_distance, mask_iou
from sfray.conventions import Extra
from sfray.generators.base import GeneratorOutput
from sfray.geometry.alignment_map import AlignmentMap


@dataclass
class Figures:
    """Running sums of the report figures over held-out batches."""

    landmark: list[float] = field(default_factory=list)
    depth: list[float] = field(default_factory=list)
    iou: list[float] = field(default_factory=list)
    landmark_source: str | None = None

    def add(self, out: GeneratorOutput, annotator: Annotator, detections: torch.Tensor | None) -> None:
        ann = annotator.annotate(out)
        truth = out.extras.get(Extra.LANDMARKS_2D_RENDERED)
        target, source = (truth, "ground_truth") if truth is not None else (detections, "detector")
        if target is not None:
            d = landmark_distance(ann.landmarks_2d.detach().cpu(), target.detach().cpu())
            self.landmark += [float(v) for v in d if math.isfinite(float(v))]
            self.landmark_source = source
        _, _, mean = depth_residuals(ann.depth.cpu(), ann.mask.cpu(), out.depth.detach().cpu(),
                                     out.mask.detach().cpu())
        self.depth += [float(v) for v in mean if math.isfinite(float(v))]
        self.iou += [float(v) for v in mask_iou(ann.mask.cpu(), out.mask.detach().cpu())]

    def summary(self) -> dict[str, float | None]:
        avg = lambda xs: (sum(xs) / len(xs)) if xs else None  # noqa: E731
        return {"landmark_px": avg(self.landmark), "depth_abs": avg(self.depth), "mask_iou": avg(self.iou)}


def annotator_for(head, resolution: int, annotate_cfg, amap: AlignmentMap) -> Annotator:
    """An annotator using ``amap`` regardless of ``annotate.alignment_map``."""
    return Annotator(head, resolution, annotate_cfg, amap)
