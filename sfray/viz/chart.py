"""A small line chart drawn with PIL (no plotting library): one line per series, axes, legend."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

#: Distinguishable line colours (cycled).
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], *, title: str, xlabel: str,
               ylabel: str, size: tuple[int, int] = (900, 560)) -> Image.Image:
    """``series``: (label, xs, ys) each; points are drawn as dots joined by lines."""
    w, h = size
    legend_w = 330
    left, right, top, bottom = 70, w - legend_w, 40, h - 50
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    xs_all = np.concatenate([np.asarray(s[1], dtype=float) for s in series if len(s[1])] or [np.zeros(1)])
    ys_all = np.concatenate([np.asarray(s[2], dtype=float) for s in series if len(s[2])] or [np.zeros(1)])
    ys_all = ys_all[np.isfinite(ys_all)] if np.isfinite(ys_all).any() else np.zeros(1)
    x0, x1 = float(xs_all.min()), float(xs_all.max())
    y0, y1 = float(ys_all.min()), float(ys_all.max())
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pad = (y1 - y0) * 0.05 or max(abs(y0) * 0.05, 1e-3)
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top))

    d.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    for t in _ticks(x0, x1):
        x, _ = px(t, y0)
        d.line([x, bottom, x, bottom + 4], fill=(0, 0, 0))
        d.text((x - 12, bottom + 8), f"{t:.0f}", fill=(0, 0, 0))
    for t in _ticks(y0, y1):
        _, y = px(x0, t)
        d.line([left - 4, y, left, y], fill=(0, 0, 0))
        d.line([left, y, right, y], fill=(235, 235, 235))
        d.text((4, y - 6), f"{t:.4g}", fill=(0, 0, 0))
    d.text((left, 12), title, fill=(0, 0, 0))
    d.text(((left + right) // 2 - 20, h - 22), xlabel, fill=(0, 0, 0))
    d.text((4, top - 16), ylabel, fill=(0, 0, 0))
    for i, (label, xs, ys) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        pts = [px(float(x), float(y)) for x, y in zip(xs, ys) if np.isfinite(y)]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        for x, y in pts:
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        ly = top + 16 * i
        d.line([right + 10, ly + 6, right + 30, ly + 6], fill=colour, width=3)
        d.text((right + 36, ly), label[:52], fill=(0, 0, 0))
    return img
