"""Run a model over a benchmark split and score it under the protocol (for ``sfray evaluate``).

``predict(batch) -> outputs`` sees a batch of :class:`~sfray.benchmarks.torch_dataset.BenchmarkDataset`
(protocol crops, ``Field`` keys) and returns, in *crop* coordinates, any of:

* ``Field.LANDMARKS_2D`` (B, K, 2) pixels in the benchmark's landmark layout;
* :data:`LOGITS` (B, C, S, S) class scores in the benchmark's ids;
* ``Field.DEPTH`` (B, S, S) depth in any affine units.

Each prediction goes back to the annotation frame through the item's crop (points by the inverse
affine map, logits bilinearly then argmax, depth bilinearly) and into a
:class:`~sfray.evaluate.scoring.SplitScorer` with the sample's own ground truth, so a model is
scored exactly as ``sfray score`` scores files (docs/evaluation.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from sfray.benchmarks.base import TASK_DEPTH, TASK_LANDMARKS, TASK_PARSING, BenchmarkReader
from sfray.benchmarks.schemas import DIRECT_MAPPINGS, LabelSchema
from sfray.benchmarks.torch_dataset import KEY, BenchmarkDataset, crop_from_item
from sfray.conventions import Field
from sfray.evaluate.scoring import SplitScorer, SplitScores
from sfray.models.labelnet import merge_class_probabilities
from sfray.progress import Progress

#: Output key of per-class scores (B, C, S, S) in the benchmark's ids.
LOGITS = "segmentation_logits"


@torch.no_grad()
def score_model(reader: BenchmarkReader, split: str, predict: Callable[[dict[str, Any]], dict[str, Any]], *,
                size: int = 256, batch_size: int = 8, tasks: tuple[str, ...] | None = None,
                float_image: bool = True, progress: bool = False, **scorer_kwargs: Any) -> SplitScores:
    """Score ``predict`` on ``reader``'s ``split`` (see the module docstring)."""
    ds = BenchmarkDataset(reader, split, size=size, tasks=tasks, float_image=float_image)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False)
    scorer = SplitScorer.for_reader(reader, split, **scorer_kwargs)
    entries = {e.key: e for e in ds.entries}
    bar = Progress(len(ds), f"evaluating {reader.name} {split}") if progress and len(ds) else None
    done = 0
    for batch in loader:
        out = predict(batch)
        for i, key in enumerate(batch[KEY]):
            entry = entries[key]
            sample = reader.load(entry, image=False)
            crop = crop_from_item(batch, i)
            if TASK_LANDMARKS in ds.tasks:
                if sample.landmarks is None:
                    scorer.skip(TASK_LANDMARKS, key)
                elif Field.LANDMARKS_2D in out:
                    pts = crop.points_to_original(out[Field.LANDMARKS_2D][i].detach().cpu().double().numpy())
                    scorer.add_landmarks(key, pts, sample.landmarks)
            if TASK_PARSING in ds.tasks:
                if sample.labels is None:
                    scorer.skip(TASK_PARSING, key)
                elif LOGITS in out:
                    labels = crop.logits_to_original(out[LOGITS][i].detach().cpu()).argmax(0).numpy()
                    scorer.add_labels(key, labels, sample.labels)
            if TASK_DEPTH in ds.tasks:
                if sample.depth is None:
                    scorer.skip(TASK_DEPTH, key)
                elif Field.DEPTH in out:
                    depth, inside = crop.values_to_original(out[Field.DEPTH][i].detach().cpu().numpy())
                    scorer.add_depth(key, depth, sample.depth, sample.depth_mask & inside)
        done += len(batch[KEY])
        if bar is not None:
            bar.update(done)
    if bar is not None:
        bar.close()
    return scorer.result()


def direct_mapping_probabilities(synthetic_logits: torch.Tensor, schema: LabelSchema) -> torch.Tensor:
    """(B, 20, H, W) synthetic-class scores -> (B, C, H, W) probabilities in ``schema``'s ids.

    Each target class gets the summed softmax of the synthetic classes the direct mapping sends
    to it (``schemas.DIRECT_MAPPINGS``): the "SB" baseline that Stage II finetuning must beat.
    """
    table = torch.as_tensor(DIRECT_MAPPINGS[schema.name], dtype=torch.int64)
    return merge_class_probabilities(synthetic_logits.float().softmax(dim=1), table, schema.num_classes)


def oracle_predict(batch: dict[str, Any], num_classes: int) -> dict[str, Any]:
    """Predictions equal to the batch's own (cropped) ground truth: a check of the round trip."""
    seg = batch[Field.SEGMENTATION].clone() if Field.SEGMENTATION in batch else None
    out: dict[str, Any] = {}
    if seg is not None:
        seg[seg >= num_classes] = 0
        out[LOGITS] = torch.nn.functional.one_hot(seg, num_classes).permute(0, 3, 1, 2).float()
    if Field.LANDMARKS_2D in batch:
        out[Field.LANDMARKS_2D] = batch[Field.LANDMARKS_2D]
    if Field.DEPTH in batch:
        out[Field.DEPTH] = torch.where(batch[Field.MASK], batch[Field.DEPTH], torch.zeros_like(batch[Field.DEPTH]))
    return out
