"""The UV label map: SEG_CLASSES ids over the head's UV square, row 0 at the top (t = 1).

Two sources:

* a colour image painted with the ``SEG_CLASSES`` colours. The authors' ``flame_seg_tex.png`` is a
  lossy JPEG under a .png name, so the file is decoded by content (Pillow sniffs the format) and
  colours are matched tolerantly: each distinct colour is converted to CIE-LAB (kornia) and takes the
  nearest palette colour if the CIE76 distance is below ``max_delta_e``. ``SEG_UNUSED_COLORS``,
  black and unmatched colours become background. A single-channel image whose values are all valid
  ids (or a ``.npy`` id array) is taken as ids directly.
* vertex regions (``FLAME_masks.pkl``): every vertex gets the most specific region containing it,
  every face the majority label of its corners, and the faces are filled into UV space.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sfray.conventions import BACKGROUND_ID, NUM_SEG_CLASSES, SEG_CLASSES, SEG_ID, SEG_UNUSED_COLORS
from sfray.errors import AssetError

#: Default colour tolerance (CIE76 Delta E). Class colours are >= 17.7 apart; JPEG noise inside a
#: region stays well below 10, blended border pixels beyond it fall to background.
DEFAULT_MAX_DELTA_E = 10.0

#: Region precedence when vertex regions overlap (FLAME_masks: 'face' contains the nose, 'eye_region'
#: the eye regions, ...): earlier entries win. 'lips' is split into upper/lower lip; 'boundary' (the
#: neck rim) counts as neck. Names not listed and not SEG class names are ignored.
REGION_PRECEDENCE = (
    "left_eyeball", "right_eyeball", "inner_mouth", "upper_lip", "lower_lip", "lips", "left_eyebrow",
    "right_eyebrow", "nose", "left_eye_region", "right_eye_region", "eye_region+forehead", "eye_region",
    "left_ear", "right_ear", "forehead", "face", "neck_back", "neck", "scalp", "boundary",
)
_ALIASES = {"boundary": "neck"}


# ---------------------------------------------------------------------------------------------
# Colour images
# ---------------------------------------------------------------------------------------------


def _palette() -> tuple[np.ndarray, np.ndarray]:
    colors = [c.color for c in SEG_CLASSES] + list(SEG_UNUSED_COLORS)
    ids = [c.id for c in SEG_CLASSES] + [BACKGROUND_ID] * len(SEG_UNUSED_COLORS)
    return np.asarray(colors, dtype=np.uint8), np.asarray(ids, dtype=np.uint8)


def _rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 sRGB -> (N, 3) float32 CIE-LAB (D65), via kornia."""
    import kornia
    import torch

    t = torch.from_numpy(rgb.astype(np.float32) / 255.0).T.reshape(1, 3, -1, 1)
    return kornia.color.rgb_to_lab(t)[0, :, :, 0].T.contiguous().numpy()


def colors_to_labels(rgb: np.ndarray, max_delta_e: float = DEFAULT_MAX_DELTA_E) -> np.ndarray:
    """(H, W, 3) uint8 colours -> (H, W) uint8 SEG ids by nearest palette colour within ``max_delta_e``."""
    import torch

    rgb = np.asarray(rgb, dtype=np.uint8)[..., :3]
    packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    big = packed.size > (1 << 20)
    if big:
        # distinct colours through a 2^24 bitmap and a 16 MB lookup table: a 4096^2 map decodes in
        # well under a second, where sorting its pixels (np.unique) takes several
        present = np.zeros(1 << 24, dtype=bool)
        present[packed.reshape(-1)] = True
        uniq = np.flatnonzero(present)
    else:  # small images (dataset records): sorting beats allocating the table
        uniq, inverse = np.unique(packed.reshape(-1), return_inverse=True)
    ucol = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(np.uint8)
    pal_rgb, pal_ids = _palette()
    dist = torch.cdist(torch.from_numpy(_rgb_to_lab(ucol)), torch.from_numpy(_rgb_to_lab(pal_rgb)))
    best_d, best = dist.min(dim=1)
    ids = np.where(best_d.numpy() <= max_delta_e, pal_ids[best.numpy()], BACKGROUND_ID).astype(np.uint8)
    if not big:
        return ids[inverse.reshape(-1)].reshape(packed.shape)
    lut = np.full(1 << 24, BACKGROUND_ID, dtype=np.uint8)
    lut[uniq] = ids
    return lut[packed]


def load_label_map(path: str | os.PathLike, max_delta_e: float = DEFAULT_MAX_DELTA_E) -> np.ndarray:
    """Read a UV label map file (colour image, id image or ``.npy`` ids) -> (H, W) uint8 SEG ids."""
    p = Path(path)
    if not p.is_file():
        raise AssetError(f"{p}: file not found (expected a UV label map image painted with the "
                         "SEG_CLASSES colours)")
    if p.suffix.lower() == ".npy":
        try:
            ids = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise AssetError(f"{p}: not a numeric .npy label map ({exc})") from exc
        return _check_ids(ids, p)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:  # format sniffed from the bytes, not the extension
            im.load()
            if im.mode in ("L", "I", "I;16"):
                arr = np.asarray(im)
                if arr.size and arr.max() < NUM_SEG_CLASSES and arr.min() >= 0:
                    return arr.astype(np.uint8)
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise AssetError(f"{p}: not a readable image ({exc}); expected a UV label map painted with the "
                         "SEG_CLASSES colours") from exc
    return colors_to_labels(rgb, max_delta_e)


def _check_ids(ids: np.ndarray, p: Path) -> np.ndarray:
    ok = ids.ndim == 2 and np.issubdtype(ids.dtype, np.integer)
    if not ok or (ids.size and (ids.min() < 0 or ids.max() >= NUM_SEG_CLASSES)):
        raise AssetError(f"{p}: expected an (H, W) integer array of SEG_CLASSES ids "
                         f"0..{NUM_SEG_CLASSES - 1}, got {ids.dtype} {ids.shape}")
    return ids.astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# From vertex regions
# ---------------------------------------------------------------------------------------------


def vertex_labels(regions: Mapping[str, np.ndarray], vertices: np.ndarray) -> np.ndarray:
    """(V,) uint8 SEG id per vertex from (possibly overlapping) named vertex regions; rest background.

    ``vertices`` (V, 3) is used only to split a 'lips' region into upper/lower lip at the height of
    the mouth corners (the lip vertices with the smallest and the largest x).
    """
    nv = vertices.shape[0]
    labels = np.full(nv, BACKGROUND_ID, dtype=np.uint8)
    assigned = np.zeros(nv, dtype=bool)
    for name in REGION_PRECEDENCE:
        if name not in regions:
            continue
        idx = np.asarray(regions[name], dtype=np.int64).reshape(-1)
        idx = idx[~assigned[idx]]
        if name == "lips":
            lip = np.asarray(regions[name], dtype=np.int64).reshape(-1)
            xs = vertices[lip, 0]
            slit = 0.5 * (vertices[lip[np.argmin(xs)], 1] + vertices[lip[np.argmax(xs)], 1])
            upper = vertices[idx, 1] >= slit
            labels[idx[upper]], labels[idx[~upper]] = SEG_ID["upper_lip"], SEG_ID["lower_lip"]
        else:
            labels[idx] = SEG_ID[_ALIASES.get(name, name)]
        assigned[idx] = True
    return labels


def face_labels(faces: np.ndarray, vlabels: np.ndarray) -> np.ndarray:
    """(F,) majority label of each face's three corners; with three different labels, the most specific."""
    c = vlabels[faces]  # (F, 3)
    out = np.where((c[:, 0] == c[:, 1]) | (c[:, 0] == c[:, 2]), c[:, 0], c[:, 1])
    distinct = (c[:, 0] != c[:, 1]) & (c[:, 0] != c[:, 2]) & (c[:, 1] != c[:, 2])
    if distinct.any():
        rank = np.full(NUM_SEG_CLASSES, len(REGION_PRECEDENCE), dtype=np.int64)
        for i, name in enumerate(REGION_PRECEDENCE):
            sid = SEG_ID.get(_ALIASES.get(name, name))
            if sid is not None:
                rank[sid] = min(rank[sid], i)
        rank[SEG_ID["upper_lip"]] = rank[SEG_ID["lower_lip"]] = REGION_PRECEDENCE.index("lips")
        rank[BACKGROUND_ID] = len(REGION_PRECEDENCE) + 1
        pick = np.argmin(rank[c[distinct]], axis=1)
        out[distinct] = c[distinct][np.arange(pick.size), pick]
    return out.astype(np.uint8)


def rasterize_uv_labels(uv_coords: np.ndarray, uv_faces: np.ndarray, flabels: np.ndarray,
                        size: int) -> np.ndarray:
    """Fill each UV triangle with its face label on a (size, size) grid; pixel centres decide coverage."""
    out = np.full((size, size), BACKGROUND_ID, dtype=np.uint8)
    px = np.stack([uv_coords[:, 0] * size, (1.0 - uv_coords[:, 1]) * size], axis=1)  # (T, 2) pixel x, y
    tri = px[uv_faces]  # (F, 3, 2)
    lo = np.clip(np.floor(tri.min(axis=1) - 0.5).astype(np.int64), 0, size - 1)
    hi = np.clip(np.ceil(tri.max(axis=1) - 0.5).astype(np.int64), 0, size - 1)
    for f in range(tri.shape[0]):
        (x0, y0), (x1, y1) = lo[f], hi[f]
        xs, ys = np.meshgrid(np.arange(x0, x1 + 1) + 0.5, np.arange(y0, y1 + 1) + 0.5)
        a, b, c = tri[f]
        den = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
        if abs(den) < 1e-12:
            continue
        w0 = ((b[1] - c[1]) * (xs - c[0]) + (c[0] - b[0]) * (ys - c[1])) / den
        w1 = ((c[1] - a[1]) * (xs - c[0]) + (a[0] - c[0]) * (ys - c[1])) / den
        inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (1.0 - w0 - w1 >= -1e-9)
        out[y0: y1 + 1, x0: x1 + 1][inside] = flabels[f]
    return out


def label_map_from_regions(regions: Mapping[str, np.ndarray], vertices: np.ndarray, faces: np.ndarray,
                           uv_coords: np.ndarray, uv_faces: np.ndarray, size: int = 1024) -> np.ndarray:
    """(size, size) uint8 UV label map derived from vertex regions (see module docstring)."""
    flabels = face_labels(faces, vertex_labels(regions, vertices))
    return rasterize_uv_labels(uv_coords, uv_faces, flabels, size)


def unused_region_names(regions: Mapping[str, np.ndarray]) -> list[str]:
    """Region names :func:`vertex_labels` ignores (neither SEG class names nor known FLAME names)."""
    return sorted(n for n in regions if n not in REGION_PRECEDENCE)
