"""Tiny benchmark trees in the documented layouts, with the quirks the readers must survive.

Every builder returns the facts the tests check against (expected points, label maps, problems),
computed here from the values written, never from the reader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, w: int = 40, h: int = 32, *, gray: bool = False, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(h, w) if gray else (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}[path.suffix.lower()]
    Image.fromarray(arr).save(path, format=fmt, quality=95)
    return arr


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def write_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="PNG")


def pts_text(points: np.ndarray, *, n_points: int | None = None, crlf: bool = False, messy: bool = False) -> str:
    n = len(points) if n_points is None else n_points
    rows = [f"{x:.3f} {y:.3f}" + ("   " if messy else "") for x, y in points]
    lines = ["version: 1", f"n_points:  {n}", "{", *rows, "}"] + (["", "  "] if messy else [])
    return ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")


def face68(seed: int, w: int = 40, h: int = 32) -> np.ndarray:
    """68 points inside a w x h image with distinct outer eye corners (file coordinates)."""
    rng = np.random.default_rng(100 + seed)
    pts = rng.uniform([3, 3], [w - 3, h - 3], size=(68, 2))
    pts[36], pts[45] = [8.0 + seed, 12.0], [30.0, 12.0 + seed]
    return pts


def make_300w(root: Path) -> dict:
    """A 300W tree; returns {"points": {key: file points}, "problems": {(kind, path)}, "counts": ...}."""
    points: dict[str, np.ndarray] = {}
    layout = [  # (folder, name, image suffix, pts options)
        ("afw", "a1", ".jpg", {"crlf": True}),
        ("helen/trainset", "h1", ".png", {"messy": True}),
        ("helen/testset", "t1", ".jpg", {}),
        ("helen/testset", "t2", ".JPG", {}),
        ("helen/testset", "U3", ".jpg", {}),  # its .pts is written lower-case: u3.pts
        ("lfpw/testset", "l1", ".jpg", {}),
        ("ibug", "image_092 _01", ".jpg", {"crlf": True}),
        ("ibug", "trunc", ".jpg", {}),
    ]
    for i, (folder, stem, suffix, opts) in enumerate(layout):
        write_image(root / folder / f"{stem}{suffix}", seed=i, gray=(stem == "t1"))
        pts = face68(i)
        points[f"{folder}/{stem}{suffix}"] = pts
        text = pts_text(pts, **opts)
        (root / folder / f"{stem.lower() if stem == 'U3' else stem}.pts").write_bytes(text.encode())
    # l1: one point line missing while the header still says 68
    (root / "lfpw/testset/l1.pts").write_text(pts_text(points["lfpw/testset/l1.jpg"][:67], n_points=68))
    truncate(root / "ibug/trunc.jpg")
    (root / "ibug/orphan.pts").write_text(pts_text(face68(9)))
    write_image(root / "lfpw/trainset/nolm.jpg", seed=9)
    return {
        "points": points,
        "problems": {("wrong_point_count", "lfpw/testset/l1.pts"), ("truncated_image", "ibug/trunc.jpg"),
                     ("missing_image", "ibug/orphan.pts"), ("missing_landmarks", "lfpw/trainset/nolm.jpg")},
        "counts": {"train": (3, 2), "common": (4, 3), "challenge": (2, 1), "full": (6, 4), "private": (0, 0)},
    }


def lapa_labels(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(200 + seed)
    lab = rng.integers(0, 11, size=(h, w)).astype(np.uint8)
    lab[:4] = 0
    return lab


def lapa_marks(seed: int, *, count_line: bool = True, n: int = 106) -> tuple[np.ndarray, str]:
    rng = np.random.default_rng(300 + seed)
    pts = rng.uniform(2, 30, size=(n, 2))
    pts[66], pts[79] = [5.0, 10.0], [25.0, 10.0]
    body = "\n".join(f"{x:.4f} {y:.4f}" for x, y in pts)
    return pts, (f"{n}\n" if count_line else "") + body + "\n"


def make_lapa(root: Path, split: str = "test") -> dict:
    """A LaPa split with quirks; returns labels, file points and expected problems."""
    d = root / split
    labels, points = {}, {}
    plan = [("x", ".jpg", True), ("y", ".jpg", True), ("z", ".jpg", False), ("w", ".JPG", True),
            ("v", ".jpg", True), ("u", ".jpg", True)]
    for i, (stem, suffix, count_line) in enumerate(plan):
        write_image(d / "images" / f"{stem}{suffix}", seed=i, gray=(stem == "x"))
        lab = lapa_labels(32, 40, i)
        pts, text = lapa_marks(i, count_line=count_line)
        if stem == "y":
            lab[5, 5] = 11  # out of range
        if stem == "z":
            pts, text = lapa_marks(i, count_line=False, n=105)  # wrong point count
        if stem != "v":  # v: label missing
            write_png(d / "labels" / (f"{stem}.PNG" if stem == "w" else f"{stem}.png"), lab)
        (d / "landmarks" / f"{stem}.txt").parent.mkdir(parents=True, exist_ok=True)
        (d / "landmarks" / f"{stem}.txt").write_text(text)
        labels[f"{split}/images/{stem}{suffix}"] = lab
        points[f"{split}/images/{stem}{suffix}"] = pts
    truncate(d / "labels" / "u.png", 0.3)
    write_png(d / "labels" / "orphan.png", lapa_labels(32, 40, 9))
    return {
        "labels": labels, "points": points,
        "problems": {("label_out_of_range", f"{split}/labels/y.png"),
                     ("wrong_point_count", f"{split}/landmarks/z.txt"),
                     ("missing_labels", f"{split}/images/v.jpg"),
                     ("truncated_image", f"{split}/labels/u.png"),
                     ("missing_image", f"{split}/labels/orphan.png")},
        "parsing_ok": {f"{split}/images/{s}" for s in ("x.jpg", "z.jpg", "w.JPG")},
        "landmarks_ok": {f"{split}/images/{s}" for s in ("x.jpg", "y.jpg", "w.JPG", "v.jpg", "u.jpg")},
    }


def square_mask(h: int, w: int, y0: int, y1: int, x0: int, x1: int, *, rgb: bool = False) -> np.ndarray:
    m = np.zeros((h, w), dtype=np.uint8)
    m[y0:y1, x0:x1] = 255
    return np.repeat(m[..., None], 3, axis=2) if rgb else m


def make_celebamask(root: Path, *, partition: bool = False) -> dict:
    """CelebAMask-HQ tree: 64² images, 32² masks. Returns expected labels and splits."""
    masks = root / "CelebAMask-HQ-mask-anno"
    orig = {0: 100, 1: 162771, 2: 190000, 3: 162770, 4: 5}  # idx -> 0-based CelebA index
    for k in orig:
        write_image(root / "CelebA-HQ-img" / f"{k}.jpg", 64, 64, seed=k)
    mapping = ["idx orig_idx orig_file"] + [f"{k} {o} {o + 1:06d}.jpg" for k, o in orig.items()]
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\r\n".join(mapping) + "\r\n")
    expected = np.zeros((32, 32), dtype=np.int64)
    layers = [("skin", 1, (4, 28, 4, 28), False), ("l_eye", 4, (10, 14, 8, 14), True),
              ("hair", 13, (0, 12, 0, 32), False), ("cloth", 18, (26, 32, 0, 32), True)]
    for name, cid, (y0, y1, x0, x1), rgb in layers:
        write_png(masks / "0" / f"00000_{name}.png", square_mask(32, 32, y0, y1, x0, x1, rgb=rgb))
        expected[y0:y1, x0:x1] = cid  # painted in id order: a later class wins
    for k in (2, 3, 4):
        write_png(masks / "0" / f"{k:05d}_skin.png", square_mask(32, 32, 8, 24, 8, 24))
    truncate(root / "CelebA-HQ-img" / "4.jpg")
    write_png(masks / "0" / "00007_skin.png", square_mask(32, 32, 8, 24, 8, 24))  # no image 7
    if partition:
        rows = [f"{o + 1:06d}.jpg {0 if o + 1 <= 162770 else 1 if o + 1 <= 182637 else 2}" for o in orig.values()]
        (root / "list_eval_partition.txt").write_text("\n".join(rows) + "\n")
    splits_default = {"CelebA-HQ-img/0.jpg": "train", "CelebA-HQ-img/1.jpg": "val", "CelebA-HQ-img/2.jpg": "test",
                      "CelebA-HQ-img/3.jpg": "train", "CelebA-HQ-img/4.jpg": "train"}
    splits = dict(splits_default)
    if partition:
        splits["CelebA-HQ-img/3.jpg"] = "val"  # CelebA's own list: file 162771.jpg is validation
    return {"expected0": expected, "splits": splits,
            "problems": {("missing_labels", "CelebA-HQ-img/1.jpg"), ("truncated_image", "CelebA-HQ-img/4.jpg"),
                         ("missing_image", "CelebAMask-HQ-mask-anno/0/00007_skin.png")}}
