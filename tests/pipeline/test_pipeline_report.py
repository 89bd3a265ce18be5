"""report.md gathers what the stages left: Stage I held-out figures, Stage II before/after, figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

from PIL import Image

from sfray.pipeline.marker import write_marker
from sfray.pipeline.report import write_report


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path)


def test_report_tables_and_figure_links(tmp_path):
    write_marker(tmp_path, "generate", "h1", 12.5, {"requested": 64, "committed": 63, "dropped": 1}, status="done")
    write_marker(tmp_path, "train", "h2", 80.0, {}, status="done")
    write_marker(tmp_path, "lapa_like", "h3", 5.0, {"written": {"train": 8, "val": 2, "test": 4}}, status="done")
    write_marker(tmp_path, "finetune", "h4", 30.0, {}, status="running")
    _png(tmp_path / "dataset" / "preview.png")
    _png(tmp_path / "stage1" / "predictions.png")
    _png(tmp_path / "stage2" / "before_after.png")
    (tmp_path / "stage1" / "report.json").write_text(json.dumps({
        "model_size": "tiny", "input_size": 96, "steps": 120, "epochs": 4,
        "split": {"train_samples": 56, "val_samples": 8},
        "val": {"nme": 0.0812, "baseline_mean_shape_nme": 0.1203, "seg_mean_f1": 0.61,
                "baseline_majority_map_mean_f1": 0.22, "depth_mae": 0.05, "baseline_constant_depth_mae": 0.2,
                "fr_0.08": 0.5}}))
    # the evaluation report format: one result per method, scores per split and task
    (tmp_path / "stage2" / "report.json").write_text(json.dumps({"title": "Stage II", "extra": {}, "results": [
        {"method": "direct mapping", "benchmark": "lapa", "root": "x",
         "splits": {"test": {"landmarks": {"nme": 0.2, "images": 4, "per_image": [1, 2]},
                             "parsing": {"mean_f1": 0.3}}}},
        {"method": "SB+LF", "benchmark": "lapa", "root": "x",
         "splits": {"test": {"landmarks": {"nme": 0.15, "images": 4}, "parsing": {"mean_f1": 0.45}}}}]}))
    text = write_report(tmp_path).read_text()
    assert "63 samples committed of 64 requested (1 dropped" in text
    assert "| landmark NME (inter-ocular) | 0.0812 | 0.1203 (oracle mean shape) |" in text
    assert "| segmentation mean F1 (foreground classes) | 0.6100 | 0.2200 (per-pixel majority map) |" in text
    assert "trained on 56 samples, scored on the 8 held-out samples" in text
    assert "| figure (split.task.metric) | direct mapping | SB+LF | change |" in text
    assert "| test.landmarks.nme | 0.2000 | 0.1500 | -0.0500 |" in text
    assert "| test.parsing.mean_f1 | 0.3000 | 0.4500 | 0.1500 |" in text
    assert "test.landmarks.images" not in text  # a count, not a figure
    assert "| finetune | running |" in text and "| evaluate | not run |" in text
    assert "train 8, val 2, test 4" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(links) == ["dataset/preview.png", "stage1/predictions.png", "stage2/before_after.png"]
    assert all((tmp_path / link).is_file() for link in links)  # relative to the report: the root can move


def test_report_of_nothing_says_so(tmp_path):
    text = write_report(tmp_path).read_text()
    assert "The generate stage has not run." in text and "No Stage I report yet." in text
    assert "![" not in text


def _two_methods(nme_after: float) -> str:
    return json.dumps({"title": "t", "extra": {}, "results": [
        {"method": "direct mapping (SB)", "splits": {"test": {"landmarks": {"nme": 0.3}, "parsing": {"mean_f1": 0.4}}}},
        {"method": "finetuned (SB+LF)",
         "splits": {"test": {"landmarks": {"nme": nme_after}, "parsing": {"mean_f1": 0.5}}}}]})


def test_an_evaluation_that_agrees_with_stage2_is_one_line_and_a_disagreeing_one_is_flagged(tmp_path):
    for d in ("stage2", "evaluation"):
        (tmp_path / d).mkdir()
    (tmp_path / "stage2" / "report.json").write_text(_two_methods(0.2))
    (tmp_path / "evaluation" / "report.json").write_text(_two_methods(0.2))
    text = write_report(tmp_path).read_text()
    evaluation = text.split("## Evaluation", 1)[1]
    assert "every figure agrees with the Stage II table above (largest difference 0.0e+00)" in evaluation
    assert "| figure" not in evaluation  # no second copy of the table
    (tmp_path / "evaluation" / "report.json").write_text(_two_methods(0.25))
    evaluation = write_report(tmp_path).read_text().split("## Evaluation", 1)[1]
    assert "**the figures differ from the Stage II table above** (largest difference 5.0e-02)" in evaluation
