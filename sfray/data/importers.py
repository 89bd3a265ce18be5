"""Import released datasets as sfray shards + manifest: SynthForge (authors) and FaceSynthetics.

Both importers are resumable and idempotent: ids already in the target manifest are skipped,
shards are written with :func:`write_shard` (contiguous chunks of ``samples_per_shard`` ids) and
committed every ``commit_every`` shards, then ``dataset.yaml`` is refreshed. Sample ids are the
numbers in the file names (``00042.png`` -> 42).

SynthForge (docs/synthforge.md): colour ``seg/`` -> ids by nearest LAB colour
(:mod:`sfray.data.colors`); ``depth/*.png`` (128² uint8, per-image min-max) is kept as *relative*
depth in [0, 1] with ``depth_kind: relative`` and a mask from the segmentation foreground, unless
``depth_metric/*.npz`` (written by sfray's exporter) is present; ``2d_kps`` -> landmarks_2d with
visibility = inside the image (the release has no occlusion flags); ``flame_pose`` (global, jaw)
fills the 15-number pose unless sfray's ``full_pose`` is present; ``fan_kps`` and ``mse`` are kept
as an extra array and the quality figure ``fan_mean_px``.

FaceSynthetics: image, label map (mapped to sfray ids, original kept, see
:mod:`sfray.data.facesynthetics`), 68 landmarks + 2 pupils (taken as written; the README does not
state the pixel-centre convention), visibility = inside the image. No depth, camera or FLAME
parameters exist in that dataset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sfray.conventions import (
    BACKGROUND_ID,
    JOINT_NAMES,
    NUM_LANDMARKS,
    POSE_DIM,
    DepthKind,
    DepthSource,
    Field,
)
from sfray.data import layout
from sfray.data.colors import rgb_to_ids
from sfray.data.dataset_yaml import read_dataset_yaml, update_dataset_yaml
from sfray.data.export import DEPTH_PNG_SOURCE
from sfray.data.facesynthetics import (
    FACESYNTHETICS_TO_OURS,
    FS_IMAGE_PATTERN,
    FS_LDMKS_SUFFIX,
    FS_SCHEMA,
    FS_SEG_SUFFIX,
    NUM_FS_LANDMARKS,
    LandmarkFormatError,
    parse_fs_landmarks,
)
from sfray.data.manifest import Manifest, sweep
from sfray.data.record import encode_record, read_header
from sfray.data.record_format import declared_fields, merge_formats, record_format
from sfray.data.shard import ShardReceipt, write_shard
from sfray.errors import AssetError, SfrayError
from sfray.io.paths import unsafe_output_reason
from sfray.io.space import space_error

_J = {name: 3 * i for i, name in enumerate(JOINT_NAMES)}
SYNTHFORGE_GENERATOR = "import:synthforge"
FACESYNTHETICS_GENERATOR = "import:facesynthetics"


def _rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise AssetError(f"{path}: not a readable image ({exc})") from exc


def _gray(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except OSError as exc:
        raise AssetError(f"{path}: not a readable image ({exc})") from exc
    if arr.ndim != 2:
        raise AssetError(f"{path}: expected a single-channel image, got shape {arr.shape}")
    return arr


def _visible_inside(points: np.ndarray, width: int, height: int) -> np.ndarray:
    return (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)


def _numbered(folder: Path, pattern: str, index_file: Path) -> list[tuple[int, Path]]:
    """(sample id, path) of numbered files; ids from sfray's ``index.json`` when an export wrote one."""
    rx = re.compile(pattern)
    found = [(m.group(1), p) for p in folder.iterdir() if (m := rx.fullmatch(p.name))]
    index: dict[str, int] = {}
    if index_file.is_file():
        try:
            index = {str(k): int(v) for k, v in json.loads(index_file.read_text()).items()}
        except (json.JSONDecodeError, AttributeError, ValueError) as exc:
            raise AssetError(f"{index_file}: expected a JSON object name -> sample id ({exc})") from exc
    return sorted((index.get(stem, int(stem)), p) for stem, p in found)


def _check_target(dataset_dir: Path) -> None:
    reason = unsafe_output_reason(str(dataset_dir))
    if reason:
        raise SfrayError(f"--out {dataset_dir} {reason}; name a dataset directory")
    if dataset_dir.exists() and not dataset_dir.is_dir():
        raise SfrayError(f"--out {dataset_dir} exists and is not a directory")
    if dataset_dir.is_dir() and any(dataset_dir.iterdir()) and not layout.is_dataset_dir(dataset_dir):
        raise SfrayError(f"--out {dataset_dir} is not empty and is not an sfray dataset; import into a new "
                         "or empty directory (or an existing dataset, to resume)")


def _run_import(
    items: list[tuple[int, Path]],
    build: Callable[[int, Path], dict[str, Any]],
    dataset_dir: str | Path,
    *,
    source: str,
    generator: str,
    image_format: str,
    image_quality: int,
    samples_per_shard: int,
    commit_every: int,
) -> int:
    """Encode, shard and commit ``items`` not yet in the manifest; returns how many were imported.

    Holds the dataset's lock; the target must be new, empty or an sfray dataset (resumed)."""
    root = Path(dataset_dir)
    _check_target(root)
    with layout.dataset_lock(root, "sfray dataset import"):
        if not layout.is_dataset_dir(root):
            update_dataset_yaml(root, generator=generator, source=source)  # marks the directory as ours
        sweep(root)  # leftovers of an interrupted import; committed shards are untouched
        done = set(Manifest.load(root).committed_ids().tolist())
        todo = [(sid, p) for sid, p in items if sid not in done]
        declared = None
        pending: list[ShardReceipt] = []
        try:
            for start in range(0, len(todo), samples_per_shard):
                chunk = todo[start:start + samples_per_shard]
                records = [(sid, encode_record(build(sid, p), image_format=image_format,
                                               image_quality=image_quality)) for sid, p in chunk]
                for _, data in records:
                    declared = merge_formats(declared, record_format(read_header(data)[0]))
                pending.append(write_shard(root, records))
                if len(pending) >= commit_every:
                    Manifest.commit(root, pending)
                    pending = []
            Manifest.commit(root, pending)
        except OSError as exc:
            full = space_error(exc, root)
            if full is not None:
                raise type(full)(f"import into {root}: {full}; the shards committed so far are kept") from None
            raise
        old = read_dataset_yaml(root)
        update_dataset_yaml(root, generator=generator, source=source,
                            record_format=merge_formats(declared_fields(old), declared or {}) or None)
    return len(todo)


def _image_record(sid: int, image_path: Path, generator: str) -> tuple[dict[str, Any], int, int]:
    """The record's image part, and the image's height and width."""
    image = _rgb(image_path)
    rec: dict[str, Any] = {Field.SAMPLE_ID: sid, Field.IMAGE: image.transpose(2, 0, 1).copy(),
                           Field.GENERATOR: generator}
    return rec, image.shape[0], image.shape[1]


def _synthforge_sample(src: Path, sid: int, image_path: Path) -> dict[str, Any]:
    stem = image_path.stem
    rec, h, w = _image_record(sid, image_path, SYNTHFORGE_GENERATOR)
    seg_path = src / "seg" / f"{stem}.png"
    seg = rgb_to_ids(_rgb(seg_path)) if seg_path.is_file() else None
    if seg is not None:
        rec[Field.SEGMENTATION] = seg
    metric = src / "depth_metric" / f"{stem}.npz"
    depth_png = src / "depth" / f"{stem}.png"
    if metric.is_file():
        with np.load(metric) as z:
            if "depth" in z:
                rec[Field.DEPTH], rec[Field.MASK] = z["depth"].astype(np.float32), z["mask"].astype(bool)
            for field in (Field.GENERATOR_DEPTH, Field.GENERATOR_MASK):
                if field in z:
                    rec[field] = z[field].astype(np.float32)
        rec[Field.DEPTH_KIND] = DepthKind.METRIC.value
    elif depth_png.is_file():
        d = _gray(depth_png)
        rec[Field.DEPTH] = d.astype(np.float32) / 255.0
        if seg is not None:  # foreground = labelled head pixels, sampled at the depth resolution
            ys = (np.arange(d.shape[0]) + 0.5) * seg.shape[0] / d.shape[0]
            xs = (np.arange(d.shape[1]) + 0.5) * seg.shape[1] / d.shape[1]
            rec[Field.MASK] = seg[ys.astype(int)][:, xs.astype(int)] != BACKGROUND_ID
        else:
            rec[Field.MASK] = np.ones(d.shape, dtype=bool)
        rec[Field.DEPTH_KIND] = DepthKind.RELATIVE.value
        rec[Field.DEPTH_SOURCE] = DepthSource.VOLUME.value  # the release's PNGs: Next3D's depth
    ann_path = src / "annotations" / f"{stem}.json"
    if ann_path.is_file():
        try:
            ann = json.loads(ann_path.read_text())
        except json.JSONDecodeError as exc:
            raise AssetError(f"{ann_path}: not valid JSON ({exc})") from exc
        rec.update(_synthforge_annotation(ann, ann_path, w, h))
        if rec.get(Field.DEPTH_KIND) == DepthKind.RELATIVE and ann.get(DEPTH_PNG_SOURCE):
            rec[Field.DEPTH_SOURCE] = str(ann[DEPTH_PNG_SOURCE])  # an sfray export says what it shows
    return rec


def _synthforge_annotation(ann: dict[str, Any], path: Path, width: int, height: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    f32 = lambda key: np.asarray(ann[key], dtype=np.float32)  # noqa: E731
    for key, field in (("z", Field.LATENT), ("camera_params", Field.CAMERA), ("flame_shape", Field.SHAPE),
                       ("flame_exp", Field.EXPRESSION)):
        if key in ann:
            out[field] = f32(key).reshape(-1)
    if "full_pose" in ann:
        out[Field.POSE] = f32("full_pose").reshape(POSE_DIM)
    elif "flame_pose" in ann:
        pose = np.zeros(POSE_DIM, dtype=np.float32)
        fp = f32("flame_pose").reshape(-1)
        pose[_J["global"]:_J["global"] + 3], pose[_J["jaw"]:_J["jaw"] + 3] = fp[:3], fp[3:6]
        out[Field.POSE] = pose
    if "2d_kps" in ann:
        kps = f32("2d_kps").reshape(-1, 2)
        if kps.shape[0] != NUM_LANDMARKS:
            raise AssetError(f"{path}: '2d_kps' has {kps.shape[0]} points, expected {NUM_LANDMARKS}")
        out[Field.LANDMARKS_2D] = kps
        vis = ann.get("2d_kps_visible")
        out[Field.LANDMARKS_VISIBLE] = (np.asarray(vis, dtype=bool) if vis is not None
                                        else _visible_inside(kps, width, height))
    if "3d_kps" in ann:
        out[Field.LANDMARKS_3D] = f32("3d_kps").reshape(NUM_LANDMARKS, 3)
    if "fan_kps" in ann:
        out["fan_kps"] = f32("fan_kps")
    quality = dict(ann.get("quality") or {})
    if "mse" in ann:
        quality["fan_mean_px"] = float(ann["mse"])  # the release's "mse" is a mean distance in pixels
    if quality:
        out[Field.QUALITY] = quality
    for field in (Field.SEED, Field.GENERATOR, Field.STATUS, Field.REASON, Field.DEPTH_KIND, Field.DEPTH_SOURCE,
                  Field.GENERATOR_DEPTH_SOURCE):
        if field in ann and ann[field] not in (None, ""):  # sfray's extras use the record field names
            out[field] = ann[field]
    return out


def import_synthforge(src_dir: str | Path, dataset_dir: str | Path, *, image_format: str = "png",
                      image_quality: int = 95, samples_per_shard: int = 256, commit_every: int = 16) -> int:
    """Import the authors' released layout (``images/ seg/ depth/ annotations/``) into ``dataset_dir``."""
    src = Path(src_dir)
    if not src.is_dir():
        raise AssetError(f"{src}: no such folder (expected the SynthForge layout images/ seg/ depth/ annotations/)")
    if not (src / "images").is_dir():
        raise AssetError(f"{src}: no images/ folder; expected the SynthForge layout "
                         "images/ seg/ depth/ annotations/")
    items = _numbered(src / "images", r"(\d+)\.png", src / "index.json")
    if not items:
        raise AssetError(f"{src / 'images'}: no numbered .png images found")
    return _run_import(items, lambda sid, p: _synthforge_sample(src, sid, p), dataset_dir,
                       source="synthforge", generator=SYNTHFORGE_GENERATOR, image_format=image_format,
                       image_quality=image_quality, samples_per_shard=samples_per_shard,
                       commit_every=commit_every)


def _facesynthetics_sample(src: Path, sid: int, image_path: Path) -> dict[str, Any]:
    stem = image_path.stem
    rec, h, w = _image_record(sid, image_path, FACESYNTHETICS_GENERATOR)
    seg_path = src / f"{stem}{FS_SEG_SUFFIX}"
    if seg_path.is_file():
        fs = _gray(seg_path).astype(np.uint8)
        rec[Field.SEGMENTATION] = FACESYNTHETICS_TO_OURS[fs]
        rec[Field.SOURCE_SEGMENTATION] = fs
        rec[Field.SOURCE_SCHEMA] = FS_SCHEMA
    ldmk_path = src / f"{stem}{FS_LDMKS_SUFFIX}"
    if ldmk_path.is_file():
        try:
            pts = parse_fs_landmarks(ldmk_path.read_text(errors="replace")).astype(np.float32)
        except LandmarkFormatError as exc:
            raise AssetError(f"{ldmk_path}: {exc}") from exc
        rec[Field.LANDMARKS_2D] = pts[:NUM_LANDMARKS]
        rec[Field.LANDMARKS_VISIBLE] = _visible_inside(pts[:NUM_LANDMARKS], w, h)
        if pts.shape[0] == NUM_FS_LANDMARKS:
            rec[Field.PUPILS_2D] = pts[NUM_LANDMARKS:]
    return rec


def import_facesynthetics(src_dir: str | Path, dataset_dir: str | Path, *, image_format: str = "png",
                          image_quality: int = 95, samples_per_shard: int = 256,
                          commit_every: int = 16) -> int:
    """Import a FaceSynthetics folder (``{idx:06d}.png``, ``_seg.png``, ``_ldmks.txt``)."""
    src = Path(src_dir)
    if not src.is_dir():
        raise AssetError(f"{src}: not a directory")
    items = _numbered(src, FS_IMAGE_PATTERN, src / "index.json")
    if not items:
        raise AssetError(f"{src}: no FaceSynthetics images ({{idx:06d}}.png) found")
    return _run_import(items, lambda sid, p: _facesynthetics_sample(src, sid, p), dataset_dir,
                       source="facesynthetics", generator=FACESYNTHETICS_GENERATOR,
                       image_format=image_format, image_quality=image_quality,
                       samples_per_shard=samples_per_shard, commit_every=commit_every)
