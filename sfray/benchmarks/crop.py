"""Face crops to the model input, and their inverses to score in original image coordinates.

A :class:`CropTransform` is a 3x3 affine ``matrix`` taking annotation-frame pixels to crop pixels,
both in sfray's convention ((0, 0) = top-left *corner* of the top-left pixel). The protocol crops
(docs/benchmarks-data.md):

* 300W: the landmarks' bounding box, its longer side enlarged by 1.25, as a square;
* LaPa / LaPa-D: the bounding box of the non-background labels plus ``pad`` pixels, as a square;
* CelebAMask-HQ: the whole (512²) annotation frame scaled to the input size.

Images are warped with kornia (bilinear); label maps with nearest neighbour, pixels from outside
the source filled with an ignore id. Predictions go back with :meth:`CropTransform.points_to_original`,
:meth:`~CropTransform.logits_to_original` (bilinear on logits, then argmax: FaRL's way) or
:meth:`~CropTransform.labels_to_original`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from kornia.geometry.transform import warp_affine

from sfray.conventions import IGNORE_LABEL

#: Enlargement of the landmark box for 300W crops (the common HRNet/STAR-style protocol).
W300_BOX_SCALE = 1.25
#: Padding (annotation-frame pixels) around LaPa's label box, as in the authors' evaluation.
LAPA_BOX_PAD = 80.0


def _shift(d: float) -> np.ndarray:
    return np.array([[1.0, 0.0, d], [0.0, 1.0, d], [0.0, 0.0, 1.0]])


def _warp(x: torch.Tensor, matrix: np.ndarray, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Warp (B, C, H, W) by a corner-convention matrix into ``size`` = (width, height)."""
    # kornia (align_corners=True) works in pixel-index coordinates, whose centres are integers
    m = _shift(-0.5) @ matrix @ _shift(0.5)
    mt = torch.as_tensor(m[:2], dtype=x.dtype)[None].expand(x.shape[0], 2, 3)
    return warp_affine(x, mt, dsize=(size[1], size[0]), mode=mode, padding_mode="zeros", align_corners=True)


@dataclass(frozen=True)
class CropTransform:
    """Annotation frame (``source_size`` = (w, h)) -> crop (``size`` = (w, h)) by ``matrix`` (3, 3)."""

    matrix: np.ndarray
    size: tuple[int, int]
    source_size: tuple[int, int]

    @property
    def inverse(self) -> np.ndarray:
        return np.linalg.inv(self.matrix)

    @staticmethod
    def _apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return p @ m[:2, :2].T + m[:2, 2]

    def points_to_crop(self, points: np.ndarray) -> np.ndarray:
        return self._apply(self.matrix, points)

    def points_to_original(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) crop pixels -> annotation-frame pixels."""
        return self._apply(self.inverse, points)

    def warp_image(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (h, w, 3) uint8 crop, bilinear, black outside the source."""
        x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
        out = _warp(x, self.matrix, self.size, "bilinear")[0].permute(1, 2, 0)
        return out.round().clamp(0, 255).to(torch.uint8).numpy()

    def warp_labels(self, labels: np.ndarray, fill: int = IGNORE_LABEL) -> np.ndarray:
        """(H, W) ids -> (h, w) int64 crop, nearest neighbour; ``fill`` outside the source."""
        x = torch.from_numpy(np.asarray(labels, dtype=np.float32))[None, None]
        inside = torch.ones_like(x)
        out = _warp(x, self.matrix, self.size, "nearest")[0, 0]
        valid = _warp(inside, self.matrix, self.size, "nearest")[0, 0] > 0.5
        return torch.where(valid, out, torch.full_like(out, float(fill))).round().long().numpy()

    def warp_values(self, values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, W) float values (e.g. depth) and bool mask -> crop values (bilinear) and mask (nearest)."""
        v = torch.from_numpy(np.asarray(values, dtype=np.float32))[None, None]
        m = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
        out = _warp(v * m, self.matrix, self.size, "bilinear")[0, 0]
        weight = _warp(m, self.matrix, self.size, "bilinear")[0, 0]
        keep = _warp(m, self.matrix, self.size, "nearest")[0, 0] > 0.5
        out = torch.where(weight > 1e-6, out / weight.clamp_min(1e-6), torch.zeros_like(out))
        return out.numpy(), keep.numpy()

    def logits_to_original(self, logits: torch.Tensor) -> torch.Tensor:
        """(C, h, w) or (B, C, h, w) crop logits -> the annotation frame (bilinear)."""
        x = logits if logits.ndim == 4 else logits[None]
        out = _warp(x.float(), self.inverse, self.source_size, "bilinear")
        return out if logits.ndim == 4 else out[0]

    def source_area(self) -> np.ndarray:
        """(h, w) bool: crop pixels whose centre falls inside the source image."""
        ones = np.ones((self.source_size[1], self.source_size[0]), dtype=np.int64)
        return self.warp_labels(ones, fill=0) == 1

    def values_to_original(self, values: np.ndarray, valid: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
        """(h, w) crop values (e.g. depth) -> annotation frame, bilinear over the ``valid`` crop
        pixels (default: those showing the source image), and where the result is defined."""
        back = CropTransform(self.inverse, self.source_size, self.size)
        return back.warp_values(values, self.source_area() if valid is None else valid)

    def labels_to_original(self, labels: np.ndarray, fill: int = 0) -> np.ndarray:
        """(h, w) crop ids -> (H, W) ids in the annotation frame, nearest; ``fill`` outside the crop."""
        back = CropTransform(self.inverse, self.source_size, self.size)
        return back.warp_labels(labels, fill=fill)


def square_crop(center: tuple[float, float], side: float, size: int, source_size: tuple[int, int]) -> CropTransform:
    """The square of ``side`` pixels centred on ``center`` scaled to ``size``²."""
    s = size / max(float(side), 1e-6)
    cx, cy = center
    m = np.array([[s, 0.0, size / 2.0 - s * cx], [0.0, s, size / 2.0 - s * cy], [0.0, 0.0, 1.0]])
    return CropTransform(m, (size, size), (int(source_size[0]), int(source_size[1])))


def landmark_box_crop(points: np.ndarray, size: int, source_size: tuple[int, int],
                      scale: float = W300_BOX_SCALE) -> CropTransform:
    """300W protocol: square of ``scale`` x the longer side of the landmarks' box, same centre."""
    p = np.asarray(points, dtype=np.float64)
    lo, hi = p.min(axis=0), p.max(axis=0)
    return square_crop(tuple((lo + hi) / 2.0), scale * float(max(hi - lo)), size, source_size)


def label_box_crop(labels: np.ndarray, size: int, background_id: int = 0, pad: float = LAPA_BOX_PAD,
                   ignore_id: int | None = None) -> CropTransform:
    """LaPa protocol: square around the non-background pixels' box plus ``pad`` on every side."""
    h, w = labels.shape
    fg = labels != background_id
    if ignore_id is not None:
        fg &= labels != ignore_id
    if not fg.any():
        return whole_image_crop((w, h), size)
    ys, xs = np.nonzero(fg)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1.0, ys.min(), ys.max() + 1.0  # pixel corners
    side = max(x1 - x0, y1 - y0) + 2.0 * pad
    return square_crop(((x0 + x1) / 2.0, (y0 + y1) / 2.0), side, size, (w, h))


def whole_image_crop(source_size: tuple[int, int], size: int) -> CropTransform:
    """CelebAMask-HQ protocol: the whole frame scaled to ``size``² (anisotropic if not square)."""
    w, h = source_size
    m = np.array([[size / w, 0.0, 0.0], [0.0, size / h, 0.0], [0.0, 0.0, 1.0]])
    return CropTransform(m, (size, size), (int(w), int(h)))
