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

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sfray.conventions import Column, Status
from sfray.data import layout
from sfray.data.manifest import Manifest, sample_row, sweep
from sfray.data.receipts import NUM_DROPPED, NUM_SAMPLES, ROWS, SHARD, UNIT, read_receipt, receipt_files
from sfray.data.shard import shard_name, write_shard
from sfray.errors import AssetError
from sfray.generation.failures import sample_failure
from sfray.io.atomic import atomic_write_json

__all__ = ["NUM_DROPPED", "NUM_SAMPLES", "ROWS", "SHARD", "UNIT", "drop_from_receipts", "quarantine",
           "read_receipt", "receipt_files", "recover", "write_unit"]


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
        try:
            receipt = write_shard(dataset_dir, kept)
        except Exception as exc:  # a full disk, a read-only or vanished directory, ...
            need = 2 * sum(len(b) for _, b in kept)
            raise sample_failure(dataset_dir, [i for i, _ in kept], exc, stage="storing", need=need) from None
        shard = receipt.name
        all_rows.extend(receipt.rows)
    for rec, row in zip(records, rows):
        if not rec:
            all_rows.append(sample_row(row, status=Status.DROPPED,
                                       reason=str(row.get(Column.REASON) or Status.DROPPED)))
    name = shard_name(list(unit_ids))
    body = {UNIT: name, SHARD: shard, NUM_SAMPLES: len(unit_ids), NUM_DROPPED: len(unit_ids) - len(kept),
            ROWS: all_rows}
    try:
        atomic_write_json(layout.receipts_dir(dataset_dir) / f"{name}{layout.RECEIPT_SUFFIX}", body)
    except OSError as exc:
        raise sample_failure(dataset_dir, list(unit_ids), exc, stage="logging the receipt of") from None
    return {k: body[k] for k in (UNIT, SHARD, NUM_SAMPLES, NUM_DROPPED)}


def quarantine(dataset_dir: str | Path, path: Path) -> Path:
    """Move a damaged file (shard, receipt) into ``DATASET/damaged/``, never deleting it."""
    target = Path(dataset_dir) / layout.DAMAGED_DIR / path.name
    target.parent.mkdir(exist_ok=True)
    if target.exists():
        target = target.with_name(f"{path.name}.{time.time_ns()}")
    os.replace(path, target)
    return target


def drop_from_receipts(dataset_dir: str | Path, sample_ids: Iterable[int], gone_shards: Iterable[str]) -> None:
    """Remove ``sample_ids`` from the receipts (and the receipts of ``gone_shards`` entirely), so a
    later fold does not bring back rows a rerun found damaged and is about to regenerate."""
    ids, gone = {int(i) for i in sample_ids}, set(gone_shards)
    for path in receipt_files(dataset_dir):
        body = read_receipt(path)
        if body[SHARD] and body[SHARD] in gone:
            path.unlink()
            continue
        rows = [r for r in body[ROWS] if int(r[Column.SAMPLE_ID]) not in ids]
        if len(rows) == len(body[ROWS]):
            continue
        if not rows:
            path.unlink()
        else:
            atomic_write_json(path, {**body, ROWS: rows})


def recover(dataset_dir: str | Path, *, at_start: bool = False, log: Any = None) -> Manifest:
    """Fold every receipt into the manifest (the commit), then sweep temporary files.

    Receipts whose shard is missing are ignored (and removed): their samples are regenerated. A
    receipt that cannot be read is moved to ``damaged/`` (and said on ``log``): its shard is then
    unreferenced and regenerated. ``at_start`` (no writer running) also moves complete shards that
    no receipt or manifest row references to ``orphans/``: a crash between publishing a shard and
    logging its receipt. A receipt naming a shard outside ``shards/`` stops the run (AssetError).
    """
    root = Path(dataset_dir)
    receipts, stale = [], []
    for path in receipt_files(root):
        try:
            body = read_receipt(path)
        except AssetError as exc:
            kept = quarantine(root, path)
            if log is not None:
                log.write(f"generate: {exc}; moved to {kept}, its samples will be regenerated\n")
            continue
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
