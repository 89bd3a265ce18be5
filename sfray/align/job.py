"""``sfray align``: fit the global alignment map on fresh samples, report before/after, write it.

Steps: build the head and the generator exactly as ``sfray generate`` would; generate
``align.num_samples`` fitting samples (ids ``0..N-1``) and resample them to ``align.resolution``;
fit the map (:func:`sfray.align.solver.fit`, one group); measure the before/after figures on
``align.num_holdout`` held-out samples (ids from ``align.holdout_offset``) at the generation
resolution; then, and only then, write ``output_dir/<align.map_file>``, ``align_report.json``,
``align_report.md`` and the resolved ``config.yaml``, each atomically. A failure anywhere before
leaves ``output_dir`` without a map or report.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from sfray.align.evaluate import Figures, annotator_for
from sfray.align.model import describe
from sfray.align.observe import FitBatch, observe
from sfray.align.report import render_markdown
from sfray.align.solver import fit
from sfray.annotate.detector import load_detector, run_detector
from sfray.config.loader import to_yaml
from sfray.config.schema import AlignJobConfig
from sfray.conventions import Extra
from sfray.errors import SfrayError
from sfray.geometry.alignment_map import AlignmentMap, load_alignment_map, save_alignment_map
from sfray.geometry.transform import similarity_matrix
from sfray.io.atomic import atomic_write_text

REPORT_JSON = "align_report.json"
REPORT_MD = "align_report.md"
CONFIG_FILE = "config.yaml"  # the resolved config, next to the map it produced
CONVENTION = "annotated_world = A @ mesh_to_world @ p; a knob S moving the rendered head is fixed by A = S"


@dataclass
class AlignResult:
    output_dir: Path
    map_path: Path
    report: dict[str, Any]


def _landmark_source(cfg: AlignJobConfig) -> str:
    src = cfg.align.landmarks
    if src == "auto":
        return "detector" if cfg.quality.detector else "none"
    return src


def _batches(ids: np.ndarray, size: int):
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def run_align(cfg: AlignJobConfig, stream: TextIO | None = sys.stderr,
              on_iteration: Callable[[int, dict[str, Any]], None] | None = None) -> AlignResult:
    """Fit, evaluate and write the alignment map of ``cfg`` (see the module docstring)."""
    from sfray.annotate.stack import build_stack
    from sfray.geometry.visibility import render_visibility
    from sfray.head.contour import CONTOUR_TOLERANCE_SHARE, CameraContour
    from sfray.sampling import make_specs

    t0 = time.monotonic()

    def log(msg: str) -> None:
        if stream is not None:
            stream.write(msg + "\n")
            stream.flush()

    a = cfg.align
    stack = build_stack(cfg, with_annotator=False)
    device, head, generator = stack.device, stack.head, stack.generator
    faces = torch.as_tensor(np.asarray(head.faces), dtype=torch.int64)
    source = _landmark_source(cfg)
    detector = load_detector(cfg.quality.detector) if source == "detector" else None
    init_path = a.init or cfg.annotate.alignment_map
    init = load_alignment_map(init_path) if init_path else AlignmentMap.identity()

    def specs_for(ids: np.ndarray):
        return make_specs(ids, cfg.seed, cfg.sampling, cfg.camera, n_shape=head.n_shape,
                          n_expression=head.n_expression, latent_dim=generator.latent_dim).to(device)

    def targets(out) -> torch.Tensor | None:
        if source == "detector":
            return run_detector(detector, out.image.detach().cpu())
        if source == "ground_truth":
            truth = out.extras.get(Extra.LANDMARKS_2D_RENDERED)
            if truth is None:
                raise SfrayError(f"align.landmarks=ground_truth: generator '{generator.identity}' exposes "
                                 f"no ground-truth landmarks (extras['{Extra.LANDMARKS_2D_RENDERED}']); "
                                 "use detector or none")
            return truth
        return None

    contour = CameraContour.for_head(head) if cfg.annotate.contour == "camera" else None

    def contour_landmarks(out: Any) -> torch.Tensor | None:
        """The landmarks the annotator will project (its contour choice), for the landmark term."""
        if contour is None:
            return None
        m = out.mesh_to_world.to(torch.float64)
        seen = render_visibility(out.head_vertices, faces.to(out.head_vertices.device), m, out.camera,
                                 cfg.generate.resolution,
                                 tolerance=CONTOUR_TOLERANCE_SHARE * cfg.annotate.visibility_tolerance)
        return contour.apply(out.head_vertices, out.head_landmarks, m, out.camera, seen)

    # 1. fitting samples
    fit_ids = np.arange(a.num_samples, dtype=np.int64)
    parts: list[FitBatch] = []
    with torch.no_grad():
        for ids in _batches(fit_ids, cfg.generate.batch_size):
            out = generator.generate(specs_for(ids))
            parts.append(observe(out, faces, a.resolution, max_points=a.max_points,
                                 landmark_target=targets(out), seed=int(ids[0]),
                                 head_landmarks=contour_landmarks(out)))
            log(f"align: generated {int(ids[-1]) + 1}/{a.num_samples} fitting samples")
    batch = FitBatch.concat(parts)

    # 2. fit one global map
    base = init.matrix.to(device).unsqueeze(0)
    pivot = (batch.mesh_world.reshape(-1, 3).mean(dim=0) @ base[0, :3, :3].T + base[0, :3, 3]).unsqueeze(0)

    def progress(it: int, entry: dict[str, Any]) -> None:
        terms = " ".join(f"{k[5:]}={entry[k]:.4g}" for k in entry if k.startswith("loss_"))
        log(f"align: iteration {it}/{a.iterations} cost={entry['cost']:.5g} "
            f"(robust scales x{entry['scale_factor']:g}) change={entry['change']:.2e} {terms}")
        if on_iteration is not None:
            on_iteration(it, entry)

    groups = torch.zeros(len(batch), dtype=torch.long, device=device)
    outcome = fit(batch, kind=a.model, loss=a.loss, iterations=a.iterations, base=base, groups=groups,
                  pivot=pivot, tolerance=a.tolerance, max_points=a.max_points, seed=cfg.seed,
                  progress=progress, anneal=a.anneal)
    fitted = AlignmentMap(outcome.maps[0].cpu(), source="sfray align")

    # 3. held-out before/after at the generation resolution
    before, after = Figures(), Figures()
    ann_before = annotator_for(head, cfg.generate.resolution, cfg.annotate, init)
    ann_after = annotator_for(head, cfg.generate.resolution, cfg.annotate, fitted)
    hold_ids = np.arange(a.holdout_offset, a.holdout_offset + a.num_holdout, dtype=np.int64)
    with torch.no_grad():
        for ids in _batches(hold_ids, cfg.generate.batch_size):
            out = generator.generate(specs_for(ids))
            det = run_detector(detector, out.image.detach().cpu()) if detector is not None else None
            before.add(out, ann_before, det)
            after.add(out, ann_after, det)
    log(f"align: evaluated {a.num_holdout} held-out samples")

    report = build_report(cfg, init, fitted, before, after, outcome, len(batch), source,
                          time.monotonic() - t0)

    # 4. commit: the map first, then the reports (all atomic)
    out_dir = Path(cfg.output_dir)
    map_path = save_alignment_map(fitted, out_dir / a.map_file,
                                  info={"model": a.model, "samples": a.num_samples,
                                        "generator": generator.identity})
    atomic_write_text(out_dir / REPORT_JSON, json.dumps(_finite(report), indent=2) + "\n")
    atomic_write_text(out_dir / REPORT_MD, render_markdown(report))
    atomic_write_text(out_dir / CONFIG_FILE, to_yaml(cfg))
    return AlignResult(out_dir, map_path, report)


def _finite(x: Any) -> Any:
    """The report with non-finite floats as null (strict JSON has no Infinity/NaN)."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, torch.Tensor):
        return _finite(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def build_report(cfg: AlignJobConfig, init: AlignmentMap, fitted: AlignmentMap, before: Figures,
                 after: Figures, outcome: Any, n_fit: int, source: str, seconds: float) -> dict[str, Any]:
    """The content of ``align_report.json`` (schema documented in docs/alignment.md)."""
    report: dict[str, Any] = {
        "before": before.summary(),
        "after": after.summary(),
        "samples": len(after.iou),
        "fit_samples": n_fit,
        "landmark_reference": after.landmark_source,
        "fit_landmarks": source,
        "resolution": cfg.generate.resolution,
        "fit_resolution": cfg.align.resolution,
        "model": cfg.align.model,
        "generator": cfg.generator.kind,
        "convention": CONVENTION,
        "map": fitted.matrix.tolist(),
        "map_summary": describe(fitted.matrix),
        "initial_map": init.matrix.tolist(),
        "cost_first": outcome.cost_first,
        "cost_last": outcome.cost_last,
        "iterations": len(outcome.history),
        "history": outcome.history,
        "seconds": round(seconds, 2),
    }
    if cfg.generator.kind == "procedural":
        knob = similarity_matrix(cfg.faults.misalign)
        residual = fitted.matrix @ torch.linalg.inv(knob)
        report["knob"] = list(cfg.faults.misalign)
        report["map_times_knob_inverse"] = describe(residual)
    return report
