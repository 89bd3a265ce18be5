"""``LmdbShardDatasink``: Ray Data rows of encoded records -> atomic LMDB shards + manifest commit.

``write()`` runs in Ray write tasks: for every unit row it builds the shard under a temporary
name, renames it into ``shards/`` and then logs a small receipt file (write-ahead log); it
returns only the receipts, never data (state set on the sink inside a task does not travel back,
RAY.md §B6.8). ``on_write_complete()`` runs on the driver and merges receipts into
``manifest.parquet``: the commit point. A retried write of the same unit is a no-op because the
shard name derives from its sample ids and identical content is detected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ray.data.block import Block, BlockAccessor
from ray.data.datasource import Datasink

from sfray.distributed.generate_actor import COL_IDS, COL_RECORDS, COL_ROWS


class LmdbShardDatasink(Datasink):
    """Writes each incoming unit row as one shard of ``dataset_dir``."""

    def __init__(self, dataset_dir: str):
        self.dataset_dir = dataset_dir

    def get_name(self) -> str:
        return "LmdbShard"

    @property
    def supports_distributed_writes(self) -> bool:
        # Writers on other nodes need dataset_dir on shared storage; the shard is still built
        # locally next to its final name and renamed (LMDB dislikes network filesystems).
        return True

    def write(self, blocks: Iterable[Block], ctx: Any) -> list[dict[str, Any]]:
        from sfray.generation.commit import write_unit

        receipts: list[dict[str, Any]] = []
        for block in blocks:
            for row in BlockAccessor.for_block(block).iter_rows(public_row_format=False):
                rows = json.loads(row[COL_ROWS])
                records = list(row[COL_RECORDS])
                receipts.append(write_unit(self.dataset_dir, [int(i) for i in row[COL_IDS]], records, rows))
        return receipts

    def on_write_complete(self, write_result: Any) -> None:
        from sfray.generation.commit import recover

        recover(self.dataset_dir)
