"""The storage protocol of a generation run: shard + receipt per unit, then the manifest commit.

Write path of one unit (in whichever worker produced it): :func:`write_unit` builds the shard
(``sfray.data.shard.write_shard``: temporary name, fsync, atomic publish) and then logs a small
receipt file, ``DATASET/receipts/<unit>.json``, written atomically and durably
(``sfray.io.atomic``). The manifest is rewritten only by :func:`recover`, on the driver, at the
start and end of every run: it folds every receipt whose shard exists into ``manifest.parquet``.
A driver killed mid-run therefore loses no finished shard, and a shard without a receipt is
simply rebuilt (identically) by the next run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sfray.conventions import Column, Status
from sfray.data import layout
from sfray.data.manifest import Manifest, sample_row, sweep
from sfray.data.shard import shard_name, write_shard
from sfray.io.atomic import atomic_write_json

#: Receipt body keys. ``rows`` holds the manifest rows of the unit (kept and dropped samples).
UNIT, SHARD, NUM_SAMPLES, NUM_DROPPED, ROWS = "unit", "shard", "num_samples", "num_dropped", "rows"


def read_receipt(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def receipt_files(dataset_dir: str | Path) -> list[Path]:
    """Complete receipt files, sorted (temporary ones excluded)."""
    rdir = layout.receipts_dir(dataset_dir)
    if not rdir.is_dir():
        return []
    return sorted(p for p in rdir.glob(f"*{layout.RECEIPT_SUFFIX}") if not layout.is_tmp(p.name))


def write_unit(dataset_dir: str | Path, unit_ids: Sequence[int], records: Sequence[bytes | None],
               rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Write one unit's shard (kept samples) and its receipt; return the small receipt summary.

    ``records[i]`` is the encoded record of ``unit_ids[i]`` or empty/None when the quality gate
    dropped it; ``rows[i]`` is that sample's summary (see ``SampleProducer``), used for dropped rows.
    """
    kept = [(int(i), bytes(r)) for i, r in zip(unit_ids, records) if r]
    all_rows: list[dict[str, Any]] = []
    shard = ""
    if kept:
        receipt = write_shard(dataset_dir, kept)
        shard = receipt.name
        all_rows.extend(receipt.rows)
    for rec, row in zip(records, rows):
        if not rec:
            all_rows.append(sample_row(row, status=Status.DROPPED,
                                       reason=str(row.get(Column.REASON) or Status.DROPPED)))
    name = shard_name(list(unit_ids))
    body = {UNIT: name, SHARD: shard, NUM_SAMPLES: len(unit_ids), NUM_DROPPED: len(unit_ids) - len(kept),
            ROWS: all_rows}
    atomic_write_json(layout.receipts_dir(dataset_dir) / f"{name}{layout.RECEIPT_SUFFIX}", body)
    return {k: body[k] for k in (UNIT, SHARD, NUM_SAMPLES, NUM_DROPPED)}


def recover(dataset_dir: str | Path, *, at_start: bool = False) -> Manifest:
    """Fold every receipt into the manifest (the commit), then sweep temporary files.

    Receipts whose shard is missing are ignored (and removed): their samples are regenerated.
    ``at_start`` (no writer running) also moves complete shards that no receipt or manifest row
    references to ``orphans/``: a crash between publishing a shard and logging its receipt.
    """
    root = Path(dataset_dir)
    receipts, stale = [], []
    for path in receipt_files(root):
        body = read_receipt(path)
        if body[SHARD] and not layout.shard_path(root, body[SHARD]).is_file():
            stale.append(path)
            continue
        receipts.append(body)
    rows = [row for body in receipts for row in body[ROWS]]
    manifest = Manifest.commit(root, rows) if rows else Manifest.load(root)
    for path in stale:
        path.unlink(missing_ok=True)
    sweep(root, unreferenced="move" if at_start else "keep")
    return manifest
