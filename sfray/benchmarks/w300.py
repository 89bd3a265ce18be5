"""300W (iBUG): images with same-stem ``.pts`` files, 68 points in Matlab's 1-based convention.

Layout under ROOT (folder names matched case-insensitively)::

    afw/  helen/trainset/  lfpw/trainset/      -> train     (337 + 2000 + 811 = 3148)
    helen/testset/  lfpw/testset/               -> common    (330 + 224 = 554)
    ibug/                                       -> challenge (135)
    common + challenge                          -> full      (689)
    01_Indoor/  02_Outdoor/  (optional)         -> private   (the 300-W competition set, 600)

A ``.pts`` file is ``version: 1``, ``n_points: 68``, ``{``, 68 lines ``x y``, ``}``; the centre of
the top-left pixel is (1, 1), so sfray's convention is ``file - 0.5``. Images may be .jpg or .png
in any case; one iBUG name contains a space (``image_092 _01.jpg``) and is kept as is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfray.benchmarks.base import TASK_LANDMARKS, BenchmarkReader, BenchmarkSample, Entry
from sfray.benchmarks.catalog import BENCHMARKS
from sfray.benchmarks.crop import CropTransform, landmark_box_crop
from sfray.benchmarks.files import (
    IMAGE_SUFFIXES,
    FileProblem,
    child,
    files_by_stem,
    parse_floats,
    read_text,
    relative,
)
from sfray.benchmarks.problems import Problem, ProblemKind
from sfray.conventions import NUM_LANDMARKS, OUTER_EYE_CORNERS
from sfray.errors import AssetError

#: (folder path parts, splits) of the standard subsets.
W300_FOLDERS = (
    (("afw",), ("train",)),
    (("helen", "trainset"), ("train",)),
    (("lfpw", "trainset"), ("train",)),
    (("helen", "testset"), ("common", "full")),
    (("lfpw", "testset"), ("common", "full")),
    (("ibug",), ("challenge", "full")),
    (("01_Indoor",), ("private",)),
    (("02_Outdoor",), ("private",)),
)
PTS_SUFFIX = ".pts"


def parse_pts(text: str, expected: int = NUM_LANDMARKS) -> np.ndarray:
    """Parse ``.pts`` text -> (n, 2) float64 in the file's coordinates (raises FileProblem).

    Blank lines, trailing spaces, CRLF and comment-free extra header lines are tolerated; the
    points are the lines between ``{`` and ``}``; ``n_points`` must match them and ``expected``.
    """
    lines = [ln.strip() for ln in text.split("\n")]
    lines = [ln for ln in lines if ln]
    n_points = None
    for ln in lines:
        if ln.lower().startswith("n_points"):
            try:
                n_points = int(ln.split(":", 1)[1].strip())
            except (IndexError, ValueError) as exc:
                raise FileProblem(ProblemKind.MALFORMED, f"bad header line '{ln}'") from exc
    try:
        start = lines.index("{")
    except ValueError as exc:
        raise FileProblem(ProblemKind.MALFORMED, "no '{' line before the points") from exc
    end = next((i for i in range(start + 1, len(lines)) if lines[i] == "}"), None)
    if end is None:
        raise FileProblem(ProblemKind.MALFORMED, "no closing '}' after the points")
    rows = [ln.split() for ln in lines[start + 1:end]]
    if any(len(r) != 2 for r in rows):
        bad = next(r for r in rows if len(r) != 2)
        raise FileProblem(ProblemKind.MALFORMED, f"point line '{' '.join(bad)}' is not 'x y'")
    pts = parse_floats([t for r in rows for t in r], "point").reshape(-1, 2)
    if n_points is not None and n_points != len(pts):
        raise FileProblem(ProblemKind.WRONG_POINT_COUNT, f"n_points says {n_points}, file has {len(pts)}")
    if len(pts) != expected:
        raise FileProblem(ProblemKind.WRONG_POINT_COUNT, f"{len(pts)} points, expected {expected}")
    return pts


@BENCHMARKS.register("300w")
class W300Reader(BenchmarkReader):
    """300W reader (see the module docstring); landmarks only."""

    name = "300w"
    splits = ("train", "common", "challenge", "full", "private")
    eval_splits = ("common", "challenge", "full")
    tasks = (TASK_LANDMARKS,)
    num_landmarks = NUM_LANDMARKS
    nme_corners = OUTER_EYE_CORNERS
    landmark_offset = -0.5
    landmark_frame = ".pts files: Matlab 1-based, the top-left pixel's centre is (1, 1)"

    def _folder(self, parts: tuple[str, ...]) -> Path | None:
        p: Path | None = self.root
        for part in parts:
            p = child(p, part) if p is not None else None
        return p if p is not None and p.is_dir() else None

    def _index(self) -> tuple[list[Entry], list[Problem], list[str]]:
        entries: list[Entry] = []
        problems: list[Problem] = []
        found = 0
        for parts, splits in W300_FOLDERS:
            folder = self._folder(parts)
            if folder is None:
                continue
            found += 1
            images = files_by_stem(folder, IMAGE_SUFFIXES)
            pts = files_by_stem(folder, (PTS_SUFFIX,))
            for stem, paths in images.items():
                if len(paths) > 1:
                    problems.append(Problem(relative(paths[1], self.root), ProblemKind.DUPLICATE,
                                            f"same stem as {paths[0].name}; using {paths[0].name}"))
                ann = (pts.find(stem) or [None])[0]
                if ann is None:
                    problems.append(Problem(relative(paths[0], self.root), ProblemKind.MISSING_LANDMARKS,
                                            f"no {stem}{PTS_SUFFIX}"))
                entries.append(Entry(relative(paths[0], self.root), paths[0], splits, landmarks=ann))
            for stem, paths in pts.items():
                if images.find(stem) is None:
                    problems.append(Problem(relative(paths[0], self.root), ProblemKind.MISSING_IMAGE,
                                            f"no image {stem}.jpg/.png"))
        if not found:
            names = ", ".join("/".join(p) for p, _ in W300_FOLDERS[:6])
            raise AssetError(f"{self.root}: none of the 300W folders ({names}) found; pass the folder "
                             "that holds afw/ helen/ ibug/ lfpw/")
        return entries, problems, []

    def _read_landmarks(self, path: Path) -> np.ndarray:
        return parse_pts(read_text(path))

    def crop(self, sample: BenchmarkSample, size: int) -> CropTransform:
        if sample.landmarks is None:
            raise AssetError(f"{sample.key}: 300W crops need the landmarks (none usable)")
        return landmark_box_crop(sample.landmarks, size, sample.size)
