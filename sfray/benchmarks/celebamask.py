"""CelebAMask-HQ: 30,000 images, per-class binary masks merged into one label map.

Layout under ROOT (names matched case-insensitively)::

    CelebA-HQ-img/<k>.jpg                                  1024² (k = 0..29999)
    CelebAMask-HQ-mask-anno/<k // 2000>/<k:05d>_<class>.png 512² binary masks (any sub-folder works)
    CelebA-HQ-to-CelebA-mapping.txt                        idx, orig_idx, orig_file (a header line)
    list_eval_partition.txt  (optional, from CelebA; also looked for in Eval/)

The label map starts as background and the masks are painted in the official order
(``schemas.CELEBAMASK_MASK_ORDER``, ids 1..18), so a later class wins an overlap; a mask pixel is
foreground when any colour channel is non-zero. An image with no mask at all has no ground truth;
a missing mask for one class just means the class is absent. The split follows CelebA's original
index: ``list_eval_partition.txt`` (0 train, 1 val, 2 test) by ``orig_file`` when present, else the
dataset's own rule on ``orig_idx`` (val from 162771, test from 182638). The annotation frame is
the masks' 512² grid: images are resized to it on load.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from sfray.benchmarks.base import TASK_PARSING, BenchmarkReader, BenchmarkSample, Entry
from sfray.benchmarks.catalog import BENCHMARKS
from sfray.benchmarks.crop import CropTransform, whole_image_crop
from sfray.benchmarks.files import (
    IMAGE_SUFFIXES,
    FileProblem,
    child,
    files_by_stem,
    read_mask,
    read_text,
    relative,
)
from sfray.benchmarks.problems import Problem, ProblemKind
from sfray.benchmarks.schemas import CELEBAMASK_MASK_ORDER, CELEBAMASK_SCHEMA
from sfray.errors import AssetError

IMAGES_DIR = "CelebA-HQ-img"
MASK_DIRS = ("CelebAMask-HQ-mask-anno", "CelebAMaskHQ-mask-anno")
MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"
PARTITION_FILE = "list_eval_partition.txt"
#: The dataset's own split rule on CelebA's 0-based ``orig_idx`` (its g_partition script).
VAL_FROM, TEST_FROM = 162771, 182638
PARTITION_SPLITS = {0: "train", 1: "val", 2: "test"}
UNSPLIT = "unsplit"
_MASK_RX = re.compile(r"(\d+)_(" + "|".join(re.escape(c) for c in CELEBAMASK_MASK_ORDER) + r")\.png", re.IGNORECASE)
_CLASS_ID = {name: i + 1 for i, name in enumerate(CELEBAMASK_MASK_ORDER)}


def parse_mapping(text: str) -> dict[int, tuple[int, str]]:
    """``CelebA-HQ-to-CelebA-mapping.txt`` -> {idx: (orig_idx, orig_file)}; the header is skipped."""
    out: dict[int, tuple[int, str]] = {}
    for n, line in enumerate(text.split("\n"), 1):
        tok = line.split()
        if not tok:
            continue
        if len(tok) < 3 or not tok[0].isdigit() or not tok[1].isdigit():
            if out or n > 1:
                raise FileProblem(ProblemKind.MALFORMED, f"line {n}: expected 'idx orig_idx orig_file'")
            continue  # header
        out[int(tok[0])] = (int(tok[1]), tok[2])
    return out


def parse_partition(text: str) -> dict[str, int]:
    """``list_eval_partition.txt`` -> {file name: 0 | 1 | 2}."""
    out: dict[str, int] = {}
    for n, line in enumerate(text.split("\n"), 1):
        tok = line.split()
        if not tok:
            continue
        if len(tok) != 2 or tok[1] not in ("0", "1", "2"):
            raise FileProblem(ProblemKind.MALFORMED, f"line {n}: expected '<file> 0|1|2'")
        out[tok[0]] = int(tok[1])
    return out


def split_of(orig_idx: int, orig_file: str, partition: dict[str, int] | None) -> str | None:
    if partition is not None:
        part = partition.get(orig_file)
        return PARTITION_SPLITS[part] if part is not None else None
    return "test" if orig_idx >= TEST_FROM else "val" if orig_idx >= VAL_FROM else "train"


@BENCHMARKS.register("celebamask-hq")
class CelebAMaskReader(BenchmarkReader):
    """CelebAMask-HQ reader: parsing with 19 classes (see the module docstring)."""

    name = "celebamask-hq"
    splits = ("train", "val", "test")
    eval_splits = ("test",)
    tasks = (TASK_PARSING,)
    schema = CELEBAMASK_SCHEMA
    resize_image_to_labels = True

    def _masks(self) -> tuple[dict[int, dict[int, Path]], Path | None]:
        folder = next((f for f in (child(self.root, d) for d in MASK_DIRS) if f is not None and f.is_dir()), None)
        masks: dict[int, dict[int, Path]] = {}
        if folder is None:
            return masks, None
        for dirpath, _, names in os.walk(folder):
            for name in names:
                m = _MASK_RX.fullmatch(name)
                if m:
                    masks.setdefault(int(m.group(1)), {})[_CLASS_ID[m.group(2).lower()]] = Path(dirpath) / name
        return masks, folder

    def _splits(self, problems: list[Problem], notes: list[str]) -> dict[int, tuple[int, str]] | None:
        mapping_path = child(self.root, MAPPING_FILE)
        if mapping_path is None:
            problems.append(Problem(MAPPING_FILE, ProblemKind.MISSING_FILE,
                                    f"no split without it: images go to '{UNSPLIT}'"))
            return None
        try:
            return parse_mapping(read_text(mapping_path))
        except FileProblem as exc:
            problems.append(Problem(relative(mapping_path, self.root), exc.kind, exc.detail))
            return None

    def _partition(self, problems: list[Problem], notes: list[str]) -> dict[str, int] | None:
        path = child(self.root, PARTITION_FILE) or child(child(self.root, "Eval") or self.root, PARTITION_FILE)
        if path is None:
            notes.append(f"no {PARTITION_FILE}: split by orig_idx (val >= {VAL_FROM}, test >= {TEST_FROM})")
            return None
        try:
            return parse_partition(read_text(path))
        except FileProblem as exc:
            problems.append(Problem(relative(path, self.root), exc.kind, exc.detail))
            return None

    def _index(self) -> tuple[list[Entry], list[Problem], list[str]]:
        problems: list[Problem] = []
        notes: list[str] = []
        img_dir = child(self.root, IMAGES_DIR)
        if img_dir is None or not img_dir.is_dir():
            raise AssetError(f"{self.root}: no {IMAGES_DIR}/ folder; pass the CelebAMask-HQ root")
        images = {int(s): p for s, p in files_by_stem(img_dir, IMAGE_SUFFIXES).items() if s.isdigit()}
        masks, mask_dir = self._masks()
        if mask_dir is None:
            problems.append(Problem(MASK_DIRS[0], ProblemKind.MISSING_FILE, "no mask folder: no ground truth"))
        mapping = self._splits(problems, notes)
        partition = self._partition(problems, notes) if mapping is not None else None
        entries: list[Entry] = []
        for idx in sorted(images):
            paths = images[idx]
            key = relative(paths[0], self.root)
            if mapping is None:
                split = UNSPLIT
            elif idx not in mapping:
                problems.append(Problem(key, ProblemKind.NO_SPLIT, f"index {idx} not in {MAPPING_FILE}"))
                continue
            else:
                split = split_of(*mapping[idx], partition)
                if split is None:
                    problems.append(Problem(key, ProblemKind.NO_SPLIT, f"{mapping[idx][1]} not in {PARTITION_FILE}"))
                    continue
            labels = masks.get(idx)
            if labels is None and mask_dir is not None:
                problems.append(Problem(key, ProblemKind.MISSING_LABELS, f"no {idx:05d}_<class>.png mask"))
            entries.append(Entry(key, paths[0], (split,), labels=dict(sorted(labels.items())) if labels else None))
        for idx in sorted(set(masks) - set(images)):
            first = next(iter(sorted(masks[idx].values())))
            problems.append(Problem(relative(first, self.root), ProblemKind.MISSING_IMAGE,
                                    f"no {IMAGES_DIR}/{idx}.jpg"))
        return entries, problems, notes

    def _read_labels(self, entry: Entry) -> np.ndarray:
        labels: np.ndarray | None = None
        for class_id, path in entry.labels.items():  # ascending id = the official paint order
            try:
                mask = read_mask(path)
            except FileProblem as exc:
                raise FileProblem(exc.kind, exc.detail, path) from exc
            if labels is None:
                labels = np.zeros(mask.shape, dtype=np.int64)
            elif mask.shape != labels.shape:
                raise FileProblem(ProblemKind.SIZE_MISMATCH,
                                  f"mask is {mask.shape[1]}x{mask.shape[0]}, "
                                  f"others {labels.shape[1]}x{labels.shape[0]}",
                                  path)
            labels[mask] = class_id
        assert labels is not None
        return labels

    def crop(self, sample: BenchmarkSample, size: int) -> CropTransform:
        return whole_image_crop(sample.size, size)
