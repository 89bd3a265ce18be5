"""The reader interface every benchmark implements, and the scan that validates a download.

A reader does two things. ``_index`` walks the documented layout and pairs files into
:class:`Entry` objects (one per image) without decoding anything, noting files that have no
partner. ``_validate`` then checks one entry's files (decodes the image, parses the landmarks,
range-checks the labels, compares sizes) and records which tasks have usable ground truth. The
scan runs the validation on a thread pool (decoding releases the GIL) and returns a
:class:`~sfray.benchmarks.problems.ScanReport`; nothing raises for a bad file.

Samples come back in the *annotation frame*: the pixel grid the labels were drawn on (the image on
disk, except CelebAMask-HQ whose 1024² images are annotated at 512²), with landmarks in sfray's
pixel convention ((0, 0) = top-left corner of the top-left pixel). ``landmark_offset`` converts a
benchmark's file coordinates: ``sfray = file + landmark_offset`` (docs/benchmarks-data.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from sfray.benchmarks.files import FileProblem, image_size, read_rgb, relative
from sfray.benchmarks.problems import Problem, ProblemKind, ScanReport, SplitCounts
from sfray.benchmarks.schemas import LabelSchema
from sfray.conventions import BENCHMARK_TASKS, TASK_DEPTH, TASK_LANDMARKS, TASK_PARSING
from sfray.errors import AssetError
from sfray.progress import Progress

TASKS = BENCHMARK_TASKS
#: Scans of fewer entries print no progress line.
PROGRESS_MIN = 500
#: Validation levels: ``full`` decodes every file; ``quick`` reads image headers and text only.
CHECK_LEVELS = ("full", "quick")


@dataclass
class Entry:
    """One image of a benchmark and the files that annotate it (paths absolute)."""

    key: str  # image path relative to the root, '/' separators, as on disk
    image: Path
    splits: tuple[str, ...]
    landmarks: Path | None = None
    labels: Any = None  # a label PNG path, or {class id: mask path} (CelebAMask-HQ)
    depth: Path | None = None
    usable: set[str] = field(default_factory=set)  # tasks whose ground truth passed validation


@dataclass
class BenchmarkSample:
    """One image with its ground truth, in the annotation frame (see the module docstring)."""

    key: str
    size: tuple[int, int]  # (width, height) of the annotation frame
    image: np.ndarray | None = None  # (H, W, 3) uint8; None when loaded with image=False
    landmarks: np.ndarray | None = None  # (K, 2) float64, sfray pixel convention
    labels: np.ndarray | None = None  # (H, W) int64, the benchmark's own ids
    depth: np.ndarray | None = None  # (H, W) float32, the benchmark's own (relative) units
    depth_mask: np.ndarray | None = None  # (H, W) bool, pixels with depth ground truth
    disk_size: tuple[int, int] = (0, 0)  # (width, height) of the image file


class BenchmarkReader:
    """Base class: subclasses set the class attributes and implement ``_index`` and the readers."""

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    eval_splits: ClassVar[tuple[str, ...]]
    tasks: ClassVar[tuple[str, ...]]
    schema: ClassVar[LabelSchema | None] = None
    num_landmarks: ClassVar[int | None] = None
    nme_corners: ClassVar[tuple[int, int] | None] = None
    landmark_offset: ClassVar[float] = 0.0
    landmark_frame: ClassVar[str] = ""
    #: Resize the image to the label map's size on load (labels drawn on a smaller grid).
    resize_image_to_labels: ClassVar[bool] = False

    def __init__(self, root: str | os.PathLike, *, check: str = "full", workers: int | None = None,
                 progress: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise AssetError(f"{self.root}: not a directory; pass the {self.name} root folder "
                             "(docs/benchmarks-data.md)")
        if check not in CHECK_LEVELS:
            raise ValueError(f"check must be one of {CHECK_LEVELS}, got '{check}'")
        self.check = check
        self.workers = workers or min(8, os.cpu_count() or 1)
        self.progress = progress
        self._entries: list[Entry] | None = None
        self._report: ScanReport | None = None

    # ---- subclass hooks ---------------------------------------------------------------
    def _index(self) -> tuple[list[Entry], list[Problem], list[str]]:
        """Pair the files of the layout into entries; problems and notes found on the way."""
        raise NotImplementedError

    def _read_landmarks(self, path: Path) -> np.ndarray:
        """(K, 2) float64 points in the file's own coordinates (raises FileProblem)."""
        raise NotImplementedError

    def _read_labels(self, entry: Entry) -> np.ndarray:
        """(H, W) int64 ids (raises FileProblem with the offending file in ``detail``)."""
        raise NotImplementedError

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        """(H, W) float32 depth and (H, W) bool mask of pixels with depth."""
        raise NotImplementedError

    # ---- scan ----------------------------------------------------------------------------
    def scan(self) -> ScanReport:
        """Index and validate the whole root once (cached); see the module docstring."""
        if self._report is not None:
            return self._report
        entries, problems, notes = self._index()
        bar = Progress(len(entries), f"checking {self.name}") if self.progress and len(entries) > PROGRESS_MIN else None
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for i, found in enumerate(pool.map(self._validate, entries), 1):
                problems.extend(found)
                if bar is not None:
                    bar.update(i)
        if bar is not None:
            bar.close()
        self._entries = entries
        self._report = ScanReport(
            benchmark=self.name, root=str(self.root), splits=self._split_counts(entries), problems=problems,
            schema=self.schema.as_dict() if self.schema is not None else None,
            landmarks=({"count": self.num_landmarks, "frame": self.landmark_frame}
                       if self.num_landmarks else None),
            notes=notes)
        return self._report

    def _split_counts(self, entries: list[Entry]) -> dict[str, SplitCounts]:
        names = list(self.splits) + sorted({s for e in entries for s in e.splits} - set(self.splits))
        counts = {s: SplitCounts(0, {t: 0 for t in self.tasks}) for s in names}
        for e in entries:
            for s in e.splits:
                counts[s].images += 1
                for t in e.usable:
                    counts[s].usable[t] += 1
        return counts

    def _problem(self, path: Path, exc: FileProblem) -> Problem:
        return Problem(relative(exc.path or path, self.root), exc.kind, exc.detail)

    def _validate(self, entry: Entry) -> list[Problem]:
        """Check one entry's files; fill ``entry.usable``; return its problems."""
        found: list[Problem] = []
        try:
            if self.check == "full":
                h, w = read_rgb(entry.image).shape[:2]
            else:
                w, h = image_size(entry.image)
        except FileProblem as exc:
            return [self._problem(entry.image, exc)]
        if TASK_LANDMARKS in self.tasks and entry.landmarks is not None:
            try:
                self._read_landmarks(entry.landmarks)
                entry.usable.add(TASK_LANDMARKS)
            except FileProblem as exc:
                found.append(self._problem(entry.landmarks, exc))
        if TASK_PARSING in self.tasks and entry.labels is not None:
            try:
                labels = self._read_labels(entry)
                self._check_size(labels.shape, (h, w), "label map")
                entry.usable.add(TASK_PARSING)
            except FileProblem as exc:
                found.append(self._problem(entry.labels if isinstance(entry.labels, Path) else entry.image, exc))
        if TASK_DEPTH in self.tasks and entry.depth is not None:
            try:
                depth, _ = self._read_depth(entry)
                self._check_size(depth.shape, (h, w), "depth map")
                entry.usable.add(TASK_DEPTH)
            except FileProblem as exc:
                found.append(self._problem(entry.depth, exc))
        return found

    def _check_size(self, shape: tuple[int, ...], image_hw: tuple[int, int], what: str) -> None:
        if self.resize_image_to_labels or tuple(shape[:2]) == tuple(image_hw):
            return
        raise FileProblem(ProblemKind.SIZE_MISMATCH,
                          f"{what} is {shape[1]}x{shape[0]}, its image {image_hw[1]}x{image_hw[0]}")

    # ---- access ----------------------------------------------------------------------------
    def entries(self, split: str | None = None, task: str | None = None) -> list[Entry]:
        """Entries of ``split`` (all if None) with usable ground truth for ``task`` (any if None)."""
        self.scan()
        assert self._entries is not None
        if split is not None and split not in self._report.splits:  # type: ignore[union-attr]
            raise AssetError(f"{self.name}: unknown split '{split}' (valid: {' | '.join(self._report.splits)})")
        return [e for e in self._entries
                if (split is None or split in e.splits) and (task is None or task in e.usable)]

    def load(self, entry: Entry, *, image: bool = True) -> BenchmarkSample:
        """Decode ``entry`` (only its validated ground truth; the image unless ``image=False``).

        A file that fails to decode here (possible after a ``quick`` scan) raises AssetError.
        """
        try:
            pixels = read_rgb(entry.image) if image else None
            disk = (pixels.shape[1], pixels.shape[0]) if pixels is not None else image_size(entry.image)
            sample = BenchmarkSample(entry.key, disk, pixels, disk_size=disk)
            if TASK_LANDMARKS in entry.usable:
                sample.landmarks = self._read_landmarks(entry.landmarks) + self.landmark_offset
            if TASK_PARSING in entry.usable:
                sample.labels = self._read_labels(entry)
                sample.size = (sample.labels.shape[1], sample.labels.shape[0])
            if TASK_DEPTH in entry.usable:
                sample.depth, sample.depth_mask = self._read_depth(entry)
        except FileProblem as exc:
            raise AssetError(f"{self.root / entry.key}: {exc.kind} ({exc.detail}); "
                             f"run `sfray benchmark inspect {self.name} {self.root}`") from exc
        if pixels is not None and sample.size != disk:
            sample.image = np.asarray(Image.fromarray(pixels).resize(sample.size, Image.BILINEAR))
        return sample

    def samples(self, split: str | None = None, task: str | None = None) -> Iterator[BenchmarkSample]:
        for entry in self.entries(split, task):
            yield self.load(entry)

    def to_sfray_points(self, file_points: np.ndarray) -> np.ndarray:
        """Points in the benchmark's file convention -> sfray pixel convention."""
        return np.asarray(file_points, dtype=np.float64) + self.landmark_offset

    def to_file_points(self, points: np.ndarray) -> np.ndarray:
        """sfray pixel convention -> the benchmark's file convention (what its files hold)."""
        return np.asarray(points, dtype=np.float64) - self.landmark_offset

    def crop(self, sample: BenchmarkSample, size: int):
        """The protocol's face crop of ``sample`` to a ``size``² model input (a CropTransform)."""
        raise NotImplementedError
