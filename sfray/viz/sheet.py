"""Contact sheets: many small pictures tiled into one PNG for a quick look."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw


def to_hwc(image: np.ndarray) -> np.ndarray:
    """(3, H, W) or (H, W, 3) or (H, W) uint8 -> (H, W, 3) uint8 (the record stores channels first)."""
    a = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)  # type: ignore[union-attr]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif a.ndim == 3 and a.shape[0] == 3 and a.shape[2] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected a uint8 image as (3, H, W) or (H, W, 3), got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def contact_sheet(images: Sequence[np.ndarray | Image.Image], ncols: int, *,
                  cell: tuple[int, int] | None = None, pad: int = 2,
                  background: tuple[int, int, int] = (24, 24, 24)) -> Image.Image:
    """Tile ``images`` row-major into ``ncols`` columns; every cell is ``cell`` = (width, height).

    ``cell`` defaults to the size of the first image; other sizes are resized to it (bilinear),
    so the sheet size is exactly ``(ncols * (w + pad) + pad, nrows * (h + pad) + pad)``.
    """
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    pil = [im if isinstance(im, Image.Image) else Image.fromarray(to_hwc(im)) for im in images]
    w, h = cell if cell is not None else pil[0].size
    ncols = min(ncols, len(pil))
    nrows = -(-len(pil) // ncols)
    sheet = Image.new("RGB", (ncols * (w + pad) + pad, nrows * (h + pad) + pad), background)
    for k, im in enumerate(pil):
        if im.size != (w, h):
            im = im.resize((w, h), Image.BILINEAR)
        r, c = divmod(k, ncols)
        sheet.paste(im.convert("RGB"), (pad + c * (w + pad), pad + r * (h + pad)))
    return sheet


def titled_grid(rows: Sequence[Sequence[np.ndarray | None]], titles: Sequence[str], cell: int = 192, *,
                row_labels: Sequence[str] | None = None, pad: int = 4, header: int = 18,
                background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """A table of pictures: one column per title, one row per entry of ``rows`` (None = empty cell).

    Every picture is resized to ``cell``² (bilinear); titles go in a header strip, optional row
    labels in a small strip above each row.
    """
    if not rows:
        raise ValueError("titled_grid needs at least one row")
    ncols = len(titles)
    label_h = header if row_labels else 0
    width = ncols * (cell + pad) + pad
    height = header + len(rows) * (cell + pad + label_h) + pad
    sheet = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(titles):
        draw.text((pad + c * (cell + pad) + 2, 3), str(title), fill=(0, 0, 0))
    for r, row in enumerate(rows):
        top = header + r * (cell + pad + label_h)
        if row_labels:
            draw.text((pad + 2, top + 2), str(row_labels[r]), fill=(60, 60, 60))
        for c, pic in enumerate(list(row)[:ncols]):
            if pic is None:
                continue
            im = Image.fromarray(to_hwc(pic)).resize((cell, cell), Image.BILINEAR)
            sheet.paste(im, (pad + c * (cell + pad), top + label_h))
    return sheet
