"""``report.md`` at the output root: every stage's figures in one page, with links to their files.

It reads only what the stages left behind (their markers, Stage I's report.json, Stage II's and
the evaluation's report.json) and embeds their PNG figures by relative path, so the output root can
be moved or copied as a whole. Missing stages are said as such, never filled in.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sfray.config.pipeline import STAGE_ORDER
from sfray.data.layout import PREVIEW_FILE
from sfray.evaluate.report import REPORT_JSON
from sfray.io.atomic import atomic_write_text
from sfray.pipeline.layout import REPORT_FILE, STAGE_DIRS, stage_dir
from sfray.pipeline.marker import read_marker

#: Stage I's figure of held-out predictions (written by the Stage I report).
STAGE1_FIGURE = "predictions.png"


def _num(v: Any, digits: int = 4) -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else f"{v:.{digits}f}"
    return str(v)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _flat_numbers(d: dict[str, Any], prefix: str = "", depth: int = 2) -> dict[str, float | int]:
    """Numeric leaves of ``d`` (nested dicts up to ``depth``) by dotted key."""
    out: dict[str, float | int] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
        elif isinstance(v, dict) and depth > 1:
            out.update(_flat_numbers(v, f"{key}.", depth - 1))
    return out


def _figures(folder: Path, root: Path) -> list[str]:
    return [f"![{p.stem}]({p.relative_to(root).as_posix()})" for p in sorted(folder.glob("*.png"))]


def _stage_table(root: Path) -> list[str]:
    lines = ["| stage | status | seconds | finished (UTC) | output |", "|---|---|---|---|---|"]
    for name in STAGE_ORDER:
        if name not in STAGE_DIRS:  # the report itself
            continue
        m = read_marker(root, name)
        out = f"[{STAGE_DIRS[name]}/]({STAGE_DIRS[name]}/)"
        if m is None:
            lines.append(f"| {name} | not run | - | - | - |")
        else:
            lines.append(f"| {name} | {m.get('status')} | {_num(m.get('seconds'), 1)} | {m.get('finished_at', '-')} "
                         f"| {out} |")
    return lines


def _dataset_section(root: Path) -> list[str]:
    m = read_marker(root, "generate")
    if m is None:
        return ["## Dataset", "", "The generate stage has not run.", ""]
    s = m.get("summary", {})
    lines = ["## Dataset", "",
             f"`{STAGE_DIRS['generate']}/`: {s.get('committed', '?')} samples committed of {s.get('requested', '?')} "
             f"requested ({s.get('dropped', 0)} dropped by the quality gate).", ""]
    if (stage_dir(root, "generate") / PREVIEW_FILE).is_file():
        lines += [f"![dataset preview]({STAGE_DIRS['generate']}/{PREVIEW_FILE})", ""]
    return lines


def _stage1_section(root: Path) -> list[str]:
    rep = _read_json(stage_dir(root, "train") / REPORT_JSON)
    if rep is None:
        return ["## Stage I (synthetic data)", "", "No Stage I report yet.", ""]
    val, split = rep.get("val", {}) or {}, rep.get("split", {}) or {}
    lines = [
        "## Stage I (synthetic data)", "",
        f"Model `{rep.get('model_size')}` at {rep.get('input_size')}², {rep.get('steps')} steps, "
        f"{rep.get('epochs')} epochs; trained on {split.get('train_samples', '?')} samples, scored on the "
        f"{split.get('val_samples', '?')} held-out samples of the same dataset (never trained on). "
        f"Full report: [{STAGE_DIRS['train']}/report.md]({STAGE_DIRS['train']}/report.md).", "",
        "| held-out figure | model | baseline |", "|---|---|---|",
        f"| landmark NME (inter-ocular) | {_num(val.get('nme'))} | {_num(val.get('baseline_mean_shape_nme'))} "
        "(oracle mean shape) |",
        f"| failure rate @ NME 0.08 | {_num(val.get('fr_0.08'))} | |",
        f"| segmentation mean F1 (foreground classes) | {_num(val.get('seg_mean_f1'))} | "
        f"{_num(val.get('baseline_majority_map_mean_f1'))} (per-pixel majority map) |",
        f"| depth MAE | {_num(val.get('depth_mae'))} | {_num(val.get('baseline_constant_depth_mae'))} (constant) |",
        "",
    ]
    if (stage_dir(root, "train") / STAGE1_FIGURE).is_file():
        lines += ["Held-out samples (landmarks: truth, prediction; segmentation: truth, prediction; depth):",
                  "", f"![Stage I held-out predictions]({STAGE_DIRS['train']}/{STAGE1_FIGURE})", ""]
    return lines


def _lapa_like_section(root: Path) -> list[str]:
    m = read_marker(root, "lapa_like")
    if m is None:
        return []
    written = m.get("summary", {}).get("written", {})
    counts = ", ".join(f"{k} {v}" for k, v in written.items())
    return ["## LaPa-layout set", "",
            f"`{STAGE_DIRS['lapa_like']}/`: renders of sample ids the dataset does not hold, in LaPa's layout "
            f"(images, 11-class label maps, 106 landmarks): {counts}.", ""]


#: Keys of a score that are counts or settings, not figures (the table leaves them out).
NOT_FIGURES = ("images", "pixels", "threshold")


def _methods_table(rep: dict[str, Any]) -> list[str]:
    """One row per figure, one column per method (Stage II's "direct mapping" is the Stage I model
    before fine-tuning, the next method is after); the change when there are exactly two."""
    methods = [r for r in rep.get("results", []) if isinstance(r, dict)]
    names = [str(r.get("method", f"method {i + 1}")) for i, r in enumerate(methods)]
    figures = [_flat_numbers(r.get("splits", {}), depth=3) for r in methods]
    keys = [k for k in figures[0] if all(k in f for f in figures) and k.rsplit(".", 1)[-1] not in NOT_FIGURES
            ] if figures else []
    two = len(methods) == 2
    lines = ["| figure (split.task.metric) | " + " | ".join(names) + (" | change |" if two else " |"),
             "|---" * (len(names) + 1 + two) + "|"]
    for key in keys:
        cells = [_num(f[key]) for f in figures] + ([_num(figures[1][key] - figures[0][key])] if two else [])
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def _before_after(rep: dict[str, Any]) -> list[str]:
    if isinstance(rep.get("results"), list) and rep["results"]:
        return _methods_table(rep)
    numbers = _flat_numbers(rep)
    return ["| figure | value |", "|---|---|", *[f"| {k} | {_num(v)} |" for k, v in numbers.items()]]


def _job_section(root: Path, stage: str, title: str, intro: str) -> list[str]:
    folder = stage_dir(root, stage)
    rep = _read_json(folder / REPORT_JSON)
    if rep is None:
        return [f"## {title}", "", f"No {stage} report yet (the stage has not run).", ""]
    lines = [f"## {title}", "", intro, "", *_before_after(rep), ""]
    if (folder / "report.md").is_file():
        lines += [f"Full report: [{STAGE_DIRS[stage]}/report.md]({STAGE_DIRS[stage]}/report.md).", ""]
    figures = _figures(folder, root)
    return lines + ([*figures, ""] if figures else [])


def _method_figures(rep: dict[str, Any]) -> dict[str, dict[str, float | int]]:
    return {str(r.get("method")): _flat_numbers(r.get("splits", {}), depth=3)
            for r in rep.get("results", []) if isinstance(r, dict)}


#: Largest difference between the evaluation's and Stage II's figures still said to agree (float
#: reassociation between two scoring passes, far below the 4 digits the tables show).
AGREE_TOLERANCE = 1e-6


def _evaluation_section(root: Path) -> list[str]:
    """The evaluate stage rescored the finetuned model from its files. Where it scored the same
    methods and figures as Stage II's own report, one line says whether they agree (a check of the
    saved model and of the scoring path) instead of a second copy of the table."""
    title, folder = "Evaluation", stage_dir(root, "evaluate")
    rep, s2 = _read_json(folder / REPORT_JSON), _read_json(stage_dir(root, "finetune") / REPORT_JSON)
    if rep is None or s2 is None:
        return _job_section(root, "evaluate", title, "The finetuned model scored by `sfray evaluate`.")
    ours, theirs = _method_figures(rep), _method_figures(s2)
    same = set(ours) == set(theirs) and all(ours[m].keys() == theirs[m].keys() for m in ours)
    if not same or not ours:
        return _job_section(root, "evaluate", title, "The finetuned model scored by `sfray evaluate` on the "
                            "benchmark the evaluate config names.")
    diff = max(abs(float(ours[m][k]) - float(theirs[m][k])) for m in ours for k in ours[m])
    verdict = ("every figure agrees with the Stage II table above" if diff <= AGREE_TOLERANCE
               else "**the figures differ from the Stage II table above**")
    return [f"## {title}", "",
            f"`sfray evaluate` reloaded the saved models from disk and scored the same methods on the same "
            f"split again: {verdict} (largest difference {diff:.1e}). Full report: "
            f"[{STAGE_DIRS['evaluate']}/report.md]({STAGE_DIRS['evaluate']}/report.md).", ""]


def report_markdown(root: str | Path) -> str:
    root = Path(root)
    lines = [f"# sfray pipeline report: {root}", "", *_stage_table(root), "",
             *_dataset_section(root), *_stage1_section(root), *_lapa_like_section(root),
             *_job_section(root, "finetune", "Stage II (LaPa-layout set)",
                           "Scored on the LaPa-layout test split: the Stage I model's outputs mapped to the "
                           "benchmark's labels (direct mapping: before fine-tuning) and the fine-tuned label nets "
                           "(after). NME is lower-better, F1 higher-better."),
             *_evaluation_section(root)]
    return "\n".join(lines).rstrip() + "\n"


def write_report(root: str | Path) -> Path:
    """Write OUTPUT_ROOT/report.md atomically; returns its path."""
    path = Path(root) / REPORT_FILE
    atomic_write_text(path, report_markdown(root))
    return path
