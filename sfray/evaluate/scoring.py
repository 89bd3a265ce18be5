"""Per-split scoring under the benchmark protocols, for ``sfray score`` and for model evaluation.

:class:`SplitScorer` is the one place where one split's figures are accumulated: NME/FR/AUC for
landmarks, one dataset-level confusion matrix for parsing (per-class F1 and the foreground mean),
and per-image depth errors. It takes predictions already mapped back to the annotation frame
(``CropTransform.points_to_original`` / ``logits_to_original``), in sfray's pixel convention for
points and the benchmark's ids for labels. :func:`score_predictions` feeds it from a PREDICTIONS
directory (:mod:`sfray.evaluate.predictions`); a model evaluation feeds it from network outputs.
Protocol details: docs/evaluation.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sfray.benchmarks.base import TASK_DEPTH, TASK_LANDMARKS, TASK_PARSING, BenchmarkReader
from sfray.benchmarks.schemas import LabelSchema
from sfray.errors import SfrayError
from sfray.evaluate.depth import DepthAccumulator, depth_errors
from sfray.evaluate.landmarks import DEFAULT_FAILURE_THRESHOLD, landmark_summary, nme
from sfray.evaluate.predictions import Predictions
from sfray.evaluate.segmentation import ConfusionMatrix, f1_summary, image_confusion
from sfray.progress import Progress


@dataclass
class SplitScores:
    """The figures of one split; a task is None when it was not scored."""

    split: str
    landmarks: dict[str, Any] | None = None
    parsing: dict[str, Any] | None = None
    depth: dict[str, Any] | None = None
    skipped: dict[str, list[str]] = field(default_factory=dict)  # task -> keys without ground truth

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in (TASK_LANDMARKS, TASK_PARSING, TASK_DEPTH):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out["skipped"] = {k: list(v) for k, v in self.skipped.items()}
        return out


class SplitScorer:
    """Accumulates one split (see the module docstring). ``norm``: ``inter_ocular`` | ``inter_pupil``."""

    def __init__(self, split: str, *, schema: LabelSchema | None = None, corners: tuple[int, int] | None = None,
                 norm: str = "inter_ocular", threshold: float = DEFAULT_FAILURE_THRESHOLD,
                 metric_depth: bool = False):
        self.split, self.schema, self.corners = split, schema, corners
        self.norm, self.threshold = norm, threshold
        self._nme: list[float] = []
        self._cm = ConfusionMatrix(schema.num_classes, schema.ignore_id) if schema is not None else None
        self._depth = DepthAccumulator(metric=metric_depth)
        self._seen: set[str] = set()
        self._n_parsing = 0
        self.skipped: dict[str, list[str]] = {}

    @classmethod
    def for_reader(cls, reader: BenchmarkReader, split: str, **kwargs: Any) -> SplitScorer:
        return cls(split, schema=reader.schema, corners=reader.nme_corners, **kwargs)

    # ---- feed ---------------------------------------------------------------------------------
    def landmark_error(self, key: str, pred: np.ndarray, gt: np.ndarray) -> float:
        """Per-image NME of ``pred`` vs ``gt`` (both (K, 2), same frame); not accumulated."""
        try:
            return float(nme(np.asarray(pred)[None], np.asarray(gt)[None], norm=self.norm, corners=self.corners)[0])
        except SfrayError as exc:
            raise SfrayError(f"{key}: {exc}") from exc

    def add_landmarks(self, key: str, pred: np.ndarray, gt: np.ndarray) -> float:
        e = self.landmark_error(key, pred, gt)
        self.add_landmark_error(key, e)
        return e

    def add_landmark_error(self, key: str, error: float) -> None:
        self._nme.append(float(error))
        self._seen.add(TASK_LANDMARKS)

    def add_labels(self, key: str, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
        """Add one label map pair (same shape, benchmark ids); returns its confusion counts."""
        if self.schema is None:
            raise SfrayError(f"{key}: this benchmark has no label schema to score parsing against")
        m = image_confusion(pred, gt, self.schema.num_classes, self.schema.ignore_id)
        self.add_confusion(key, m)
        return m

    def add_confusion(self, key: str, matrix: np.ndarray) -> None:
        assert self._cm is not None
        self._cm.add_matrix(matrix)
        self._n_parsing += 1
        self._seen.add(TASK_PARSING)

    def add_depth(self, key: str, pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> dict[str, float]:
        errs = depth_errors(pred, gt, mask, metric=self._depth.metric)
        self.add_depth_errors(key, errs)
        return errs

    def add_depth_errors(self, key: str, errors: dict[str, float]) -> None:
        self._depth.add(errors)
        self._seen.add(TASK_DEPTH)

    def skip(self, task: str, key: str) -> None:
        """Record an image without usable ground truth for ``task``."""
        self.skipped.setdefault(task, []).append(key)

    # ---- result --------------------------------------------------------------------------------
    def result(self) -> SplitScores:
        out = SplitScores(self.split, skipped={k: sorted(v) for k, v in self.skipped.items()})
        if TASK_LANDMARKS in self._seen:
            out.landmarks = {**landmark_summary(self._nme, self.threshold), "norm": self.norm}
        if TASK_PARSING in self._seen and self._cm is not None and self.schema is not None:
            out.parsing = {"images": self._n_parsing,
                           **f1_summary(self._cm, self.schema.classes, self.schema.background_id)}
        if TASK_DEPTH in self._seen:
            out.depth = self._depth.summary()
        return out


@dataclass
class ScoreReport:
    """``sfray score``'s result: the figures of every scored split."""

    benchmark: str
    root: str
    splits: dict[str, SplitScores]

    def as_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "root": self.root,
                "splits": {name: s.as_dict() for name, s in self.splits.items()}}


def _tasks(reader: BenchmarkReader, preds: Predictions, tasks: tuple[str, ...] | None) -> list[str]:
    offered = {TASK_LANDMARKS: preds.has_landmarks, TASK_PARSING: preds.has_parsing, TASK_DEPTH: preds.has_depth}
    chosen = [t for t in (tasks or offered) if offered[t]]
    for t in chosen:
        if t not in reader.tasks:
            raise SfrayError(f"{preds.root}: holds {t} predictions but {reader.name} has no {t} ground truth "
                             f"(it scores: {', '.join(reader.tasks)})")
    if not chosen:
        raise SfrayError(f"{preds.root}: no predictions found (expected landmarks.json, parsing/ or depth/)")
    return chosen


def _present(preds: Predictions, task: str, key: str) -> bool:
    if task == TASK_LANDMARKS:
        return preds.has_landmarks_for(key)
    if task == TASK_PARSING:
        return preds.parsing_path(key) is not None
    return preds.depth_path(key) is not None


_WHERE = {TASK_LANDMARKS: "landmarks.json", TASK_PARSING: "parsing/<key>.png", TASK_DEPTH: "depth/<key>.npy"}


def score_predictions(reader: BenchmarkReader, predictions: str | Predictions, splits: list[str] | None = None,
                      *, tasks: tuple[str, ...] | None = None, norm: str = "inter_ocular",
                      threshold: float = DEFAULT_FAILURE_THRESHOLD, progress: bool = False) -> ScoreReport:
    """Score a PREDICTIONS directory against ``reader``'s ground truth, split by split.

    Images without usable ground truth for a task are skipped and listed; an image with ground
    truth but no prediction is an error that names the missing predictions. Each image is read
    once even when it belongs to several splits (300W's ``full``).
    """
    preds = predictions if isinstance(predictions, Predictions) else Predictions(predictions)
    chosen = _tasks(reader, preds, tasks)
    names = list(splits or reader.eval_splits)
    per_split = {s: reader.entries(s) for s in names}
    missing = sorted({(t, e.key) for es in per_split.values() for e in es for t in chosen
                      if t in e.usable and not _present(preds, t, e.key)})
    if missing:
        shown = "; ".join(f"{k} ({_WHERE[t]})" for t, k in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise SfrayError(f"{preds.root}: {len(missing)} prediction(s) missing for images with ground truth: "
                         f"{shown}{more}")
    todo = {e.key: e for es in per_split.values() for e in es if any(t in e.usable for t in chosen)}
    cache: dict[str, dict[str, Any]] = {}
    scorer0 = SplitScorer.for_reader(reader, "-", norm=norm, threshold=threshold)
    bar = Progress(len(todo), f"scoring {reader.name}") if progress and todo else None
    for i, (key, entry) in enumerate(todo.items(), 1):
        sample = reader.load(entry, image=False)
        got: dict[str, Any] = {}
        if TASK_LANDMARKS in chosen and sample.landmarks is not None:
            pred = reader.to_sfray_points(preds.landmarks(key, len(sample.landmarks)))
            got[TASK_LANDMARKS] = scorer0.landmark_error(key, pred, sample.landmarks)
        if TASK_PARSING in chosen and sample.labels is not None and reader.schema is not None:
            pred = preds.parsing(key, sample.size, reader.schema.num_classes, image_size=sample.disk_size)
            got[TASK_PARSING] = image_confusion(pred, sample.labels, reader.schema.num_classes, reader.schema.ignore_id)
        if TASK_DEPTH in chosen and sample.depth is not None:
            got[TASK_DEPTH] = depth_errors(preds.depth(key, sample.size), sample.depth, sample.depth_mask)
        cache[key] = got
        if bar is not None:
            bar.update(i)
    if bar is not None:
        bar.close()
    report = ScoreReport(reader.name, str(reader.root), {})
    for split, entries in per_split.items():
        scorer = SplitScorer.for_reader(reader, split, norm=norm, threshold=threshold)
        for e in entries:
            got = cache.get(e.key, {})
            for t in chosen:
                if t not in got:
                    scorer.skip(t, e.key)
            if TASK_LANDMARKS in got:
                scorer.add_landmark_error(e.key, got[TASK_LANDMARKS])
            if TASK_PARSING in got:
                scorer.add_confusion(e.key, got[TASK_PARSING])
            if TASK_DEPTH in got:
                scorer.add_depth_errors(e.key, got[TASK_DEPTH])
        report.splits[split] = scorer.result()
    return report
