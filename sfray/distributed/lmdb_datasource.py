"""Ray Data datasource over an sfray dataset directory (docs/dataset.md): committed records only.

One read task per group of shards (``parallelism`` groups at most, balanced by row count); each
task reads through ``sfray.data.reader.RecordReader`` in the worker (shards opened lazily,
read-only, once per task) and yields Arrow blocks
of at most ``rows_per_block`` rows, so memory stays bounded whatever the shard size. Rows come in
manifest order within a task. With ``decode=True`` (default) a row holds the decoded record:
arrays as Ray tensor columns (image (3, H, W) uint8, segmentation, depth float32, mask, landmarks,
camera, shape, expression, pose, z), scalars as plain columns, the quality dict as JSON text in
``quality``. With ``decode=False`` a row is ``sample_id, shard, key, checksum, record`` (bytes),
for consumers that decode themselves. Records of one dataset are assumed to carry the same fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata
from ray.data.extensions import ArrowTensorArray

from sfray.conventions import KEPT_STATUSES, Column, Field
from sfray.data import layout
from sfray.data.reader import RecordReader, committed_rows
from sfray.data.record import decode_record

DEFAULT_ROWS_PER_BLOCK = 64
#: Column of the raw record bytes (``decode=False``).
RECORD_COLUMN = "record"
_ROW_COLUMNS = (Column.SAMPLE_ID, Column.SHARD, Column.KEY, Column.CHECKSUM, Column.NBYTES)


def _tensor_column(values: list[np.ndarray]) -> pa.Array:
    if all(v.shape == values[0].shape for v in values):
        return ArrowTensorArray.from_numpy(np.stack(values))
    ragged = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        ragged[i] = v
    return ArrowTensorArray.from_numpy(ragged)


def _decoded_table(recs: list[dict[str, Any]], base: dict[str, list[Any]]) -> pa.Table:
    cols: dict[str, Any] = {k: pa.array(v) for k, v in base.items()}
    names = sorted(set.intersection(*(set(r) for r in recs)) - set(cols))
    for name in names:
        values = [r[name] for r in recs]
        if isinstance(values[0], np.ndarray):
            cols[name] = _tensor_column(values)
        elif isinstance(values[0], (dict, list)) or name == Field.QUALITY:
            cols[name] = pa.array([json.dumps(v, sort_keys=True) for v in values], pa.string())
        else:
            cols[name] = pa.array(values)
    return pa.table(cols)


def _read_rows(root: str, rows: list[dict[str, Any]], decode: bool, fields: tuple[str, ...] | None,
               rows_per_block: int) -> Iterator[pa.Table]:
    """The body of one read task: runs inside a Ray worker, opens its own shard handles."""
    with RecordReader(root) as reader:
        for start in range(0, len(rows), rows_per_block):
            chunk = rows[start:start + rows_per_block]
            raw = [reader.row(row) for row in chunk]
            base: dict[str, list[Any]] = {Column.SAMPLE_ID: [int(r[Column.SAMPLE_ID]) for r in chunk],
                                          Column.SHARD: [r[Column.SHARD] for r in chunk],
                                          Column.KEY: [r[Column.KEY] for r in chunk]}
            if not decode:
                base[Column.CHECKSUM] = [r[Column.CHECKSUM] for r in chunk]
                cols = {k: pa.array(v) for k, v in base.items()}
                table = pa.table({**cols, RECORD_COLUMN: pa.array(raw, pa.binary())})
            else:
                table = _decoded_table([decode_record(b, fields) for b in raw], base)
            yield table


class SfrayLmdbDatasource(Datasource):
    """Reads the committed records of ``dataset_dir`` (manifest rows with a status in ``statuses``)."""

    def __init__(self, dataset_dir: str | Path, *, decode: bool = True, fields: Iterable[str] | None = None,
                 statuses: Iterable[str] = KEPT_STATUSES, rows_per_block: int = DEFAULT_ROWS_PER_BLOCK):
        self.root = str(Path(dataset_dir).resolve())
        self.decode = decode
        self.fields = None if fields is None else tuple(fields)
        self.rows_per_block = int(rows_per_block)
        self._rows = committed_rows(self.root, statuses).select(list(_ROW_COLUMNS)).to_pylist()

    def get_name(self) -> str:
        return "SfrayLmdb"

    def estimate_inmemory_data_size(self) -> int | None:
        raw = sum(int(r[Column.NBYTES]) for r in self._rows)
        return raw if not self.decode else None  # decoded size depends on the image codec

    def _groups(self, parallelism: int) -> list[list[dict[str, Any]]]:
        by_shard: dict[str, list[dict[str, Any]]] = {}
        for row in self._rows:
            by_shard.setdefault(row[Column.SHARD], []).append(row)
        n = max(1, min(int(parallelism) if parallelism and parallelism > 0 else len(by_shard), len(by_shard)))
        groups: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        for shard_rows in sorted(by_shard.values(), key=len, reverse=True):  # greedy balance by rows
            min(groups, key=len).extend(shard_rows)
        for g in groups:
            g.sort(key=lambda r: r[Column.SAMPLE_ID])
        return [g for g in groups if g]

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        tasks = []
        for group in self._groups(parallelism):
            shards = sorted({r[Column.SHARD] for r in group})
            meta = BlockMetadata(num_rows=len(group), size_bytes=sum(int(r[Column.NBYTES]) for r in group),
                                 exec_stats=None,
                                 input_files=tuple(str(layout.shard_path(self.root, s)) for s in shards))
            args = (self.root, group, self.decode, self.fields, self.rows_per_block)
            tasks.append(ReadTask(lambda a=args: _read_rows(*a), meta, per_task_row_limit=per_task_row_limit))
        return tasks


def read_sfray_dataset(path: str | Path, *, decode: bool = True, fields: Iterable[str] | None = None,
                       statuses: Iterable[str] = KEPT_STATUSES,
                       rows_per_block: int = DEFAULT_ROWS_PER_BLOCK, **read_kwargs: Any) -> ray.data.Dataset:
    """``ray.data.Dataset`` of a dataset directory; ``read_kwargs`` go to ``ray.data.read_datasource``."""
    source = SfrayLmdbDatasource(path, decode=decode, fields=fields, statuses=statuses,
                                 rows_per_block=rows_per_block)
    return ray.data.read_datasource(source, **read_kwargs)
