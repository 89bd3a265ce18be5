"""The quality gate: per-sample agreement figures between annotation and image, and a policy.

Every figure compares what the annotator derived from the mesh with what the generator actually
produced, so a sample whose image and annotation disagree is visible in the manifest:

* ``mask_iou``: mesh mask vs generator foreground (generator mask >= 0.5), at the generator's depth
  resolution;
* ``depth_residual`` / ``depth_residual_p90``: median and 90th percentile of |mesh z - generator z|
  over pixels both cover (world units; ``inf`` when they share no pixel);
* ``landmark_depth``: median over the visible landmarks of |landmark camera z - generator depth at
  the landmark's pixel| (world units; pixels the generator does not fully cover are skipped). The
  landmarks sit on the features an expression or identity mismatch moves, and hair never covers
  them, so this separates "the image shows another face than the annotation" from "the generator
  adds geometry the mesh lacks" far better than the whole-mask figures;
* ``face_depth``: median |mesh z - generator z| over the face region (``FACE_REGION`` of the
  annotation's segmentation) where both cover, leaving out what the generator drew as hair or
  scalp (``extras["hair_mask"]`` where it has one): alignment scored on the face the mesh actually
  covers, blind to hair (world units). ``quality.preset=strict`` gates on it (docs/alignment.md);
* ``detector_px`` / ``detector_face`` (with ``quality.detector``): mean distance between the
  annotated and the detected 68 landmarks, in pixels *at 512* (the authors' 11 px rule is stated
  at 512^2), and whether a face was found;
* ``alignment_residual`` (with per-sample refinement): how far the refinement moved the
  landmarks, pixels at 512;
* ``landmark_gt_px``: distance to the generator's own ground-truth landmarks when it has them
  (the procedural renderer's ``misalign`` knob), pixels at 512 -- a diagnostic, never a gate.

The policy (``quality.policy``): ``keep`` records the figures only; ``flag`` marks failing samples
``flagged``; ``drop`` marks them ``dropped`` (the producer stores no record, but the manifest keeps
the id with its reason so resume neither regenerates nor loses it). ``quality.preset=authors``
applies the release's rule: drop when the detector finds no face or disagrees by more than 11 px;
``quality.preset=strict`` drops samples whose ``face_depth`` exceeds ``STRICT_MAX_FACE_DEPTH``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from sfray.annotate.detector import Detector, load_detector, run_detector
from sfray.config.schema import QualityConfig
from sfray.conventions import FACE_REGION, Extra, Field, Status
from sfray.generators.base import GeneratorOutput
from sfray.geometry.resample import resample_depth_mask, sample_bilinear

#: The authors' FAN rule (docs/synthforge.md): mean FAN <-> projected distance at 512^2.
AUTHORS_MAX_DETECTOR_PX = 11.0
#: Resolution at which pixel figures are stated.
REFERENCE_RESOLUTION = 512
#: The strict preset's default: world units (0.4 mm of head-model space). On the procedural
#: renderer, whose geometry is the mesh, aligned samples score below 1e-4 with or without hair, a
#: 3 degree, 0.02 or 4 % misalignment 2e-3 and more (docs/annotation.md).
STRICT_MAX_FACE_DEPTH = 1e-3


@dataclass
class QualityVerdict:
    """One sample's outcome: ``status`` (ok|flagged|dropped), ``reason`` ('' or '+'-joined tokens)
    and the figures (stored as the record's ``Field.QUALITY`` and as manifest columns)."""

    status: str
    reason: str
    figures: dict[str, float | bool] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {Field.STATUS: self.status, Field.REASON: self.reason, **self.figures}


def mask_iou(mesh_mask: torch.Tensor, gen_mask: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool mesh mask vs (B, h, w) soft generator mask -> (B,) IoU at the generator's size."""
    h = gen_mask.shape[-1]
    zeros = torch.zeros_like(mesh_mask, dtype=torch.float64)
    _, m = resample_depth_mask(zeros, mesh_mask.to(torch.float64), h)
    g = gen_mask.to(torch.float64) >= 0.5
    inter = (m & g).flatten(1).sum(1).to(torch.float64)
    union = (m | g).flatten(1).sum(1).to(torch.float64)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def depth_residuals(mesh_depth: torch.Tensor, mesh_mask: torch.Tensor, gen_depth: torch.Tensor,
                    gen_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Median, 90th percentile and mean of |mesh z - generator z| on shared pixels, (B,) each."""
    h = gen_depth.shape[-1]
    d, m = resample_depth_mask(mesh_depth, mesh_mask.to(torch.float64), h)
    both = m & (gen_mask.to(torch.float64) >= 0.5)
    diff = (d - gen_depth.to(torch.float64)).abs()
    med, p90, n = masked_quantiles(diff.flatten(1), both.flatten(1), 0.9)
    mean = torch.where(both.flatten(1), diff.flatten(1), 0.0).sum(1) / n.clamp_min(1)
    mean = torch.where(n > 0, mean, math.inf)
    # float32, as the figures have always been stored (records stay byte-identical)
    return med.float().cpu(), p90.float().cpu(), mean.float().cpu()


def masked_quantiles(values: torch.Tensor, keep: torch.Tensor, q: float
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row-wise median and ``q``-quantile of ``values[keep]`` for (B, N) inputs, in one sort.

    The same numbers as ``v.median()`` (the lower middle value) and ``torch.quantile(v, q)``
    (linear interpolation between the two nearest ranks, rank = q * (n - 1)) on each row's kept
    values, without a per-sample loop; rows with nothing kept give ``inf``. Returns (median,
    quantile, count).
    """
    x = torch.where(keep, values, math.inf)
    s = x.sort(dim=1).values  # kept values first, in order; the rest are inf
    n = keep.sum(1)
    last = (n - 1).clamp_min(0)
    med = s.gather(1, (last // 2)[:, None])[:, 0]
    rank = q * last.to(values.dtype)
    lo, hi = rank.floor().long(), rank.ceil().long()
    quant = torch.lerp(s.gather(1, lo[:, None])[:, 0], s.gather(1, hi[:, None])[:, 0], rank - lo.to(values.dtype))
    none = n == 0
    return med.masked_fill(none, math.inf), quant.masked_fill(none, math.inf), n


def landmark_depth_residual(annotation: Any, gen_depth: torch.Tensor, gen_mask: torch.Tensor,
                            resolution: int) -> torch.Tensor:
    """(B,) median |landmark z - generator depth| over visible, fully covered landmarks (inf: none)."""
    b, h = gen_depth.shape[0], gen_depth.shape[-1]
    xy = annotation.landmarks_2d.detach().cpu().to(torch.float64) * (h / float(resolution))
    z = annotation.landmarks_3d[..., 2].detach().cpu().to(torch.float64)
    idx = torch.arange(b).repeat_interleave(xy.shape[1])
    d = sample_bilinear(gen_depth.to(torch.float64), idx, xy.reshape(-1, 2)).reshape(b, -1)
    cov = sample_bilinear(gen_mask.to(torch.float64), idx, xy.reshape(-1, 2)).reshape(b, -1)
    ok = annotation.landmarks_visible.detach().cpu() & (cov > 0.99)
    med, _, _ = masked_quantiles((d - z).abs(), ok, 0.5)
    return med


def face_depth_residual(annotation: Any, gen_depth: torch.Tensor, gen_mask: torch.Tensor,
                        hair: torch.Tensor | None) -> torch.Tensor:
    """(B,) median |mesh z - generator z| over the face region both cover, minus hair (inf: none).

    At the generator's depth resolution: the mesh depth and the face region are resampled to it
    (coverage >= 0.5); ``hair`` (B, h, w) is the share of each pixel the generator drew as hair
    or scalp (None: the generator does not say).
    """
    h = gen_depth.shape[-1]
    face = torch.isin(annotation.segmentation.cpu(), torch.tensor(FACE_REGION)).to(torch.float64)
    d, m = resample_depth_mask(annotation.depth.cpu().to(torch.float64), annotation.mask.cpu().to(torch.float64), h)
    _, on_face = resample_depth_mask(torch.zeros_like(face), face, h)
    use = m & on_face & (gen_mask.to(torch.float64) >= 0.5)
    if hair is not None:
        use &= hair.to(torch.float64) < 0.5
    diff = (d - gen_depth.to(torch.float64)).abs()
    out = torch.full((d.shape[0],), math.inf, dtype=torch.float64)
    for i in range(d.shape[0]):
        if use[i].any():
            out[i] = diff[i][use[i]].median()
    return out


def landmark_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance (B,) between (B, 68, 2) landmark sets; NaN where b is missing."""
    d = (a.to(torch.float64) - b.to(torch.float64).to(a.device)).norm(dim=-1)
    return d.mean(dim=-1)


class QualityGate:
    """Computes the figures of a batch and applies ``quality.policy``."""

    def __init__(self, cfg: QualityConfig, resolution: int, detector: Detector | None = None):
        cfg.validate()
        self.cfg = cfg
        self.resolution = int(resolution)
        self.to512 = REFERENCE_RESOLUTION / float(self.resolution)
        if detector is None and cfg.detector:
            detector = load_detector(cfg.detector)
        self.detector = detector
        self.policy = cfg.policy
        self.max_detector_px = cfg.max_detector_px
        self.max_face_depth = cfg.max_face_depth
        if cfg.preset is not None:  # a preset drops failing samples unless told to flag them
            self.policy = "drop" if cfg.policy == "keep" else cfg.policy
        if cfg.preset == "authors":
            self.max_detector_px = min(cfg.max_detector_px, AUTHORS_MAX_DETECTOR_PX)
        elif cfg.preset == "strict":
            self.max_face_depth = min(cfg.max_face_depth, STRICT_MAX_FACE_DEPTH)

    def detect(self, out: GeneratorOutput) -> torch.Tensor | None:
        """Detector landmarks (B, 68, 2) in pixels at the generation resolution, NaN = no face."""
        if self.detector is None:
            return None
        return run_detector(self.detector, out.image.detach().cpu())

    def figures(self, out: GeneratorOutput, annotation: Any, *, detections: torch.Tensor | None = None,
                extra: list[dict[str, float]] | None = None) -> list[dict[str, float | bool]]:
        """Per-sample figures of a batch (see the module docstring)."""
        b = out.image.shape[0]
        rows: list[dict[str, float | bool]] = [{} for _ in range(b)]
        iou = mask_iou(annotation.mask.cpu(), out.mask.detach().cpu())
        med, p90, _ = depth_residuals(annotation.depth.cpu(), annotation.mask.cpu(),
                                      out.depth.detach().cpu(), out.mask.detach().cpu())
        lmd = landmark_depth_residual(annotation, out.depth.detach().cpu(), out.mask.detach().cpu(),
                                      self.resolution)
        hair = out.extras.get(Extra.HAIR_MASK)
        fdepth = face_depth_residual(annotation, out.depth.detach().cpu(), out.mask.detach().cpu(),
                                     None if hair is None else hair.detach().cpu())
        lm = annotation.landmarks_2d.detach().cpu()
        truth = out.extras.get(Extra.LANDMARKS_2D_RENDERED)
        gt = landmark_distance(lm, truth.detach().cpu()) * self.to512 if truth is not None else None
        if detections is None and self.detector is not None:
            detections = self.detect(out)
        det = landmark_distance(lm, detections) * self.to512 if detections is not None else None
        for i in range(b):
            rows[i]["mask_iou"] = float(iou[i])
            rows[i]["depth_residual"] = float(med[i])
            rows[i]["depth_residual_p90"] = float(p90[i])
            rows[i]["landmark_depth"] = float(lmd[i])
            rows[i]["face_depth"] = float(fdepth[i])
            if gt is not None:
                rows[i]["landmark_gt_px"] = float(gt[i])
            if det is not None:
                face = bool(torch.isfinite(det[i]))
                rows[i]["detector_face"] = face
                rows[i]["detector_px"] = float(det[i]) if face else math.inf
            if extra is not None:
                rows[i].update(extra[i])
        return rows

    def failures(self, fig: dict[str, float | bool]) -> list[str]:
        """Reason tokens of the thresholds a sample fails (empty: passes)."""
        cfg, bad = self.cfg, []
        if float(fig.get("mask_iou", 1.0)) < cfg.min_mask_iou:
            bad.append("mask_iou")
        if float(fig.get("depth_residual", 0.0)) > cfg.max_depth_residual:
            bad.append("depth_residual")
        if float(fig.get("landmark_depth", 0.0)) > cfg.max_landmark_depth:
            bad.append("landmark_depth")
        if float(fig.get("face_depth", 0.0)) > self.max_face_depth:
            bad.append("face_depth")
        if "detector_face" in fig and not fig["detector_face"]:
            if cfg.fail_no_face or cfg.preset == "authors":
                bad.append("no_face")
        elif float(fig.get("detector_px", 0.0)) > self.max_detector_px:
            bad.append("detector_px")
        if float(fig.get("alignment_residual", 0.0)) > cfg.max_alignment_residual:
            bad.append("alignment_residual")
        return bad

    def decide(self, fig: dict[str, float | bool]) -> QualityVerdict:
        bad = self.failures(fig)
        if not bad or self.policy == "keep":
            return QualityVerdict(Status.OK, "", fig)
        return QualityVerdict(Status.FLAGGED if self.policy == "flag" else Status.DROPPED, "+".join(bad), fig)

    def evaluate(self, out: GeneratorOutput, annotation: Any, *, detections: torch.Tensor | None = None,
                 extra: list[dict[str, float]] | None = None) -> list[QualityVerdict]:
        """Figures + verdict for every sample of the batch; ``extra`` (e.g. refinement figures)
        are merged into the figures and gated too (``alignment_residual``)."""
        if not self.cfg.enabled:
            n = out.image.shape[0]
            return [QualityVerdict(Status.OK, "", dict(extra[i]) if extra else {}) for i in range(n)]
        return [self.decide(f) for f in self.figures(out, annotation, detections=detections, extra=extra)]
