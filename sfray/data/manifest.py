"""``manifest.parquet``: the commit record of a dataset, one row per committed sample.

A sample exists once its row is in the manifest; a shard on disk that no row references is
garbage from an interrupted run (docs/dataset.md). Columns (names: ``sfray.conventions.Column``)::

    sample_id int64 | shard, key, checksum string | nbytes int64 | status (a ``Status``: ok|flagged|dropped)
    reason string | seed int64 | generator string | camera, shape, expression, pose list<float32>
    quality_<name> float64 | bool | string   (one flat column per quality figure; other extra
                                               keys of committed rows are kept the same way)

Dropped samples (quality gate) keep a row with an empty shard, so a resumed job does not
regenerate them. :meth:`Manifest.commit` rewrites the file atomically (``sfray.io.atomic``): a failed
commit leaves the previous manifest in place. The writer is the driver only (the generation run's
recover step, ``sfray.generation.storage.recover``); concurrent committers are not supported.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sfray.conventions import Column, Field, Status
from sfray.data import layout
from sfray.data.receipts import receipt_shards
from sfray.errors import AssetError, SfrayError
from sfray.io.atomic import atomic_path

#: What :func:`sweep` may do with complete shards that no row references.
SWEEP_MODES = ("keep", "move", "delete")
#: The valid status strings (old manifests hold the same strings).
STATUSES = tuple(s.value for s in Status)
_LISTS = (Column.CAMERA, Column.SHAPE, Column.EXPRESSION, Column.POSE)
BASE_SCHEMA = pa.schema(
    [(Column.SAMPLE_ID, pa.int64()), (Column.SHARD, pa.string()), (Column.KEY, pa.string()),
     (Column.CHECKSUM, pa.string()), (Column.NBYTES, pa.int64()), (Column.STATUS, pa.string()),
     (Column.REASON, pa.string()), (Column.SEED, pa.int64()), (Column.GENERATOR, pa.string())]
    + [(name, pa.list_(pa.float32())) for name in _LISTS]
)


def _quality_value(v: Any) -> bool | float | str | None:
    if hasattr(v, "item") and np.ndim(v) == 0:
        v = v.item()
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return str(v)


def sample_row(sample: Mapping[str, Any], *, shard: str = "", key: str = "", checksum: str = "",
               nbytes: int = 0, status: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """The manifest row of one sample dict (decoded record or pipeline output).

    ``status``/``reason`` default to the sample's own ``status``/``reason`` entries, else ok / "".
    """
    row: dict[str, Any] = {
        Column.SAMPLE_ID: int(sample[Field.SAMPLE_ID]), Column.SHARD: shard, Column.KEY: key,
        Column.CHECKSUM: checksum, Column.NBYTES: int(nbytes),
        Column.STATUS: str(status or sample.get(Field.STATUS) or Status.OK),
        Column.REASON: reason if reason is not None else str(sample.get(Field.REASON) or ""),
        Column.SEED: -1 if sample.get(Field.SEED) is None else int(sample[Field.SEED]),
        Column.GENERATOR: str(sample.get(Field.GENERATOR) or ""),
    }
    for name in _LISTS:
        v = sample.get(name)
        row[name] = [] if v is None else np.asarray(v, dtype=np.float32).reshape(-1).tolist()
    for qname, qvalue in sorted((sample.get(Field.QUALITY) or {}).items()):
        row[Column.QUALITY_PREFIX + str(qname)] = _quality_value(qvalue)
    if row[Column.STATUS] not in STATUSES:
        raise SfrayError(f"sample {row[Column.SAMPLE_ID]}: status '{row[Column.STATUS]}' is not one of "
                         f"{STATUSES}")
    return row


def _rows_of(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Flatten receipts (objects or dicts with ``rows``) and plain rows into rows."""
    rows: list[dict[str, Any]] = []
    for item in items:
        sub = getattr(item, "rows", None)
        if sub is None and isinstance(item, Mapping) and "rows" in item:
            sub = item["rows"]
        rows.extend(sub if sub is not None else [item])
    return rows


def _rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    base = {f.name: [r.get(f.name) for r in rows] for f in BASE_SCHEMA}
    table = pa.Table.from_pydict(base, schema=BASE_SCHEMA)
    # Quality (and any other extra) columns: flat bool / float64 / string, null where absent.
    extras = sorted({k for r in rows for k in r} - set(BASE_SCHEMA.names))
    for name in extras:
        values = [_quality_value(r.get(name)) for r in rows]
        kinds = {type(v) for v in values if v is not None}
        typ = pa.bool_() if kinds == {bool} else pa.float64() if kinds == {float} else pa.string()
        if typ == pa.string():
            values = [None if v is None else str(v) for v in values]
        table = table.append_column(pa.field(name, typ), pa.array(values, type=typ))
    return table


class Manifest:
    """An in-memory manifest (a pyarrow Table sorted by sample_id)."""

    def __init__(self, table: pa.Table | None = None):
        self.table = table if table is not None else BASE_SCHEMA.empty_table()

    @classmethod
    def load(cls, dataset_dir: str | Path, *, required: bool = False) -> Manifest:
        """Read ``DATASET/manifest.parquet``; an absent file is an empty manifest unless ``required``."""
        path = Path(dataset_dir) / layout.MANIFEST_FILE
        if not path.is_file():
            if required:
                raise AssetError(f"{path}: no manifest; is {dataset_dir} an sfray dataset directory?")
            return cls()
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise AssetError(f"{path}: not a readable Parquet manifest ({exc}); if the dataset's "
                             f"receipts/ are intact, moving the file aside rebuilds it on the next run") from None
        missing = [c for c in (Column.SAMPLE_ID, Column.SHARD, Column.KEY, Column.CHECKSUM, Column.STATUS)
                   if c not in table.column_names]
        if missing:
            raise AssetError(f"{path}: not an sfray manifest (no column(s) {missing})")
        return cls(table)

    @classmethod
    def commit(cls, dataset_dir: str | Path, receipts: Iterable[Any]) -> Manifest:
        """Add the rows of ``receipts`` (ShardReceipts, their dicts, or rows) and rewrite atomically.

        Ids already committed keep their existing row (a retried or duplicated write is a no-op).
        Every referenced shard must exist as a complete shard, else nothing is written.
        """
        root = Path(dataset_dir)
        current = cls.load(root)
        done = set(current.committed_ids().tolist())
        fresh: list[dict[str, Any]] = []
        for row in _rows_of(receipts):
            sid = int(row[Column.SAMPLE_ID])
            if sid in done:
                continue
            done.add(sid)
            if row.get(Column.STATUS) not in STATUSES:
                raise SfrayError(f"manifest row {sid}: status '{row.get(Column.STATUS)}' is not one of "
                                 f"{STATUSES}")
            shard = row.get(Column.SHARD) or ""
            if layout.is_tmp(shard):
                raise SfrayError(f"manifest row {sid}: shard '{shard}' is a temporary file, "
                                 "not a committed shard")
            if row[Column.STATUS] != Status.DROPPED and not layout.shard_path(root, shard).is_file():
                raise AssetError(f"manifest row {sid}: shard {layout.shard_path(root, shard)} does not exist")
            fresh.append(row)
        if not fresh and (root / layout.MANIFEST_FILE).is_file():
            return current
        table = pa.concat_tables([current.table, _rows_to_table(fresh)], promote_options="permissive")
        table = table.sort_by(Column.SAMPLE_ID)
        with atomic_path(root / layout.MANIFEST_FILE) as tmp:
            pq.write_table(table, tmp)
        return cls(table)

    @classmethod
    def remove(cls, dataset_dir: str | Path, sample_ids: Iterable[int]) -> Manifest:
        """Drop the rows of ``sample_ids`` and rewrite atomically (a rerun found their records
        missing or corrupt and will make them again)."""
        root = Path(dataset_dir)
        current = cls.load(root)
        gone = pa.array(sorted({int(i) for i in sample_ids}), pa.int64())
        table = current.table.filter(pc.invert(pc.is_in(current.table.column(Column.SAMPLE_ID), gone)))
        with atomic_path(root / layout.MANIFEST_FILE) as tmp:
            pq.write_table(table, tmp)
        return cls(table)

    def __len__(self) -> int:
        return self.table.num_rows

    def committed_ids(self) -> np.ndarray:
        """(N,) int64 ids with a row, dropped ones included (a resume must not redo them)."""
        return self.table.column(Column.SAMPLE_ID).to_numpy().astype(np.int64)

    def rows(self, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts in sample_id order, optionally only those with a status in ``statuses``."""
        return self.select(statuses).to_pylist()

    def select(self, statuses: Iterable[str] | None = None) -> pa.Table:
        if statuses is None:
            return self.table
        wanted = pa.array([str(s) for s in statuses], pa.string())
        return self.table.filter(pc.is_in(self.table.column(Column.STATUS), wanted))

    def shards(self) -> list[str]:
        """Names of the shards referenced by at least one row."""
        return sorted(s for s in set(self.table.column(Column.SHARD).to_pylist()) if s)

    def counts(self) -> dict[str, Any]:
        """Totals by status and by reason (dataset.yaml and ``sfray dataset stats``)."""
        status = self.table.column(Column.STATUS).to_pylist()
        reason = self.table.column(Column.REASON).to_pylist()
        by_reason: dict[str, int] = {}
        for s, r in zip(status, reason):
            if r:
                by_reason[r] = by_reason.get(r, 0) + 1
        return {"total": len(status), "by_status": {s: status.count(s) for s in STATUSES},
                "by_reason": dict(sorted(by_reason.items())), "shards": len(self.shards())}


def sweep(dataset_dir: str | Path, *, unreferenced: str = "keep") -> dict[str, list[str]]:
    """Remove leftovers of interrupted writes; run only while no writer is active (job start).

    Refuses a directory that is not an sfray dataset. Deletes tmp shards and tmp manifests.
    Complete shards that neither a manifest row nor a receipt (``sfray.data.receipts``: shards
    about to be committed) references are kept (``"keep"``: a retry with the same ids rewrites
    them idempotently), moved to ``DATASET/orphans/`` (``"move"``: lets a rerun rebuild them even
    if its bytes differ), or deleted (``"delete"``). Committed shards are never touched.
    """
    if unreferenced not in SWEEP_MODES:
        raise SfrayError(f"sweep: unreferenced='{unreferenced}' is not one of {SWEEP_MODES}")
    root = layout.require_dataset(dataset_dir, "sweep it")
    removed = []
    for p in layout.tmp_files(root):
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
        removed.append(str(p.relative_to(root)))
    referenced = set(Manifest.load(root).shards()) | receipt_shards(root)
    orphans = [n for n in layout.complete_shards(root) if n not in referenced]
    moved = []
    for name in orphans:
        src = layout.shard_path(root, name)
        if unreferenced == "move":
            (root / layout.ORPHANS_DIR).mkdir(exist_ok=True)
            os.replace(src, root / layout.ORPHANS_DIR / src.name)
            moved.append(name)
        elif unreferenced == "delete":
            src.unlink()
            moved.append(name)
    return {"removed_tmp": removed, "unreferenced": orphans, "moved_or_deleted": moved}
