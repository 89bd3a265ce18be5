"""Export a dataset into the authors' SynthForge layout or the FaceSynthetics layout.

Both walk the manifest in sample-id order over records that exist (status ok or flagged) and
number the files 0, 1, 2, ... in that order (``index.json`` maps file index -> sample id).

**SynthForge layout** (docs/synthforge.md): ``images/ seg/ depth/ annotations/`` with 5-digit
names. ``seg`` is the RGB colour map (SEG_CLASSES colours); ``depth/*.png`` is the authors' 8-bit
per-image min-max normalisation over the foreground (near dark, far bright, background 255) at the
record's depth resolution. That PNG **loses metric scale**, so the exact on-disk depth is written
alongside as ``depth_metric/{i:05d}.npz`` (``depth`` float16 camera-space z, ``mask`` bool),
lossless with respect to the record. Annotation JSON keys: ``z``, ``camera_params`` (25),
``flame_shape``, ``flame_exp``, ``flame_pose`` (6: global then jaw, as the authors store it),
``2d_kps`` (68x2 pixels); sfray extras: ``sample_id``, ``seed``, ``generator``, ``full_pose`` (15),
``2d_kps_visible``, ``3d_kps``, ``quality``, ``status``, ``reason``, ``depth_kind``.

**FaceSynthetics layout**: ``{i:06d}.png``, ``{i:06d}_seg.png`` (uint8 FaceSynthetics ids through
:data:`OURS_TO_FACESYNTHETICS`, or the record's own source map when it was imported from
FaceSynthetics), ``{i:06d}_ldmks.txt`` (70 rows ``x y``: iBUG 68, then the pupils of the subject's
right and left eye; records without pupils get the centroid of that eye's six contour points).

:func:`export_dataset` is the safe entry point (``sfray dataset export``): it refuses a target
that is the dataset, holds it, is a dataset, or is root-like; it writes the whole export under a
temporary sibling and renames it into place only when complete, so an error (a full disk, a
damaged record) leaves no partial export; and a non-empty target is replaced only with
``overwrite`` (docs/reliability.md).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sfray.conventions import JOINT_NAMES, LANDMARK_GROUPS, DepthKind, DepthSource, Field, Status
from sfray.data import layout
from sfray.data.colors import ids_to_rgb
from sfray.data.depth import DepthMap, depth_maps
from sfray.data.facesynthetics import (
    FS_LDMKS_SUFFIX,
    FS_SCHEMA,
    FS_SEG_SUFFIX,
    OURS_TO_FACESYNTHETICS,
    fs_name,
)
from sfray.data.manifest import Manifest
from sfray.data.torch_dataset import SfrayDataset
from sfray.errors import AssetError, SfrayError
from sfray.io.atomic import atomic_dir, atomic_path, atomic_write_text
from sfray.io.paths import unsafe_output_reason
from sfray.io.space import NoSpaceError, space_error

_J = {name: 3 * i for i, name in enumerate(JOINT_NAMES)}
#: Annotation JSON key: the DepthSource of ``depth/*.png``.
DEPTH_PNG_SOURCE = "depth_png_source"


def _records(dataset_dir: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    ds = SfrayDataset(dataset_dir, with_meta=True, verify=True)
    for i in range(len(ds)):
        yield i, {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in ds[i].items()}


def _png(array: np.ndarray, path: Path) -> None:
    """Write an (H, W[, 3]) uint8 array as PNG. Exports write many files: each appears complete or
    not at all (``sfray.io.atomic``), without an fsync per file."""
    with atomic_path(path, durable=False) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")


def _text(text: str, path: Path) -> None:
    atomic_write_text(path, text, durable=False)


def _save_image(chw: np.ndarray, path: Path) -> None:
    _png(chw.transpose(1, 2, 0), path)


def authors_depth_png(depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W) float depth + bool mask -> uint8 per-image min-max (foreground), background 255."""
    out = np.full(depth.shape, 255, dtype=np.uint8)
    if mask.any():
        d = depth[mask].astype(np.float64)
        lo, hi = d.min(), d.max()
        out[mask] = np.round((d - lo) / max(hi - lo, 1e-12) * 255.0).astype(np.uint8)
    return out


def release_depth(rec: dict[str, Any]) -> tuple[DepthMap | None, np.ndarray | None]:
    """The depth map ``depth/*.png`` shows and the 8-bit image, as the release makes it: the
    generator's own depth when the record has it, normalised over every pixel for a volume
    renderer (the release's PNGs include hair and background) or over the coverage otherwise."""
    maps = depth_maps(rec)
    shown = maps.get(Field.GENERATOR_DEPTH) or maps.get(Field.DEPTH)
    if shown is None:
        return None, None
    over = np.ones_like(shown.mask) if shown.source == DepthSource.VOLUME else shown.mask
    return shown, authors_depth_png(shown.values, over)


def _list(rec: dict[str, Any], name: str) -> list[float]:
    v = rec.get(name)
    return [] if v is None else np.asarray(v, dtype=np.float32).reshape(-1).tolist()


def _annotation(rec: dict[str, Any]) -> dict[str, Any]:
    pose = np.asarray(rec.get(Field.POSE, np.zeros(15)), dtype=np.float32)
    ann: dict[str, Any] = {
        "z": _list(rec, Field.LATENT),
        "camera_params": _list(rec, Field.CAMERA),
        "flame_shape": _list(rec, Field.SHAPE),
        "flame_exp": _list(rec, Field.EXPRESSION),
        "flame_pose": np.concatenate([pose[_J["global"]:_J["global"] + 3],
                                      pose[_J["jaw"]:_J["jaw"] + 3]]).tolist(),
        "full_pose": pose.tolist(),
        "sample_id": int(rec[Field.SAMPLE_ID]),
        "seed": int(rec.get(Field.SEED, -1)),
        "generator": rec.get(Field.GENERATOR, ""),
        "quality": rec.get(Field.QUALITY, {}),
        Field.STATUS: str(rec.get(Field.STATUS, Status.OK)),
        Field.REASON: rec.get(Field.REASON, ""),
        Field.DEPTH_KIND: str(rec.get(Field.DEPTH_KIND, DepthKind.METRIC)),
        Field.DEPTH_SOURCE: str(rec.get(Field.DEPTH_SOURCE, DepthSource.MESH)),
    }
    if Field.GENERATOR_DEPTH in rec:
        ann[Field.GENERATOR_DEPTH_SOURCE] = str(rec.get(Field.GENERATOR_DEPTH_SOURCE, DepthSource.UNKNOWN))
    if Field.LANDMARKS_2D in rec:
        ann["2d_kps"] = np.asarray(rec[Field.LANDMARKS_2D], dtype=np.float32).tolist()
    if Field.LANDMARKS_VISIBLE in rec:
        ann["2d_kps_visible"] = np.asarray(rec[Field.LANDMARKS_VISIBLE], dtype=bool).tolist()
    if Field.LANDMARKS_3D in rec:
        ann["3d_kps"] = np.asarray(rec[Field.LANDMARKS_3D], dtype=np.float32).tolist()
    return ann


def export_authors_layout(dataset_dir: str | Path, out_dir: str | Path) -> int:
    """Write the SynthForge release layout; returns the number of samples exported."""
    out = Path(out_dir)
    for sub in ("images", "seg", "depth", "depth_metric", "annotations"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    index = {}
    n = 0
    for i, rec in _records(dataset_dir):
        name = f"{i:05d}"
        index[name] = int(rec[Field.SAMPLE_ID])
        if Field.IMAGE in rec:
            _save_image(rec[Field.IMAGE], out / "images" / f"{name}.png")
        if Field.SEGMENTATION in rec:
            seg_rgb = ids_to_rgb(rec[Field.SEGMENTATION].astype(np.uint8))
            _png(seg_rgb, out / "seg" / f"{name}.png")
        ann = _annotation(rec)
        shown, png = release_depth(rec)
        if shown is not None:
            _png(png, out / "depth" / f"{name}.png")
            ann[DEPTH_PNG_SOURCE] = shown.source
            arrays: dict[str, np.ndarray] = {}
            for m in depth_maps(rec).values():
                if m.name == Field.DEPTH:
                    arrays.update(depth=m.values.astype(np.float16), mask=m.mask)
                else:
                    cover = np.asarray(rec.get(Field.GENERATOR_MASK, m.mask), dtype=np.float16)
                    arrays.update({Field.GENERATOR_DEPTH: m.values.astype(np.float16), Field.GENERATOR_MASK: cover})
            metric = out / "depth_metric" / f"{name}.npz"
            with atomic_path(metric, durable=False) as tmp, open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        _text(json.dumps(ann), out / "annotations" / f"{name}.json")
        n += 1
    _text(json.dumps(index, indent=0), out / "index.json")
    return n


def _pupils(rec: dict[str, Any]) -> np.ndarray:
    if Field.PUPILS_2D in rec:
        return np.asarray(rec[Field.PUPILS_2D], dtype=np.float32).reshape(2, 2)
    lm = np.asarray(rec[Field.LANDMARKS_2D], dtype=np.float32)
    return np.stack([lm[list(LANDMARK_GROUPS[eye])].mean(0) for eye in ("right_eye", "left_eye")])


def export_facesynthetics_layout(dataset_dir: str | Path, out_dir: str | Path, *,
                                 num_landmarks: int = 70) -> int:
    """Write the FaceSynthetics layout (70 or 68 landmark rows); returns the number exported."""
    if num_landmarks not in (68, 70):
        raise ValueError("num_landmarks must be 68 or 70")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = {}
    n = 0
    for i, rec in _records(dataset_dir):
        name = fs_name(i)
        index[name] = int(rec[Field.SAMPLE_ID])
        _save_image(rec[Field.IMAGE], out / f"{name}.png")
        if rec.get(Field.SOURCE_SCHEMA) == FS_SCHEMA and Field.SOURCE_SEGMENTATION in rec:
            seg = rec[Field.SOURCE_SEGMENTATION].astype(np.uint8)
        else:
            seg = OURS_TO_FACESYNTHETICS[rec[Field.SEGMENTATION].astype(np.int64)]
        _png(seg, out / f"{name}{FS_SEG_SUFFIX}")
        if Field.LANDMARKS_2D in rec:
            pts = np.asarray(rec[Field.LANDMARKS_2D], dtype=np.float32)
            if num_landmarks == 70:
                pts = np.concatenate([pts, _pupils(rec)])
            _text("".join(f"{x!r} {y!r}\n" for x, y in pts.tolist()), out / f"{name}{FS_LDMKS_SUFFIX}")
        n += 1
    _text(json.dumps(index, indent=0), out / "index.json")
    return n


def _check_target(dataset_dir: Path, out: Path, overwrite: bool) -> None:
    src, dst = dataset_dir.resolve(), Path(os.path.abspath(out))
    reason = unsafe_output_reason(str(out))
    if reason:
        raise SfrayError(f"--out {out} {reason}; name a new folder for the export")
    if dst == src or src in dst.parents or dst in src.parents:
        raise SfrayError(f"--out {out} is the dataset {dataset_dir}, inside it or above it; export elsewhere")
    if dst.exists() and not dst.is_dir():
        raise SfrayError(f"--out {out} exists and is not a directory")
    if layout.is_dataset_dir(dst):
        raise SfrayError(f"--out {out} is an sfray dataset; refusing to replace it with an export")
    if dst.is_dir() and any(dst.iterdir()) and not overwrite:
        raise SfrayError(f"--out {out} exists and is not empty; pass --overwrite to replace it")


def export_dataset(dataset_dir: str | Path, out_dir: str | Path, *, layout: str, overwrite: bool = False) -> int:
    """Export ``dataset_dir`` into ``out_dir`` (``layout``: synthforge | facesynthetics), all or nothing."""
    writers = {"synthforge": export_authors_layout, "facesynthetics": export_facesynthetics_layout}
    if layout not in writers:
        raise SfrayError(f"unknown export layout {layout!r}; one of {sorted(writers)}")
    root, out = Path(dataset_dir), Path(out_dir)
    Manifest.load(root, required=True)  # refuses a directory that is not a dataset
    _check_target(root, out, overwrite)
    try:
        with atomic_dir(out, replace=overwrite) as tmp:
            return writers[layout](root, tmp)
    except NoSpaceError:
        full = space_error(OSError(errno.ENOSPC, "No space left on device"), out.parent)
        raise NoSpaceError(f"export to {out}: {full}; nothing was written") from None
    except SfrayError:
        raise
    except OSError as exc:
        full = space_error(exc, out.parent if not out.exists() else out)
        if full is not None:
            raise type(full)(f"export to {out}: {full}; nothing was written") from None
        raise AssetError(f"export to {out} failed: {exc.strerror or exc} "
                         f"({exc.filename or out}); nothing was written") from None
