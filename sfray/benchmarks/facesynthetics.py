"""FaceSynthetics (Microsoft) as a benchmark: parsing (19 classes, 255 ignored) and 68 landmarks.

Layout: ``ROOT/{idx:06d}.png``, ``{idx:06d}_seg.png``, ``{idx:06d}_ldmks.txt`` (70 rows: iBUG 68,
then the two pupils). File names and the landmark format are shared with the importer
(:mod:`sfray.data.facesynthetics`). The dataset ships no split: everything is ``all``. Landmarks
are taken as written (the README states no pixel convention), as the importer takes them; only
the iBUG 68 are scored.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sfray.benchmarks.base import TASK_LANDMARKS, TASK_PARSING, BenchmarkReader, BenchmarkSample, Entry
from sfray.benchmarks.catalog import BENCHMARKS
from sfray.benchmarks.crop import CropTransform, whole_image_crop
from sfray.benchmarks.files import FileProblem, read_label_map, read_text, relative
from sfray.benchmarks.problems import Problem, ProblemKind
from sfray.benchmarks.schemas import FACESYNTHETICS_SCHEMA
from sfray.conventions import NUM_LANDMARKS, OUTER_EYE_CORNERS
from sfray.data.facesynthetics import (
    FS_IMAGE_PATTERN,
    FS_LDMKS_SUFFIX,
    FS_SEG_SUFFIX,
    LandmarkFormatError,
    parse_fs_landmarks,
)
from sfray.errors import AssetError

ALL_SPLIT = "all"


@BENCHMARKS.register("facesynthetics")
class FaceSyntheticsReader(BenchmarkReader):
    """FaceSynthetics reader (see the module docstring)."""

    name = "facesynthetics"
    splits = (ALL_SPLIT,)
    eval_splits = (ALL_SPLIT,)
    tasks = (TASK_PARSING, TASK_LANDMARKS)
    schema = FACESYNTHETICS_SCHEMA
    num_landmarks = NUM_LANDMARKS
    nme_corners = OUTER_EYE_CORNERS
    landmark_offset = 0.0
    landmark_frame = "_ldmks.txt rows 0-67 as written (no stated convention); pupils not scored"

    def _index(self) -> tuple[list[Entry], list[Problem], list[str]]:
        rx_img = re.compile(FS_IMAGE_PATTERN, re.IGNORECASE)
        suffixes = re.escape(FS_SEG_SUFFIX) + "|" + re.escape(FS_LDMKS_SUFFIX)
        rx_any = re.compile(r"(\d+)(" + suffixes + ")", re.IGNORECASE)
        images: dict[str, Path] = {}
        seg: dict[str, Path] = {}
        ldmks: dict[str, Path] = {}
        for p in sorted(self.root.iterdir()):
            if not p.is_file():
                continue
            if m := rx_any.fullmatch(p.name):
                (seg if m.group(2).lower() == FS_SEG_SUFFIX else ldmks)[m.group(1)] = p
            elif m := rx_img.fullmatch(p.name):
                images[m.group(1)] = p
        if not images and not seg:
            raise AssetError(f"{self.root}: no FaceSynthetics files ({{idx:06d}}.png, _seg.png, _ldmks.txt)")
        entries: list[Entry] = []
        problems: list[Problem] = []
        for stem, path in sorted(images.items()):
            key = relative(path, self.root)
            if stem not in seg:
                problems.append(Problem(key, ProblemKind.MISSING_LABELS, f"no {stem}{FS_SEG_SUFFIX}"))
            if stem not in ldmks:
                problems.append(Problem(key, ProblemKind.MISSING_LANDMARKS, f"no {stem}{FS_LDMKS_SUFFIX}"))
            entries.append(Entry(key, path, (ALL_SPLIT,), landmarks=ldmks.get(stem), labels=seg.get(stem)))
        for stem in sorted((set(seg) | set(ldmks)) - set(images)):
            path = seg.get(stem) or ldmks[stem]
            problems.append(Problem(relative(path, self.root), ProblemKind.MISSING_IMAGE, f"no {stem}.png"))
        return entries, problems, []

    def _read_landmarks(self, path: Path) -> np.ndarray:
        try:
            return parse_fs_landmarks(read_text(path))[:NUM_LANDMARKS]
        except LandmarkFormatError as exc:
            kind = ProblemKind.WRONG_POINT_COUNT if exc.count else ProblemKind.MALFORMED
            raise FileProblem(kind, str(exc)) from exc

    def _read_labels(self, entry: Entry) -> np.ndarray:
        labels = read_label_map(entry.labels)
        schema = FACESYNTHETICS_SCHEMA
        valid = (labels >= 0) & ((labels < schema.num_classes) | (labels == schema.ignore_id))
        if not valid.all():
            bad = np.unique(labels[~valid])
            raise FileProblem(ProblemKind.LABEL_OUT_OF_RANGE, f"ids {bad[:8].tolist()} outside 0..18 and 255")
        return labels

    def crop(self, sample: BenchmarkSample, size: int) -> CropTransform:
        """The renders are already face-centred 512² images: the whole frame."""
        return whole_image_crop(sample.size, size)
