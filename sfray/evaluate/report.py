"""Evaluation reports: ``report.json``, ``report.md`` (tables in the paper's format) and a figure.

One report holds any number of *methods* (e.g. "direct mapping" and "SB+LF") scored on any number
of benchmarks, each a :class:`~sfray.evaluate.scoring.ScoreReport`. ``report.md`` has, per
benchmark: an NME table with one column per split (the paper's Table 1: common / challenge /
full, in %), FR and AUC beside it; a per-class F1 table with the foreground mean (Tables 2-3, in
%); a depth table where depth was scored. The qualitative figure (the paper's Fig. 4) shows, per
image, the input and ground truth next to predictions for landmarks, parsing and depth.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sfray.benchmarks.schemas import LabelSchema
from sfray.io.atomic import atomic_path, atomic_write_text

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
FIGURE_PNG = "qualitative.png"


def json_safe(obj: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, recursively (strict JSON for other tools)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and np.ndim(obj) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100.0 * float(x):.2f}"


def _by_benchmark(results: Sequence[tuple[str, Any]]) -> dict[str, list[tuple[str, Any]]]:
    out: dict[str, list[tuple[str, Any]]] = {}
    for method, rep in results:
        out.setdefault(rep.benchmark, []).append((method, rep))
    return out


def _landmark_tables(rows: list[tuple[str, Any]]) -> list[str]:
    splits = [s for s in dict.fromkeys(s for _, r in rows for s, v in r.splits.items() if v.landmarks)]
    if not splits:
        return []
    lines = ["| Method | " + " | ".join(f"NME {s} (%)" for s in splits) + " |",
             "|---|" + "---:|" * len(splits)]
    for method, rep in rows:
        lines.append(f"| {method} | " + " | ".join(
            _pct(rep.splits[s].landmarks["nme"]) if s in rep.splits and rep.splits[s].landmarks else "–"
            for s in splits) + " |")
    thr = next(r.splits[s].landmarks["threshold"] for _, r in rows for s in splits
               if s in r.splits and r.splits[s].landmarks)
    lines += ["", "| Method | " + " | ".join(f"FR@{thr:g} {s} (%) | AUC@{thr:g} {s} (%)" for s in splits) + " |",
              "|---|" + "---:|" * (2 * len(splits))]
    for method, rep in rows:
        cells = []
        for s in splits:
            lm = rep.splits[s].landmarks if s in rep.splits else None
            cells += [_pct(lm["fr"]), _pct(lm["auc"])] if lm else ["–", "–"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    norm = next(r.splits[s].landmarks["norm"] for _, r in rows for s in splits
                if s in r.splits and r.splits[s].landmarks)
    return ["### Landmarks", "", f"NME normalised {norm.replace('_', '-')}; lower is better.", ""] + lines + [""]


def _parsing_tables(rows: list[tuple[str, Any]]) -> list[str]:
    out: list[str] = []
    splits = [s for s in dict.fromkeys(s for _, r in rows for s, v in r.splits.items() if v.parsing)]
    for s in splits:
        first = next(r.splits[s].parsing for _, r in rows if s in r.splits and r.splits[s].parsing)
        classes = [c for c in first["f1"] if c != first["background"]]
        lines = [f"### Face parsing, {s} split", "", ("F1 (%) per class from one confusion matrix over the split; "
                                                      "Mean = foreground mean (background excluded)."), "",
                 "| Method | " + " | ".join(classes) + " | Mean |", "|---|" + "---:|" * (len(classes) + 1)]
        for method, rep in rows:
            pa = rep.splits[s].parsing if s in rep.splits else None
            if not pa:
                continue
            lines.append(f"| {method} | " + " | ".join(_pct(pa["f1"].get(c)) for c in classes)
                         + f" | {_pct(pa['mean_f1'])} |")
        out += lines + [""]
    return out


def _depth_tables(rows: list[tuple[str, Any]]) -> list[str]:
    lines = []
    for method, rep in rows:
        for s, v in rep.splits.items():
            if v.depth:
                lines.append(f"| {method} | {s} | {v.depth['si_rmse']:.4f} | {v.depth['si_mae']:.4f} | "
                             f"{v.depth['images']} |")
    if not lines:
        return []
    return ["### Depth", "", "Scale-and-shift-invariant errors in ground-truth units (lower is better).", "",
            "| Method | Split | si-RMSE | si-MAE | Images |", "|---|---|---:|---:|---:|"] + lines + [""]


def report_markdown(results: Sequence[tuple[str, Any]], *, title: str, figure: str | None = None,
                    notes: Sequence[str] = ()) -> str:
    """The Markdown body of ``report.md`` for ``results`` = [(method, ScoreReport), ...]."""
    lines = [f"# {title}", ""] + [f"{n}" for n in notes] + ([""] if notes else [])
    for bench, rows in _by_benchmark(results).items():
        lines += [f"## {bench}", ""] + _landmark_tables(rows) + _parsing_tables(rows) + _depth_tables(rows)
        skipped = {(m, s, t): len(k) for m, r in rows for s, v in r.splits.items() for t, k in v.skipped.items() if k}
        for (m, s, t), n in skipped.items():
            lines.append(f"- {m}, {s}: {n} image(s) without usable {t} ground truth were skipped "
                         "(report.json lists them)")
        lines.append("")
    if figure:
        lines += ["## Qualitative results", "", f"![ground truth vs predictions]({figure})", ""]
    return "\n".join(lines)


def write_report(out_dir: str | Path, results: Sequence[tuple[str, Any]], *, title: str = "sfray evaluation",
                 figure: Image.Image | None = None, extra: dict[str, Any] | None = None,
                 notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and (if given) the figure PNG into ``out_dir``."""
    out = Path(out_dir)
    paths = {"json": out / REPORT_JSON, "md": out / REPORT_MD}
    if figure is not None:
        paths["figure"] = out / FIGURE_PNG
        with atomic_path(paths["figure"]) as tmp:
            figure.save(tmp, format="PNG")
    data = {"title": title, "results": [{"method": m, **r.as_dict()} for m, r in results], "extra": extra or {}}
    atomic_write_text(paths["json"], json.dumps(json_safe(data), indent=2))
    atomic_write_text(paths["md"], report_markdown(results, title=title, notes=notes,
                                                   figure=FIGURE_PNG if figure is not None else None))
    return paths


@dataclass
class QualitativeRow:
    """One image of the figure: the input and whatever ground truth / predictions exist (annotation frame)."""

    title: str
    image: np.ndarray
    gt_landmarks: np.ndarray | None = None
    pred_landmarks: np.ndarray | None = None
    gt_labels: np.ndarray | None = None
    pred_labels: np.ndarray | None = None
    gt_depth: np.ndarray | None = None
    pred_depth: np.ndarray | None = None
    depth_mask: np.ndarray | None = None
    near_is_large: bool = True  # LaPa-D's grey levels; False for camera-space z


def qualitative_figure(rows: Sequence[QualitativeRow], schema: LabelSchema | None = None, cell: int = 192
                       ) -> Image.Image:
    """The Fig. 4-style grid: input | GT/pred landmarks | GT/pred parsing | GT/pred depth."""
    from sfray.evaluate.depth import fit_scale_shift
    from sfray.viz import colorize_depth, draw_landmarks, overlay_segmentation, titled_grid

    has = {k: any(getattr(r, k) is not None for r in rows) for k in ("gt_landmarks", "gt_labels", "gt_depth")}
    titles = ["input"] + (["GT landmarks", "predicted"] if has["gt_landmarks"] else []) \
        + (["GT parsing", "predicted"] if has["gt_labels"] else []) \
        + (["GT depth", "predicted"] if has["gt_depth"] else [])
    palette = schema.palette() if schema is not None else None
    bg = schema.background_id if schema is not None else 0
    grid = []
    for r in rows:
        img = r.image
        scale = cell / max(img.shape[:2])
        small = np.asarray(Image.fromarray(img).resize((round(img.shape[1] * scale), round(img.shape[0] * scale)),
                                                       Image.BILINEAR))
        cells: list[np.ndarray | None] = [small]
        if has["gt_landmarks"]:
            cells += [draw_landmarks(small, p, scale=scale) if p is not None else None
                      for p in (r.gt_landmarks, r.pred_landmarks)]
        if has["gt_labels"]:
            cells += [overlay_segmentation(small, lab.astype(np.uint8), palette=palette, background_id=bg)
                      if lab is not None else None for lab in (r.gt_labels, r.pred_labels)]
        if has["gt_depth"]:
            mask = r.depth_mask if r.depth_mask is not None else (r.gt_depth > 0 if r.gt_depth is not None else None)
            gt = r.gt_depth
            pred = r.pred_depth
            if gt is not None and pred is not None and mask is not None:
                a, b = fit_scale_shift(pred, gt, mask)  # shown in the ground truth's units
                pred = a * pred + b
            sign = -1.0 if r.near_is_large else 1.0  # colorize_depth shows small values as near
            cells += [colorize_depth(sign * d, mask) if d is not None else None for d in (gt, pred)]
        grid.append(cells)
    return titled_grid(grid, titles, cell, row_labels=[r.title for r in rows])


def score_figure_rows(reader: Any, predictions: Any, split: str, n: int = 4) -> list[QualitativeRow]:
    """Up to ``n`` figure rows from a PREDICTIONS directory (the first images with ground truth)."""
    from sfray.evaluate.predictions import Predictions

    preds = predictions if isinstance(predictions, Predictions) else Predictions(predictions)
    rows = []
    for entry in [e for e in reader.entries(split) if e.usable][:n]:
        s = reader.load(entry)
        row = QualitativeRow(entry.key, s.image, gt_landmarks=s.landmarks, gt_labels=s.labels,
                             gt_depth=s.depth, depth_mask=s.depth_mask)
        if s.landmarks is not None and preds.has_landmarks and preds.has_landmarks_for(entry.key):
            row.pred_landmarks = reader.to_sfray_points(preds.landmarks(entry.key, len(s.landmarks)))
        if s.labels is not None and preds.has_parsing and reader.schema is not None:
            row.pred_labels = preds.parsing(entry.key, s.size, reader.schema.num_classes, image_size=s.disk_size)
        if s.depth is not None and preds.has_depth:
            row.pred_depth = preds.depth(entry.key, s.size)
        rows.append(row)
    return rows


def write_score_report(out_dir: str | Path, reader: Any, predictions: Any, report: Any, *,
                       method: str = "predictions", figure_images: int = 4) -> dict[str, Path]:
    """``sfray score --report``: the report of one method, with a figure from its first split."""
    split = next(iter(report.splits), None)
    rows = score_figure_rows(reader, predictions, split, figure_images) if split is not None else []
    figure = qualitative_figure(rows, reader.schema) if rows else None
    return write_report(out_dir, [(method, report)], title=f"{reader.name}: {method}", figure=figure,
                        extra={"predictions": str(predictions)})
