"""Integrity checks and statistics of a dataset directory (``sfray dataset verify|stats``).

``verify_dataset`` re-reads every committed record and checks it against the manifest
(``sfray.data.integrity``): the shard name stays inside ``shards/``, the shard exists and is not
truncated, the key exists, the sha256 of the bytes equals the manifest checksum, the record's
own ``sample_id`` agrees, and its format (fields, codecs, dtypes, shapes) is the one the dataset
declares (``sfray.data.record_format``): the ``record_format`` of dataset.yaml, the resolution and
image codec of the config that made it, or, without either, the first record's. Leftover tmp
files and shards no row references are reported as warnings (a sweep removes or moves them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sfray.conventions import KEPT_STATUSES, NUM_SEG_CLASSES, SEG_NAMES, Column, Field
from sfray.data import layout
from sfray.data.dataset_yaml import read_dataset_yaml
from sfray.data.integrity import check_rows
from sfray.data.manifest import Manifest
from sfray.data.record_format import config_expectation, declared_fields, record_format
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


def _saved_config(root: Path, dataset_yaml: dict[str, Any]) -> dict[str, Any] | None:
    path = root / layout.CONFIG_FILE
    if path.is_file():
        try:
            tree = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            tree = None
        if isinstance(tree, dict):
            return tree
    config = dataset_yaml.get("config")
    return config if isinstance(config, dict) else None


def _first_format(root: Path, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The format of the first readable record (a dataset without a declaration must agree with it)."""
    for row in rows[:16]:
        try:
            with ShardReader(layout.shard_path(root, row[Column.SHARD])) as reader:
                header, _, _ = reader.header(row[Column.KEY])
            return record_format(header)
        except (AssetError, KeyError):
            continue
    return None


def declared_format(dataset_dir: str | Path, rows: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The format every record of ``dataset_dir`` must have (see the module docstring)."""
    root = Path(dataset_dir)
    try:
        content = read_dataset_yaml(root) if (root / layout.DATASET_YAML).is_file() else {}
    except AssetError:
        content = {}
    declared = declared_fields(content)
    if declared is None and rows:
        declared = _first_format(root, [r for r in rows if r.get(Column.SHARD)])
    expect = config_expectation(_saved_config(root, content))
    return {**(declared or {}), **expect} or None


def verify_dataset(dataset_dir: str | Path) -> VerifyReport:
    """Check every manifest row against its record; see the module docstring."""
    root = Path(dataset_dir)
    manifest = Manifest.load(root, required=True)
    report = VerifyReport()
    rows = manifest.rows()
    dup = [sid for sid, n in Counter(r[Column.SAMPLE_ID] for r in rows).items() if n > 1]
    report.problems += [f"sample {sid}: listed more than once in the manifest" for sid in sorted(dup)]
    kept = [r for r in rows if r[Column.STATUS] in KEPT_STATUSES or r[Column.SHARD]]
    report.problems += [f"sample {r[Column.SAMPLE_ID]}: status {r[Column.STATUS]} but no shard"
                        for r in kept if not r[Column.SHARD]]
    result = check_rows(root, kept, level="records", declared=declared_format(root, kept))
    report.checked, report.shards = result.checked, result.shards
    whole: dict[str, list[int]] = {}
    for p in result.problems:
        if p.whole_shard:
            whole.setdefault(p.shard, []).append(p.sample_id)
        else:
            report.problems.append(str(p))
    for shard, ids in whole.items():
        problem = next(p.problem for p in result.problems if p.shard == shard and p.whole_shard)
        name = shard if layout.is_shard_name(shard) else repr(shard)
        report.problems.append(f"shard {name}: {problem} ({len(ids)} manifest rows: samples "
                               f"{min(ids)}..{max(ids)})")
    for p in layout.tmp_files(root):
        report.warnings.append(f"leftover temporary file {p.relative_to(root)} (removed by a sweep)")
    referenced = {r[Column.SHARD] for r in kept}
    for name in layout.complete_shards(root):
        if name not in referenced:
            report.warnings.append(f"shard {name} is not referenced by the manifest (uncommitted)")
    return report


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
