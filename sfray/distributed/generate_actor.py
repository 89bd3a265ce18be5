"""``GeneratorActor``: the Ray Data callable class that holds a generator (on a GPU when given one).

Ray builds one per pool slot (``__init__`` loads the head, generator and annotator once) and
calls it with batches of work units (one row = one future shard). It returns one row per unit
with the encoded records; the LMDB datasink writes them. Generation and annotation share the
actor because the annotator needs the generator's mesh and depth, and actor->actor stages never
fuse (reference/RAY.md §B1).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from sfray.config.schema import GenerateJobConfig

#: Column names of the rows flowing into the actors (unit, ids) and on into the datasink (ids, ...).
COL_UNIT = "unit"
COL_IDS = "sample_ids"
COL_RECORDS = "records"  # list of record bytes, b"" for a dropped sample
COL_ROWS = "rows_json"  # JSON list of manifest rows (small)


def config_from_yaml(text: str) -> GenerateJobConfig:
    from sfray.config.loader import config_from_yaml_text

    return config_from_yaml_text(GenerateJobConfig, text)


class GeneratorActor:
    """Callable class for ``Dataset.map_batches``: work units in, encoded records out."""

    def __init__(self, config_yaml: str, fault_dir: str | None = None):
        from sfray.generation.producer import SampleProducer

        self.cfg = config_from_yaml(config_yaml)
        self.producer = SampleProducer(self.cfg)
        self.calls = 0
        self.fault_dir = Path(fault_dir) if fault_dir else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {COL_IDS: [], COL_RECORDS: [], COL_ROWS: []}
        for ids in batch[COL_IDS]:
            ids = np.asarray(ids, dtype=np.int64)
            produced = self.producer.produce(ids)
            out[COL_IDS].append(ids.tolist())
            out[COL_RECORDS].append([p.record or b"" for p in produced])
            out[COL_ROWS].append(json.dumps([p.row for p in produced]))
        self.calls += 1
        self._maybe_fail()
        return out

    def _maybe_fail(self) -> None:
        """Fault injection (``ray.fail_actor_after_batches``): die once, hard, after k calls."""
        k = self.cfg.ray.fail_actor_after_batches
        if k < 0 or self.calls < k or self.fault_dir is None:
            return
        self.fault_dir.mkdir(parents=True, exist_ok=True)
        try:  # only the first actor to get here dies; its restarted incarnation carries on
            fd = os.open(self.fault_dir / "actor-killed", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(17)
