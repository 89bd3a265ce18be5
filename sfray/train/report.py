"""What a Stage I run leaves next to its checkpoints: predictions, report, a picture.

OUTPUT/predictions.npz   held-out predictions in the dataset frame (docs/training.md lists the keys)
OUTPUT/report.json       held-out metrics, baselines, split, per-epoch history, speed
OUTPUT/report.md         the same for people
OUTPUT/predictions.png   a few held-out samples: truth vs prediction (landmarks, segmentation, depth)
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sfray.evaluate.report import REPORT_JSON, REPORT_MD
from sfray.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from sfray.train.evaluation import PRED_DATASET, Evaluation

PREDICTIONS_FILE = "predictions.npz"
FIGURE_FILE = "predictions.png"


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and np.ndim(value) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_predictions(output_dir: Path, dataset: str, evaluation: Evaluation) -> Path:
    """``predictions.npz`` (compressed arrays + the dataset string), atomically."""
    if evaluation.predictions is None:
        raise ValueError("evaluation ran without collect=True")
    arrays = dict(evaluation.predictions)
    buf = io.BytesIO()
    np.savez_compressed(buf, **{PRED_DATASET: np.array(dataset)}, **arrays)
    return atomic_write_bytes(output_dir / PREDICTIONS_FILE, buf.getvalue())


def write_report(output_dir: Path, report: dict[str, Any]) -> Path:
    atomic_write_text(output_dir / REPORT_JSON, json.dumps(_clean(report), indent=2, sort_keys=False) + "\n")
    atomic_write_text(output_dir / REPORT_MD, report_markdown(report))
    return output_dir / REPORT_JSON


def _fmt(v: Any, digits: int = 4) -> str:
    return (
        "-"
        if v is None or (isinstance(v, float) and not math.isfinite(v))
        else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))
    )


def report_markdown(report: dict[str, Any]) -> str:
    val = report.get("val", {})
    lines = [
        f"# Stage I report: {report.get('output_dir', '')}",
        "",
        f"Model `{report.get('model_size')}`, input {report.get('input_size')}², "
        f"{report.get('steps')} steps, {report.get('epochs')} epochs, data `{report.get('dataset')}`.",
        "",
        "## Held-out split",
        "",
        "| figure | model | baseline |",
        "|---|---|---|",
        f"| NME (inter-ocular) | {_fmt(val.get('nme'))} | "
        f"{_fmt(val.get('baseline_mean_shape_nme'))} (oracle mean shape) |",
        f"| mean F1, foreground classes | {_fmt(val.get('seg_mean_f1'))} | "
        f"{_fmt(val.get('baseline_majority_map_mean_f1'))} (per-pixel majority map) |",
        f"| depth MAE | {_fmt(val.get('depth_mae'))} | {_fmt(val.get('baseline_constant_depth_mae'))} (constant) |",
        f"| failure rate @0.08 | {_fmt(val.get('fr_0.08'))} | |",
        "",
        "## F1 per class",
        "",
        "| class | F1 |",
        "|---|---|",
    ]
    lines += [f"| {name} | {_fmt(f1)} |" for name, f1 in (val.get("seg_f1") or {}).items()]
    lines += [
        "",
        "## Epochs",
        "",
        "| epoch | step | train loss | img/s | val NME | val mean F1 |",
        "|---|---|---|---|---|---|",
    ]
    for h in report.get("history", []):
        v = h.get("val", {})
        lines.append(
            f"| {h['epoch']} | {h['step']} | {_fmt(h.get('train_loss'))} | {_fmt(h.get('images_per_s'), 1)} "
            f"| {_fmt(v.get('nme'))} | {_fmt(v.get('seg_mean_f1'))} |"
        )
    lines += ["", f"![held-out predictions]({FIGURE_FILE})", ""]
    return "\n".join(lines)


def write_figure(output_dir: Path, evaluation: Evaluation) -> Path | None:
    """One row per sample: truth landmarks, predicted landmarks, truth / predicted segmentation, depth."""
    if not evaluation.figure_rows:
        return None
    from sfray.viz import colorize_depth, contact_sheet, draw_landmarks, overlay_segmentation, to_hwc

    tiles = []
    for row in evaluation.figure_rows:
        img = to_hwc(row["image"])
        tiles += [
            draw_landmarks(img, row["landmarks_gt"]),
            draw_landmarks(img, row["landmarks"]),
            overlay_segmentation(img, row["segmentation_gt"]),
            overlay_segmentation(img, row["segmentation"]),
            colorize_depth(row["depth"], row["mask"]),
        ]
    sheet = contact_sheet(tiles, ncols=5)
    with atomic_path(output_dir / FIGURE_FILE) as tmp:
        sheet.save(tmp, format="PNG")
    return output_dir / FIGURE_FILE
