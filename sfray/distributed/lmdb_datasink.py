"""``LmdbShardDatasink``: Ray Data rows of encoded records -> atomic LMDB shards + receipts.

``write()`` runs in Ray write tasks: for every unit row it calls the storage protocol's
``write_unit`` (shard under a temporary name, published atomically, then a receipt file in the
write-ahead log) and returns only the small receipt summaries, never data (state set on a sink
inside a write task does not travel back to the driver; ``on_write_complete``, on the driver, sums
the timings the rows carry into ``stats``). The commit (receipts -> manifest) is the
generation run's ``recover`` step on the driver. A retried write of the same unit is a no-op
because the shard name derives from its sample ids and identical content is detected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ray.data.block import Block, BlockAccessor
from ray.data.datasource import Datasink

from sfray.distributed.columns import COL_BUSY, COL_ENCODE, COL_IDS, COL_RECORDS, COL_ROWS
from sfray.generation.storage import write_unit


class LmdbShardDatasink(Datasink):
    """Writes each incoming unit row as one shard of ``dataset_dir``."""

    def __init__(self, dataset_dir: str):
        self.dataset_dir = dataset_dir
        #: Filled on the driver by ``on_write_complete``: units written, and the seconds the
        #: generator actors and the encode stage spent on them (``bench/generate.py`` reads it).
        self.stats: dict[str, float] = {}

    def get_name(self) -> str:
        return "LmdbShard"

    @property
    def supports_distributed_writes(self) -> bool:
        # Writers on other nodes need dataset_dir on shared storage; the shard is still built
        # locally next to its final name and renamed (LMDB dislikes network filesystems).
        return True

    def write(self, blocks: Iterable[Block], ctx: Any) -> list[dict[str, Any]]:
        receipts: list[dict[str, Any]] = []
        for block in blocks:
            for row in BlockAccessor.for_block(block).iter_rows(public_row_format=False):
                rows = json.loads(row[COL_ROWS])
                records = list(row[COL_RECORDS])
                receipt = write_unit(self.dataset_dir, [int(i) for i in row[COL_IDS]], records, rows)
                receipt[COL_BUSY] = float(row.get(COL_BUSY, 0.0) or 0.0)
                receipt[COL_ENCODE] = float(row.get(COL_ENCODE, 0.0) or 0.0)
                receipts.append(receipt)
        return receipts

    def on_write_complete(self, write_result: Any) -> None:
        done = [r for task in write_result.write_returns for r in task]
        self.stats = {"units": float(len(done)), COL_BUSY: sum(r[COL_BUSY] for r in done),
                      COL_ENCODE: sum(r[COL_ENCODE] for r in done)}
