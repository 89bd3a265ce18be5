"""What the producer runs around the annotator: optional refinement, detector, figures, policy.

It joins two layers the annotator itself must not know about: the per-sample refinement
(``sfray.align.refine``, an alignment fit) and the quality gate (``sfray.annotate.quality``).
Detection runs once per batch and feeds both the refinement's landmark term and the gate.
"""

from __future__ import annotations

from typing import Any

import torch

from sfray.align.refine import Refiner
from sfray.annotate.detector import Detector
from sfray.annotate.quality import QualityGate, QualityVerdict
from sfray.config.schema import QualityConfig
from sfray.generators.base import GeneratorOutput


class QualityStage:
    """What a producer runs around the annotator: optional refinement, detector, figures, policy.

    ::

        stage = QualityStage(cfg.annotate, cfg.quality, resolution, head.faces, annotator.alignment)
        out, extra, det = stage.prepare(generator.generate(specs))  # refine (if enabled), detect
        ann = annotator.annotate(out)
        verdicts = stage.verdicts(out, ann, extra, det)              # list[QualityVerdict]

    Detection runs once and feeds both the refinement's landmark term and the gate.
    """

    def __init__(self, annotate_cfg: Any, quality_cfg: QualityConfig, resolution: int, faces: torch.Tensor,
                 alignment: Any = None, detector: Detector | None = None):
        self.gate = QualityGate(quality_cfg, resolution, detector=detector)
        refine_cfg = annotate_cfg.refine
        self.refiner = Refiner(refine_cfg, faces, alignment) if refine_cfg.enabled else None

    def prepare(self, out: GeneratorOutput
                ) -> tuple[GeneratorOutput, list[dict[str, float]] | None, torch.Tensor | None]:
        """Detect (when configured) and refine (when enabled); returns the output to annotate."""
        det = self.gate.detect(out) if self.gate.cfg.enabled else None
        if self.refiner is None:
            return out, None, det
        result = self.refiner.refine(out, landmark_target=det)
        return result.output, result.figures, det

    def verdicts(self, out: GeneratorOutput, annotation: Any, extra: list[dict[str, float]] | None,
                 detections: torch.Tensor | None) -> list[QualityVerdict]:
        return self.gate.evaluate(out, annotation, detections=detections, extra=extra)
