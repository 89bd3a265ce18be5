"""Stage II's two methods on a benchmark: the direct mapping (SB) and the finetuned nets (SB+LF).

Both run the frozen Stage I model on the benchmark's protocol crops. The **direct mapping** turns
its synthetic predictions into the benchmark's terms without any real label: class scores summed
over the synthetic classes each benchmark class merges (``direct_mapping_probabilities``),
the 68 points as they are for a 68-point benchmark and through the LaPa 106-point construction
(``lapa106_from_68``, the one the LaPa-like set's own labels use) for LaPa, depth as predicted
(scored scale-and-shift invariantly). The **finetuned** method feeds Stage I's outputs through the
φ_L nets (``sfray.models.labelnet``). Each method is scored with ``score_model`` and its
predictions are written in ``sfray score``'s directory format (docs/evaluation.md), mapped back
to the annotation frame by the same crop inverses, so rescoring the files gives the same figures.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sfray.benchmarks.base import TASK_DEPTH, TASK_LANDMARKS, TASK_PARSING, BenchmarkReader
from sfray.benchmarks.lapa106 import lapa106_from_68
from sfray.benchmarks.schemas import DIRECT_MAPPINGS, NUM_LAPA_LANDMARKS
from sfray.benchmarks.torch_dataset import KEY, crop_from_item
from sfray.conventions import NUM_LANDMARKS, Field
from sfray.evaluate.predictions import DEPTH_DIR, LANDMARKS_FILE, PARSING_DIR, PARSING_SUFFIX
from sfray.evaluate.report import QualitativeRow, qualitative_figure, score_figure_rows
from sfray.evaluate.run import LOGITS, direct_mapping_probabilities, score_model
from sfray.evaluate.scoring import ScoreReport
from sfray.io.atomic import atomic_write_bytes, atomic_write_text

Predict = Callable[[dict[str, Any]], dict[str, Any]]
#: Sub-folder of an evaluation output holding one PREDICTIONS directory per method.
PREDICTIONS_DIR = "predictions"
DIRECT_METHOD = ("direct mapping (SB)", "direct")


def finetuned_method(use_features: bool) -> tuple[str, str]:
    """(table name, folder name) of the finetuned method, in the paper's naming."""
    return ("finetuned (SB+LF w/ f_s)", "finetuned") if use_features else ("finetuned (SB+LF)", "finetuned")


def _image(batch: dict[str, Any], device: torch.device) -> torch.Tensor:
    img = batch[Field.IMAGE].to(device)
    return img.float() / 255.0 if img.dtype == torch.uint8 else img.float()


def direct_predictor(stage1: torch.nn.Module, reader: BenchmarkReader, device: torch.device) -> Predict:
    """Stage I's predictions in the benchmark's terms (see the module docstring)."""
    schema = reader.schema
    seg_ok = schema is not None and schema.name in DIRECT_MAPPINGS
    k = int(reader.num_landmarks or 0)

    @torch.no_grad()
    def predict(batch: dict[str, Any]) -> dict[str, Any]:
        s1 = stage1(_image(batch, device))
        out: dict[str, Any] = {Field.DEPTH: s1[Field.DEPTH].float().cpu()}
        if seg_ok:
            out[LOGITS] = direct_mapping_probabilities(s1[Field.SEGMENTATION], schema).cpu()
        pts = s1[Field.LANDMARKS_2D].float().cpu()
        if k == NUM_LANDMARKS:
            out[Field.LANDMARKS_2D] = pts
        elif k == NUM_LAPA_LANDMARKS:
            seg = s1[Field.SEGMENTATION].argmax(1).cpu().numpy()
            out[Field.LANDMARKS_2D] = torch.from_numpy(np.stack(
                [lapa106_from_68(pts[i].double().numpy(), seg[i]) for i in range(len(pts))])).float()
        return out

    return predict


def finetuned_predictor(stage1: torch.nn.Module, labelnet: torch.nn.Module, device: torch.device) -> Predict:
    """Stage I, then the φ_L nets: benchmark-schema outputs in crop coordinates."""

    @torch.no_grad()
    def predict(batch: dict[str, Any]) -> dict[str, Any]:
        o = labelnet(stage1(_image(batch, device)))
        out: dict[str, Any] = {}
        if Field.SEGMENTATION in o:
            out[LOGITS] = o[Field.SEGMENTATION].float().cpu()
        if Field.LANDMARKS_2D in o:
            out[Field.LANDMARKS_2D] = o[Field.LANDMARKS_2D].float().cpu()
        if Field.DEPTH in o:
            out[Field.DEPTH] = o[Field.DEPTH].float().cpu()
        return out

    return predict


def _with_suffix(key: str, suffix: str) -> str:
    p = Path(key)
    return (p.with_suffix(suffix) if p.suffix else Path(f"{key}{suffix}")).as_posix()


class PredictionWriter:
    """Writes what a predictor returns as a ``sfray score`` PREDICTIONS directory (annotation frame)."""

    def __init__(self, reader: BenchmarkReader, root: str | Path, tasks: Sequence[str]):
        self.reader, self.root, self.tasks = reader, Path(root), tuple(tasks)
        self.landmarks: dict[str, list[list[float]]] = {}

    def wrap(self, predict: Predict) -> Predict:
        def recorded(batch: dict[str, Any]) -> dict[str, Any]:
            out = predict(batch)
            self.add(batch, out)
            return out
        return recorded

    def add(self, batch: dict[str, Any], out: dict[str, Any]) -> None:
        for i, key in enumerate(batch[KEY]):
            crop = crop_from_item(batch, i)
            if TASK_LANDMARKS in self.tasks and Field.LANDMARKS_2D in out:
                pts = crop.points_to_original(out[Field.LANDMARKS_2D][i].double().numpy())
                self.landmarks[key] = self.reader.to_file_points(pts).tolist()
            if TASK_PARSING in self.tasks and LOGITS in out:
                labels = crop.logits_to_original(out[LOGITS][i]).argmax(0).numpy()
                buf = io.BytesIO()
                Image.fromarray(labels.astype(np.uint8), mode="L").save(buf, format="PNG")
                atomic_write_bytes(self.root / PARSING_DIR / _with_suffix(key, PARSING_SUFFIX), buf.getvalue())
            if TASK_DEPTH in self.tasks and Field.DEPTH in out:
                depth, _ = crop.values_to_original(out[Field.DEPTH][i].numpy())
                buf = io.BytesIO()
                np.save(buf, depth.astype(np.float32))
                atomic_write_bytes(self.root / DEPTH_DIR / _with_suffix(key, ".npy"), buf.getvalue())

    def close(self) -> None:
        if self.landmarks:
            atomic_write_text(self.root / LANDMARKS_FILE, json.dumps(self.landmarks))


def evaluate_methods(reader: BenchmarkReader, splits: Sequence[str], methods: Sequence[tuple[str, str, Predict]],
                     out_dir: str | Path, *, size: int, tasks: Sequence[str], batch_size: int = 8,
                     norm: str = "inter_ocular", threshold: float = 0.08, progress: bool = False
                     ) -> tuple[list[tuple[str, ScoreReport]], dict[str, Path]]:
    """Score each (name, folder, predict) on ``splits``; write its predictions under ``out_dir``.

    Returns [(name, ScoreReport)] for ``write_report`` and {folder: predictions directory}.
    """
    results, dirs = [], {}
    for name, folder, predict in methods:
        d = Path(out_dir) / PREDICTIONS_DIR / folder
        if d.exists():
            shutil.rmtree(d)  # an interrupted earlier pass: its files may be stale
        writer = PredictionWriter(reader, d, tasks)
        rep = ScoreReport(reader.name, str(reader.root), {})
        for split in splits:
            rep.splits[split] = score_model(reader, split, writer.wrap(predict), size=size, batch_size=batch_size,
                                            tasks=tuple(tasks), progress=progress, norm=norm, threshold=threshold)
        writer.close()
        results.append((name, rep))
        dirs[folder] = d
    return results, dirs


def before_after_figure(reader: BenchmarkReader, split: str, methods: Sequence[tuple[str, Path]], n: int):
    """The qualitative figure: per image, one row per method (ground truth repeated in each)."""
    per_method = [(name, score_figure_rows(reader, d, split, n)) for name, d in methods]
    rows: list[QualitativeRow] = []
    for i in range(min((len(r) for _, r in per_method), default=0)):
        for name, r in per_method:
            row = r[i]
            row.title = f"{Path(row.title).stem}: {name.split(' (')[0]}"
            rows.append(row)
    return qualitative_figure(rows, reader.schema) if rows else None
