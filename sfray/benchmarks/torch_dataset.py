"""A map-style torch ``Dataset`` over any benchmark reader: model-input crops, labels, inverse.

Each item is one image of a split, cropped by the benchmark's protocol
(:meth:`BenchmarkReader.crop`) to ``size``², with its ground truth warped the same way. Keys follow
``sfray.conventions.Field`` where they mean the same thing, so Stage II code reads benchmark and
synthetic batches alike; the ids are the *benchmark's* own:

* ``Field.IMAGE`` (3, S, S) uint8 (float32 in [0, 1] with ``float_image``);
* ``Field.SEGMENTATION`` (S, S) int64 benchmark ids, :data:`IGNORE_LABEL` outside the image, where
  the benchmark ignores pixels, and everywhere for an image without usable labels;
* ``Field.LANDMARKS_2D`` (K, 2) float32 crop pixels (sfray convention), ``Field.LANDMARKS_VISIBLE``
  (K,) bool: False for every point of an image without usable landmarks (its points are 0);
* ``Field.DEPTH`` (S, S) float32 (relative units of the benchmark) and ``Field.MASK`` (S, S) bool;
* :data:`CROP_MATRIX` (3, 3) float64 annotation frame -> crop, :data:`SOURCE_SIZE` (2,) int64
  (width, height) of the annotation frame, :data:`KEY` the image path relative to the root,
  ``Field.SAMPLE_ID`` the item index.

Predictions go back to the annotation frame with :func:`crop_from_item` and the
``CropTransform`` methods before scoring (:mod:`sfray.evaluate.scoring`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from sfray.benchmarks.base import TASK_DEPTH, TASK_LANDMARKS, TASK_PARSING, BenchmarkReader, Entry
from sfray.benchmarks.crop import CropTransform
from sfray.conventions import IGNORE_LABEL, Field
from sfray.errors import SfrayError

CROP_MATRIX = "crop_matrix"
SOURCE_SIZE = "source_size"
KEY = "key"


class BenchmarkDataset(torch.utils.data.Dataset):
    """Items of ``reader``'s ``split`` with usable ground truth for at least one of ``tasks``."""

    def __init__(self, reader: BenchmarkReader, split: str, *, size: int = 256,
                 tasks: Iterable[str] | None = None, float_image: bool = False,
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        self.reader, self.split, self.size = reader, split, int(size)
        self.tasks = tuple(tasks) if tasks is not None else reader.tasks
        unknown = set(self.tasks) - set(reader.tasks)
        if unknown:
            raise SfrayError(f"{reader.name} has no {', '.join(sorted(unknown))} ground truth "
                             f"(it has: {', '.join(reader.tasks)})")
        self.entries: list[Entry] = [e for e in reader.entries(split) if any(t in e.usable for t in self.tasks)]
        self.float_image = float_image
        self.transform = transform

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, Any]:
        entry = self.entries[index]
        sample = self.reader.load(entry)
        crop = self.reader.crop(sample, self.size)
        image = torch.from_numpy(crop.warp_image(sample.image)).permute(2, 0, 1).contiguous()
        out: dict[str, Any] = {
            Field.IMAGE: image.float() / 255.0 if self.float_image else image,
            CROP_MATRIX: torch.from_numpy(crop.matrix.copy()),
            SOURCE_SIZE: torch.tensor(crop.source_size, dtype=torch.int64),
            KEY: entry.key,
            Field.SAMPLE_ID: torch.tensor(index, dtype=torch.int64),
        }
        s = self.size
        if TASK_PARSING in self.tasks:
            seg = np.full((s, s), IGNORE_LABEL, dtype=np.int64)
            if sample.labels is not None:
                seg = crop.warp_labels(sample.labels, fill=IGNORE_LABEL)
                ignore = self.reader.schema.ignore_id if self.reader.schema is not None else None
                if ignore is not None and ignore != IGNORE_LABEL:
                    seg[seg == ignore] = IGNORE_LABEL
            out[Field.SEGMENTATION] = torch.from_numpy(seg)
        if TASK_LANDMARKS in self.tasks:
            k = int(self.reader.num_landmarks or 0)
            pts, vis = np.zeros((k, 2), dtype=np.float32), np.zeros(k, dtype=bool)
            if sample.landmarks is not None:
                pts, vis = crop.points_to_crop(sample.landmarks).astype(np.float32), np.ones(k, dtype=bool)
            out[Field.LANDMARKS_2D], out[Field.LANDMARKS_VISIBLE] = torch.from_numpy(pts), torch.from_numpy(vis)
        if TASK_DEPTH in self.tasks:
            depth, mask = np.zeros((s, s), dtype=np.float32), np.zeros((s, s), dtype=bool)
            if sample.depth is not None:
                depth, mask = crop.warp_values(sample.depth, sample.depth_mask)
            out[Field.DEPTH], out[Field.MASK] = torch.from_numpy(depth), torch.from_numpy(mask)
        return self.transform(out) if self.transform is not None else out


def crop_from_item(item: dict[str, Any], index: int | None = None) -> CropTransform:
    """The :class:`CropTransform` of an item (or of row ``index`` of a collated batch)."""
    m, src = item[CROP_MATRIX], item[SOURCE_SIZE]
    if index is not None:
        m, src = m[index], src[index]
    size = item[Field.IMAGE].shape[-1]
    return CropTransform(np.asarray(m, dtype=np.float64), (int(size), int(size)), (int(src[0]), int(src[1])))
