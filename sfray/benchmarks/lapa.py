"""LaPa (JDAI-CV): label maps with ids 0-10 and 106 landmarks per image; and LaPa-D (depth).

LaPa layout under ROOT::

    {train,val,test}/images/<name>.jpg
    {train,val,test}/labels/<name>.png        single-channel ids 0..10 (schemas.LAPA_SCHEMA)
    {train,val,test}/landmarks/<name>.txt     106 'x y' pairs, optionally preceded by the count 106

LaPa-D (Lee et al.) adds ``depth/<name>.png`` (8- or 16-bit relative depth, 0 = no face) and
``{split}_list.txt`` (the names of each split) in its own folder; the LaPa images are found in the
same folder (``ROOT/{split}/images``) or in ``lapa_root``. Landmark files are read as 0-based
pixel centres (the README states no convention), so sfray's convention is ``file + 0.5``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfray.benchmarks.base import (
    TASK_DEPTH,
    TASK_LANDMARKS,
    TASK_PARSING,
    BenchmarkReader,
    BenchmarkSample,
    Entry,
)
from sfray.benchmarks.catalog import BENCHMARKS
from sfray.benchmarks.crop import CropTransform, label_box_crop, landmark_box_crop, whole_image_crop
from sfray.benchmarks.files import (
    IMAGE_SUFFIXES,
    FileProblem,
    StemIndex,
    child,
    files_by_stem,
    parse_floats,
    read_gray,
    read_label_map,
    read_text,
    relative,
)
from sfray.benchmarks.problems import Problem, ProblemKind
from sfray.benchmarks.schemas import LAPA106_OUTER_EYE_CORNERS, LAPA_SCHEMA, NUM_LAPA_LANDMARKS
from sfray.errors import AssetError

LAPA_SPLITS = ("train", "val", "test")
IMAGES_DIR, LABELS_DIR, LANDMARKS_DIR, DEPTH_DIR = "images", "labels", "landmarks", "depth"
LABEL_SUFFIX, LANDMARK_SUFFIX, DEPTH_SUFFIX = ".png", ".txt", ".png"
#: LaPa-D split list file name.
LIST_FILE = "{split}_list.txt"


def parse_lapa_landmarks(text: str, expected: int = NUM_LAPA_LANDMARKS) -> np.ndarray:
    """LaPa landmark text -> (106, 2) float64 file coordinates (raises FileProblem).

    Accepts ``2n`` numbers, or the count ``n`` followed by ``2n`` numbers, any whitespace.
    """
    tokens = text.split()
    if not tokens:
        raise FileProblem(ProblemKind.MALFORMED, "empty landmark file")
    if len(tokens) % 2 == 1:  # a count line first
        try:
            count = int(float(tokens[0]))
        except ValueError as exc:
            raise FileProblem(ProblemKind.MALFORMED, f"odd number of values and '{tokens[0]}' is no count") from exc
        values = parse_floats(tokens[1:], "landmark")
        if count != len(values) // 2:
            raise FileProblem(ProblemKind.WRONG_POINT_COUNT, f"count line says {count}, file has {len(values) // 2}")
    else:
        values = parse_floats(tokens, "landmark")
    pts = values.reshape(-1, 2)
    if len(pts) != expected:
        raise FileProblem(ProblemKind.WRONG_POINT_COUNT, f"{len(pts)} points, expected {expected}")
    return pts


def lapa_split_entries(lapa_root: Path, key_root: Path, split: str, names: list[str] | None = None
                       ) -> tuple[list[Entry], list[Problem]]:
    """Entries of one LaPa split folder (only ``names`` if given); keys relative to ``key_root``."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    folder = child(lapa_root, split)
    if folder is None or not folder.is_dir():
        return entries, problems
    sub = {d: child(folder, d) for d in (IMAGES_DIR, LABELS_DIR, LANDMARKS_DIR)}
    images = files_by_stem(sub[IMAGES_DIR], IMAGE_SUFFIXES)
    labels = files_by_stem(sub[LABELS_DIR], (LABEL_SUFFIX,))
    marks = files_by_stem(sub[LANDMARKS_DIR], (LANDMARK_SUFFIX,))
    wanted = names if names is not None else sorted(images)
    for stem in wanted:
        paths = images.find(stem)
        if not paths:
            if names is not None:  # listed by LaPa-D but absent
                expected = (sub[IMAGES_DIR] or folder / IMAGES_DIR) / f"{stem}.jpg"
                problems.append(Problem(relative(expected, key_root), ProblemKind.MISSING_FILE, "listed image"))
            continue
        if len(paths) > 1:
            problems.append(Problem(relative(paths[1], key_root), ProblemKind.DUPLICATE,
                                    f"same stem as {paths[0].name}; using {paths[0].name}"))
        lab = (labels.find(stem) or [None])[0]
        ldm = (marks.find(stem) or [None])[0]
        key = relative(paths[0], key_root)
        if lab is None:
            problems.append(Problem(key, ProblemKind.MISSING_LABELS, f"no {LABELS_DIR}/{stem}{LABEL_SUFFIX}"))
        if ldm is None:
            problems.append(Problem(key, ProblemKind.MISSING_LANDMARKS, f"no {LANDMARKS_DIR}/{stem}{LANDMARK_SUFFIX}"))
        entries.append(Entry(key, paths[0], (split,), landmarks=ldm, labels=lab))
    if names is None:
        for kind, table in ((LABELS_DIR, labels), (LANDMARKS_DIR, marks)):
            for stem, paths in table.items():
                if images.find(stem) is None:
                    problems.append(Problem(relative(paths[0], key_root), ProblemKind.MISSING_IMAGE,
                                            f"{kind} file without images/{stem}.jpg"))
    return entries, problems


@BENCHMARKS.register("lapa")
class LaPaReader(BenchmarkReader):
    """LaPa reader: parsing (11 classes) and 106 landmarks."""

    name = "lapa"
    splits = LAPA_SPLITS
    eval_splits = ("test",)
    tasks = (TASK_PARSING, TASK_LANDMARKS)
    schema = LAPA_SCHEMA
    num_landmarks = NUM_LAPA_LANDMARKS
    nme_corners = LAPA106_OUTER_EYE_CORNERS
    landmark_offset = 0.5
    landmark_frame = "landmarks/*.txt: read as 0-based pixel centres (sfray = file + 0.5)"

    def _index(self) -> tuple[list[Entry], list[Problem], list[str]]:
        entries, problems = [], []
        for split in LAPA_SPLITS:
            e, p = lapa_split_entries(self.root, self.root, split)
            entries += e
            problems += p
        if not entries and not problems:
            raise AssetError(f"{self.root}: no LaPa split folder with images (expected "
                             "{train,val,test}/images/*.jpg)")
        return entries, problems, []

    def _read_landmarks(self, path: Path) -> np.ndarray:
        return parse_lapa_landmarks(read_text(path))

    def _read_labels(self, entry: Entry) -> np.ndarray:
        labels = read_label_map(entry.labels)
        bad = np.unique(labels[(labels < 0) | (labels >= LAPA_SCHEMA.num_classes)])
        if bad.size:
            raise FileProblem(ProblemKind.LABEL_OUT_OF_RANGE,
                              f"ids {bad[:8].tolist()} outside 0..{LAPA_SCHEMA.num_classes - 1}")
        return labels

    def crop(self, sample: BenchmarkSample, size: int) -> CropTransform:
        """Label box + 80 px (labels), else the 1.25 landmark box, else the whole image."""
        if sample.labels is not None:
            return label_box_crop(sample.labels, size, LAPA_SCHEMA.background_id)
        if sample.landmarks is not None:
            return landmark_box_crop(sample.landmarks, size, sample.size)
        return whole_image_crop(sample.size, size)


def _list_names(path: Path) -> list[str]:
    """Stems listed in a LaPa-D split list (one per line; a path or a name, extension optional)."""
    names = []
    for line in read_text(path).split("\n"):
        tok = line.strip().split()
        if tok:
            names.append(Path(tok[0].replace("\\", "/")).stem)
    return names


@BENCHMARKS.register("lapa-d")
class LaPaDReader(LaPaReader):
    """LaPa-D reader: LaPa's images and labels for the listed names, plus relative depth."""

    name = "lapa-d"
    tasks = (TASK_DEPTH, TASK_PARSING, TASK_LANDMARKS)

    def __init__(self, root, *, lapa_root: str | Path | None = None, **kwargs):
        super().__init__(root, **kwargs)
        if lapa_root is not None:
            self.lapa_root = Path(lapa_root)
        elif any((child(self.root, s) or self.root / s).joinpath(IMAGES_DIR).is_dir() for s in LAPA_SPLITS):
            self.lapa_root = self.root
        else:
            sibling = child(self.root.parent, "LaPa")
            self.lapa_root = sibling if sibling is not None else self.root

    def _index(self) -> tuple[list[Entry], list[Problem], list[str]]:
        entries, problems, notes = [], [], []
        depth_dir = child(self.root, DEPTH_DIR)
        lists = {s: child(self.root, LIST_FILE.format(split=s)) for s in LAPA_SPLITS}
        if not any(lists.values()):
            lists = ", ".join(LIST_FILE.format(split=s) for s in LAPA_SPLITS)
            raise AssetError(f"{self.root}: no LaPa-D split list ({lists})")
        if self.lapa_root != self.root:
            notes.append(f"LaPa images read from {self.lapa_root}; keys are relative to it")
        for split, list_path in lists.items():
            if list_path is None:
                continue
            try:
                names = _list_names(list_path)
            except FileProblem as exc:
                problems.append(Problem(relative(list_path, self.root), exc.kind, exc.detail))
                continue
            e, p = lapa_split_entries(self.lapa_root, self.lapa_root, split, names)
            problems += p
            depths = self._depth_files(depth_dir, split)
            for entry in e:
                stem = Path(entry.key).stem
                entry.depth = (depths.find(stem) or [None])[0]
                if entry.depth is None:
                    problems.append(Problem(entry.key, ProblemKind.MISSING_DEPTH,
                                            f"no {DEPTH_DIR}/{stem}{DEPTH_SUFFIX}"))
            entries += e
        return entries, problems, notes

    def _depth_files(self, depth_dir: Path | None, split: str) -> StemIndex:
        """Depth PNGs by stem: ``ROOT/depth/`` (documented), else ``ROOT/{split}/depth/``."""
        found = StemIndex()
        split_dir = child(self.root, split)
        for folder in (child(split_dir, DEPTH_DIR) if split_dir else None, depth_dir):
            if folder is not None and folder.is_dir():
                found.update(files_by_stem(folder, (DEPTH_SUFFIX,)))
        return found

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        depth = read_gray(entry.depth)
        return depth, depth > 0
