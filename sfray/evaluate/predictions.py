"""The PREDICTIONS directory of ``sfray score`` (docs/evaluation.md)::

    PREDICTIONS/landmarks.json                 {"<image path relative to ROOT>": [[x, y], ...], ...}
    PREDICTIONS/parsing/<path with .png>       single-channel label map, benchmark ids, original size
    PREDICTIONS/depth/<path with .npy|.png>    (H, W) depth in any affine units (scored invariantly)

Landmark points are in the benchmark's own annotation-file frame (300W: 1-based pixel centres),
so the ground truth itself scores NME 0. Keys are matched exactly first, then ignoring case,
'\\' vs '/' and a leading './' (a key that matches two images is an error).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from sfray.errors import SfrayError

LANDMARKS_FILE = "landmarks.json"
PARSING_DIR = "parsing"
DEPTH_DIR = "depth"
PARSING_SUFFIX = ".png"
DEPTH_SUFFIXES = (".npy", ".png")


def _norm_key(key: str) -> str:
    k = key.replace("\\", "/")
    while k.startswith("./"):
        k = k[2:]
    return k.lower()


def _with_suffix(key: str, suffix: str) -> str:
    p = Path(key)
    return p.with_suffix(suffix).as_posix() if p.suffix else f"{key}{suffix}"


class Predictions:
    """Read-only view of a PREDICTIONS directory (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise SfrayError(f"{self.root}: predictions must be a directory holding {LANDMARKS_FILE} "
                             f"and/or {PARSING_DIR}/ (docs/evaluation.md)")
        self._landmarks: dict[str, list] | None = None
        self._lm_norm: dict[str, str] = {}
        self._files: dict[str, dict[str, Path]] = {}
        self._norms: dict[str, dict[str, str]] = {}

    # ---- which tasks -------------------------------------------------------------------
    @property
    def has_landmarks(self) -> bool:
        return (self.root / LANDMARKS_FILE).is_file()

    @property
    def has_parsing(self) -> bool:
        return (self.root / PARSING_DIR).is_dir()

    @property
    def has_depth(self) -> bool:
        return (self.root / DEPTH_DIR).is_dir()

    # ---- landmarks ----------------------------------------------------------------------
    def _load_landmarks(self) -> dict[str, list]:
        if self._landmarks is None:
            path = self.root / LANDMARKS_FILE
            try:
                data = json.loads(path.read_text(encoding="utf-8-sig"))
            except (OSError, json.JSONDecodeError) as exc:
                raise SfrayError(f"{path}: not valid JSON ({exc})") from exc
            if not isinstance(data, dict):
                raise SfrayError(f"{path}: expected an object mapping image paths to [[x, y], ...]")
            self._landmarks = data
            self._lm_norm = self._norm_index(data.keys(), path)
        return self._landmarks

    @staticmethod
    def _norm_index(keys, where: Path) -> dict[str, str]:
        index: dict[str, str] = {}
        for k in keys:
            n = _norm_key(k)
            index[n] = "" if n in index else k  # "" marks an ambiguous normalised key
        return index

    def _lookup(self, key: str, exact: dict, norm: dict[str, str]):
        if key in exact:
            return exact[key]
        alt = norm.get(_norm_key(key))
        if alt == "":
            raise SfrayError(f"{self.root}: two predictions match '{key}' when case and separators are ignored")
        return exact[alt] if alt else None

    def has_landmarks_for(self, key: str) -> bool:
        return self._lookup(key, self._load_landmarks(), self._lm_norm) is not None

    def landmarks(self, key: str, num_points: int) -> np.ndarray | None:
        """(K, 2) float64 points for image ``key`` in the annotation-file frame, or None if absent."""
        data = self._load_landmarks()
        value = self._lookup(key, data, self._lm_norm)
        if value is None:
            return None
        try:
            pts = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise SfrayError(f"{self.root / LANDMARKS_FILE}: '{key}' is not a list of [x, y] numbers") from exc
        if pts.shape != (num_points, 2) or not np.all(np.isfinite(pts)):
            raise SfrayError(f"{self.root / LANDMARKS_FILE}: '{key}' has shape {pts.shape}, expected "
                             f"({num_points}, 2) finite numbers")
        return pts

    # ---- label maps and depth -------------------------------------------------------------
    def _file_index(self, folder: str) -> dict[str, Path]:
        if folder not in self._files:
            base = self.root / folder
            files = {p.relative_to(base).as_posix(): p for p in base.rglob("*") if p.is_file()} if base.is_dir() else {}
            self._files[folder] = files
            self._norms[folder] = self._norm_index(files.keys(), base)
        return self._files[folder]

    def _find(self, folder: str, key: str, suffixes: tuple[str, ...]) -> Path | None:
        files = self._file_index(folder)
        for s in suffixes:
            hit = self._lookup(_with_suffix(key, s), files, self._norms[folder])
            if hit is not None:
                return hit
        return None

    def parsing_path(self, key: str) -> Path | None:
        return self._find(PARSING_DIR, key, (PARSING_SUFFIX,))

    def depth_path(self, key: str) -> Path | None:
        return self._find(DEPTH_DIR, key, DEPTH_SUFFIXES)

    def parsing(self, key: str, size: tuple[int, int], num_classes: int, image_size: tuple[int, int] | None = None
                ) -> np.ndarray | None:
        """(H, W) int64 ids at ``size`` = (w, h); a map at ``image_size`` is resampled (nearest)."""
        path = self.parsing_path(key)
        if path is None:
            return None
        try:
            with Image.open(path) as im:
                im.load()
                if im.mode not in ("L", "P", "I", "I;16"):
                    raise SfrayError(f"{path}: label maps must be single-channel (mode {im.mode}); "
                                     "write class ids, not colours")
                if im.size != tuple(size) and image_size is not None and im.size == tuple(image_size):
                    im = im.resize(tuple(size), Image.NEAREST)
                arr = np.asarray(im).astype(np.int64)
        except OSError as exc:
            raise SfrayError(f"{path}: not a readable PNG ({exc})") from exc
        if arr.shape != (size[1], size[0]):
            raise SfrayError(f"{path}: {arr.shape[1]}x{arr.shape[0]} label map, expected {size[0]}x{size[1]} "
                             "(the annotation's size)")
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise SfrayError(f"{path}: class id {int(arr.max())} outside 0..{num_classes - 1}")
        return arr

    def depth(self, key: str, size: tuple[int, int]) -> np.ndarray | None:
        path = self.depth_path(key)
        if path is None:
            return None
        try:
            if path.suffix.lower() == ".npy":
                arr = np.load(path, allow_pickle=False).astype(np.float64)
            else:
                with Image.open(path) as im:
                    arr = np.asarray(im).astype(np.float64)
        except (OSError, ValueError) as exc:
            raise SfrayError(f"{path}: not a readable depth map ({exc})") from exc
        if arr.shape != (size[1], size[0]):
            raise SfrayError(f"{path}: depth map of shape {arr.shape}, expected ({size[1]}, {size[0]})")
        return arr
