"""File-level helpers shared by the benchmark readers: lookups, image/label/text decoding.

Real downloads differ from their documentation in small ways (upper-case extensions, grayscale
JPEGs, label PNGs saved as palette or RGB images, CRLF text, trailing blank lines), so every
helper accepts those variants and raises :class:`FileProblem` (a kind from
:class:`~sfray.benchmarks.problems.ProblemKind` plus a detail) for anything it cannot read. The
readers turn those into reported problems instead of stopping.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from sfray.benchmarks.problems import ProblemKind

#: Image file suffixes accepted wherever a benchmark has images (compared case-insensitively).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class FileProblem(Exception):
    """A file that cannot be used; ``kind`` is a ProblemKind value, ``path`` the culprit when it is
    not the file the caller asked about (one mask of several)."""

    def __init__(self, kind: str, detail: str = "", path: Path | None = None):
        super().__init__(detail)
        self.kind, self.detail, self.path = kind, detail, path


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def child(folder: Path, name: str) -> Path | None:
    """``folder/name`` matched case-insensitively (exact match first); None if absent."""
    exact = folder / name
    if exact.exists():
        return exact
    if not folder.is_dir():
        return None
    low = name.lower()
    for p in folder.iterdir():
        if p.name.lower() == low:
            return p
    return None


class StemIndex(dict):
    """``stem -> [paths]`` whose :meth:`find` falls back to a case-insensitive stem match."""

    def find(self, stem: str) -> list[Path] | None:
        hit = self.get(stem)
        if hit is None:
            if not hasattr(self, "_folded"):
                self._folded: dict[str, list[Path]] = {}
                for k, v in self.items():
                    self._folded.setdefault(k.casefold(), []).extend(v)
            hit = self._folded.get(stem.casefold())
        return hit


def files_by_stem(folder: Path | None, suffixes: Iterable[str]) -> StemIndex:
    """Files of ``folder`` (not recursive) whose suffix is in ``suffixes`` (any case), by stem."""
    wanted = {s.lower() for s in suffixes}
    out = StemIndex()
    if folder is None:
        return out
    if not folder.is_dir():
        return out
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in wanted and not p.name.startswith("."):
            out.setdefault(p.stem, []).append(p)
    return out


def _open_failure(exc: Exception) -> FileProblem:
    msg = str(exc)
    if "truncated" in msg.lower():
        return FileProblem(ProblemKind.TRUNCATED_IMAGE, msg)
    return FileProblem(ProblemKind.UNREADABLE, msg or type(exc).__name__)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header only (cheap; does not detect a truncated body)."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, SyntaxError, ValueError) as exc:
        raise _open_failure(exc) from exc


def _pixels(path: Path, convert_to: str | None = None, when: tuple[str, ...] | None = None
            ) -> tuple[np.ndarray, str]:
    """Decoded pixels of ``path`` and its original mode. With ``convert_to``, the image is converted
    to that mode first: always, or only when its mode is in ``when``. Decoding failures (including a
    truncated body) become a :class:`FileProblem` naming the kind."""
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if convert_to is not None and (when is None or mode in when):
                im = im.convert(convert_to)
            return np.asarray(im), mode
    except (OSError, SyntaxError, ValueError) as exc:
        raise _open_failure(exc) from exc


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8; grayscale, palette, CMYK and alpha images are converted. EXIF ignored."""
    return _pixels(path, "RGB")[0]


def read_label_map(path: Path) -> np.ndarray:
    """(H, W) integer ids from a label PNG: ``L``, ``P`` (palette indices are the ids), 16-bit,
    or a colour image whose channels are all equal (grey saved as RGB)."""
    arr, mode = _pixels(path)
    if arr.ndim == 3:
        colour = arr[..., :3] if mode in ("RGB", "RGBA") else arr[..., :1]
        if not np.all(colour == colour[..., :1]):
            raise FileProblem(ProblemKind.UNREADABLE, f"a colour image ({mode}), expected single-channel ids")
        arr = colour[..., 0]
    return arr.astype(np.int64)


def read_mask(path: Path) -> np.ndarray:
    """(H, W) bool foreground of a binary mask PNG: any non-zero colour channel (alpha ignored)."""
    arr = _pixels(path, "RGB", ("P", "RGBA", "LA", "CMYK"))[0]
    return arr.reshape(arr.shape[0], arr.shape[1], -1).max(axis=2) > 0


def read_gray(path: Path) -> np.ndarray:
    """(H, W) float32 in [0, 1] from an 8- or 16-bit grayscale PNG (divided by its dtype's max)."""
    arr = _pixels(path, "L", ("RGB", "RGBA", "P", "LA"))[0]
    if arr.ndim != 2:
        raise FileProblem(ProblemKind.UNREADABLE, f"expected a single-channel image, got shape {arr.shape}")
    scale = 65535.0 if arr.dtype == np.uint16 or int(arr.max(initial=0)) > 255 else 255.0
    return arr.astype(np.float32) / scale


def read_text(path: Path) -> str:
    """Text of an annotation file (UTF-8, BOM dropped, CRLF/CR turned into LF)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileProblem(ProblemKind.UNREADABLE, str(exc)) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("latin-1")
        except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
            raise FileProblem(ProblemKind.UNREADABLE, "not a text file") from exc
    if "\x00" in text:
        raise FileProblem(ProblemKind.UNREADABLE, "binary data in a text file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_floats(tokens: list[str], what: str) -> np.ndarray:
    """Tokens -> float64 array; a non-number or a non-finite value is MALFORMED."""
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError as exc:
        raise FileProblem(ProblemKind.MALFORMED, f"{what}: {exc}") from exc
    if not np.all(np.isfinite(values)):
        raise FileProblem(ProblemKind.MALFORMED, f"{what}: non-finite coordinate")
    return values


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with '/' separators (the key of a sample and of a problem)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
