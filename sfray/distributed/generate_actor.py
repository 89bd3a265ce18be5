"""``GeneratorActor``: the Ray Data callable class that holds a generator (on a GPU when given one).

Ray builds one per pool slot (``__init__`` builds the producer: head, generator, annotator, once)
and calls it with batches of work units (one row = one future shard). It returns one row per unit
with the encoded records; the LMDB datasink writes them. Generation and annotation share the
actor because the annotator needs the generator's mesh and depth, and actor -> actor stages never
fuse in Ray Data. The config travels as its YAML text (a few kB).

A failure in the constructor or a call is logged with its traceback under ``DATASET/logs/`` and
re-raised as one ``SfrayError`` line naming the samples and the cause
(``sfray.generation.failures``), which the executor hands to the user instead of a stack dump.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from sfray.config.loader import config_from_yaml_text
from sfray.config.schema import GenerateJobConfig
from sfray.generation import faults
from sfray.generation.failures import sample_failure
from sfray.generation.producer import SampleProducer

#: Column names of the rows flowing into the actors (unit, ids) and on into the datasink (ids, ...).
COL_UNIT = "unit"
COL_IDS = "sample_ids"
COL_RECORDS = "records"  # list of record bytes, b"" for a dropped sample
COL_ROWS = "rows_json"  # JSON list of manifest rows (small)


class GeneratorActor:
    """Callable class for ``Dataset.map_batches``: work units in, encoded records out."""

    def __init__(self, config_yaml: str):
        self.cfg = config_from_yaml_text(GenerateJobConfig, config_yaml)
        try:
            self.producer = SampleProducer(self.cfg)
        except Exception as exc:
            raise sample_failure(self.cfg.output_dir, [], exc, stage="building the generator") from None
        self.calls = 0

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {COL_IDS: [], COL_RECORDS: [], COL_ROWS: []}
        for ids in batch[COL_IDS]:
            ids = np.asarray(ids, dtype=np.int64)
            try:
                produced = self.producer.produce(ids)
            except Exception as exc:
                raise sample_failure(self.cfg.output_dir, ids.tolist(), exc) from None
            out[COL_IDS].append(ids.tolist())
            out[COL_RECORDS].append([p.record or b"" for p in produced])
            out[COL_ROWS].append(json.dumps([p.row for p in produced]))
        self.calls += 1
        # testing only (faults.fail_actor_after_batches): die once, hard, after k calls
        faults.kill_worker_once(self.cfg.output_dir, self.calls, self.cfg.faults.fail_actor_after_batches)
        return out
