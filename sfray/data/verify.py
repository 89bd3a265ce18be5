"""Integrity checks and statistics of a dataset directory (``sfray dataset verify|stats``).

``verify_dataset`` re-reads every committed record and checks it against the manifest: the shard
exists and is complete (not a tmp file), the key exists, the sha256 of the bytes equals the
manifest checksum, and the record's own ``sample_id`` agrees. Leftover tmp files and shards no
row references are reported as warnings (a sweep removes or moves them), not failures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sfray.conventions import NUM_SEG_CLASSES, SEG_NAMES, Column, Field, Status
from sfray.data import layout
from sfray.data.manifest import Manifest
from sfray.data.record import read_header, record_checksum
from sfray.data.shard import ShardReader
from sfray.data.torch_dataset import SfrayDataset
from sfray.errors import AssetError


@dataclass
class VerifyReport:
    checked: int = 0
    shards: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_dataset(dataset_dir: str | Path) -> VerifyReport:
    """Check every manifest row against its record; see the module docstring."""
    root = Path(dataset_dir)
    manifest = Manifest.load(root, required=True)
    report = VerifyReport()
    rows = manifest.rows()
    dup = [sid for sid, n in Counter(r[Column.SAMPLE_ID] for r in rows).items() if n > 1]
    report.problems += [f"sample {sid}: listed more than once in the manifest" for sid in sorted(dup)]
    by_shard: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row[Column.STATUS] == Status.DROPPED and not row[Column.SHARD]:
            continue
        if layout.is_tmp(row[Column.SHARD] or ""):
            report.problems.append(f"sample {row[Column.SAMPLE_ID]}: manifest lists temporary shard "
                                   f"'{row[Column.SHARD]}'")
            continue
        by_shard[row[Column.SHARD]].append(row)
    for shard, shard_rows in sorted(by_shard.items()):
        path = layout.shard_path(root, shard)
        if not path.is_file():
            report.problems.append(f"shard {shard}: file {path} missing ({len(shard_rows)} manifest rows)")
            continue
        report.shards += 1
        try:
            with ShardReader(path) as reader:
                for row in shard_rows:
                    report.checked += 1
                    _check_row(reader, row, report)
        except AssetError as exc:
            report.problems.append(f"shard {shard}: {exc}")
    for p in layout.tmp_files(root):
        report.warnings.append(f"leftover temporary file {p.relative_to(root)} (removed by a sweep)")
    referenced = set(by_shard)
    for name in layout.complete_shards(root):
        if name not in referenced:
            report.warnings.append(f"shard {name} is not referenced by the manifest (uncommitted)")
    return report


def _check_row(reader: ShardReader, row: dict[str, Any], report: VerifyReport) -> None:
    sid, key, shard = row[Column.SAMPLE_ID], row[Column.KEY], row[Column.SHARD]
    try:
        data = reader.get(key)
    except KeyError:
        report.problems.append(f"sample {sid}: key '{key}' not found in shard {shard}")
        return
    if record_checksum(data) != row[Column.CHECKSUM]:
        report.problems.append(f"sample {sid}: checksum mismatch in shard {shard} (record corrupted)")
        return
    try:
        header, _ = read_header(data)
    except (AssetError, ValueError) as exc:
        report.problems.append(f"sample {sid}: record does not decode ({exc})")
        return
    if int(header["meta"].get(Field.SAMPLE_ID, -1)) != int(sid):
        report.problems.append(f"sample {sid}: record says sample_id {header['meta'].get(Field.SAMPLE_ID)}")


def dataset_stats(dataset_dir: str | Path, *, sample: int = 256) -> dict[str, Any]:
    """Counts, shard sizes, per-class pixel shares and landmark visibility over <= ``sample`` records."""
    root = Path(dataset_dir)
    manifest = Manifest.load(root, required=True)
    shard_bytes = [layout.shard_path(root, s).stat().st_size for s in manifest.shards()
                   if layout.shard_path(root, s).is_file()]
    nbytes = manifest.table.column(Column.NBYTES).to_numpy()
    out: dict[str, Any] = {
        "counts": manifest.counts(),
        "shards": {"count": len(shard_bytes), "bytes_total": int(sum(shard_bytes)),
                   "bytes_mean": float(np.mean(shard_bytes)) if shard_bytes else 0.0},
        "records": {"bytes_total": int(nbytes.sum()),
                    "bytes_mean": float(nbytes.mean()) if nbytes.size else 0.0},
    }
    ds = SfrayDataset(root, fields=(Field.SEGMENTATION, Field.LANDMARKS_VISIBLE, Field.IMAGE), with_meta=True)
    picks = np.unique(np.linspace(0, max(len(ds) - 1, 0), num=min(sample, len(ds))).round().astype(int))
    pixels = np.zeros(NUM_SEG_CLASSES, dtype=np.int64)
    vis, sizes = [], Counter()
    for i in picks:
        rec = ds[int(i)]
        if Field.SEGMENTATION in rec:
            counts = np.bincount(rec[Field.SEGMENTATION].numpy().reshape(-1), minlength=NUM_SEG_CLASSES)
            pixels += counts[:NUM_SEG_CLASSES]
        if Field.LANDMARKS_VISIBLE in rec:
            vis.append(float(rec[Field.LANDMARKS_VISIBLE].float().mean()))
        if Field.IMAGE in rec:
            sizes["x".join(str(s) for s in rec[Field.IMAGE].shape[1:])] += 1
    total = max(int(pixels.sum()), 1)
    out["sampled_records"] = len(picks)
    out["class_pixel_share"] = {SEG_NAMES[c]: round(float(pixels[c]) / total, 6)
                                for c in range(NUM_SEG_CLASSES)}
    out["landmark_visibility_rate"] = float(np.mean(vis)) if vis else None
    out["image_sizes"] = dict(sizes)
    return out
