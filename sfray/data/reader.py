"""The one way to read committed records: manifest rows -> record bytes, one reader per shard.

Every consumer (the torch dataset, the Ray datasource's read tasks, the dataset preview, the
exporters through the torch dataset) reads through :class:`RecordReader`: it opens each shard
lazily once (``ShardReader``, read-only, fork-safe), keeps it for later rows of the same shard,
and never pickles an open handle, so it can travel into DataLoader workers and Ray tasks.
Only committed samples exist: the manifest, not the shard files, decides (:func:`committed_rows`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from sfray.conventions import KEPT_STATUSES, Column
from sfray.data import layout
from sfray.data.manifest import Manifest
from sfray.data.shard import ShardReader
from sfray.errors import AssetError


def committed_rows(dataset_dir: str | Path, statuses: Iterable[str] = KEPT_STATUSES) -> pa.Table:
    """Manifest rows (sample id order) whose status is in ``statuses``; AssetError without a manifest."""
    return Manifest.load(dataset_dir, required=True).select(tuple(statuses))


class RecordReader:
    """Record bytes of ``dataset_dir`` by (shard, key); one cached ``ShardReader`` per shard."""

    def __init__(self, dataset_dir: str | Path):
        self.root = Path(dataset_dir)
        self._readers: dict[str, ShardReader] = {}

    def get(self, shard: str, key: str) -> bytes:
        reader = self._readers.get(shard)
        if reader is None:
            reader = self._readers[shard] = ShardReader(layout.shard_path(self.root, shard))
        try:
            return reader.get(key)
        except KeyError as exc:
            raise AssetError(f"{self.root}: manifest lists {key} in {shard} but the shard lacks it; "
                             "run `sfray dataset verify`") from exc

    def row(self, row: dict[str, Any]) -> bytes:
        """The record of a manifest row (a dict with ``shard`` and ``key``)."""
        return self.get(row[Column.SHARD], row[Column.KEY])

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"])

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
