"""``GeneratorActor``: the Ray Data callable class that holds a generator (on a GPU when given one).

Ray builds one per pool slot (``__init__`` builds the producer: head, generator, annotator, once)
and calls it with batches of work units (one row = one future shard). Generation, annotation and
the quality figures share the actor because the annotator needs the generator's mesh and depth,
and actor -> actor stages never fuse in Ray Data. What it returns depends on the layout
(``ray.encode_workers``, docs/architecture.md):

* two-stage (the default): one row per unit with the samples' *raw* record fields
  (:data:`COL_RAW`, packed by ``sfray.distributed.encode_stage``); the CPU encode stage turns
  them into record bytes, so the device never waits for a PNG encoder;
* single-stage (``ray.encode_workers=0``): the records are encoded here (:data:`COL_RECORDS`).

Each row also carries the seconds this call kept the actor busy (:data:`COL_BUSY`) and, in the
single-stage layout, the part of them spent encoding (:data:`COL_ENCODE`), which the datasink sums
up for ``bench/generate.py``. The config travels as its YAML text (a few kB).

A failure in the constructor or a call is logged with its traceback under ``DATASET/logs/`` and
re-raised as one ``SfrayError`` line naming the samples and the cause
(``sfray.generation.failures``), which the executor hands to the user instead of a stack dump.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from sfray.config.loader import config_from_yaml_text
from sfray.config.schema import GenerateJobConfig
from sfray.distributed.columns import COL_BUSY, COL_ENCODE, COL_IDS, COL_RAW, COL_RECORDS, COL_ROWS
from sfray.distributed.encode_stage import pack_raw
from sfray.generation import faults
from sfray.generation.failures import sample_failure
from sfray.generation.producer import SampleProducer, encode_samples


class GeneratorActor:
    """Callable class for ``Dataset.map_batches``: work units in, raw (or encoded) samples out."""

    def __init__(self, config_yaml: str, encode: bool = False):
        self.cfg = config_from_yaml_text(GenerateJobConfig, config_yaml)
        self.encode = bool(encode)
        try:
            self.producer = SampleProducer(self.cfg)
        except Exception as exc:
            raise sample_failure(self.cfg.output_dir, [], exc, stage="building the generator") from None
        self.calls = 0

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        payload = COL_RECORDS if self.encode else COL_RAW
        out: dict[str, list[Any]] = {COL_IDS: [], payload: [], COL_ROWS: [], COL_BUSY: [], COL_ENCODE: []}
        for ids in batch[COL_IDS]:
            start = time.perf_counter()
            ids = np.asarray(ids, dtype=np.int64)
            try:
                raw = self.producer.generate(ids)
                made = time.perf_counter()
                if self.encode:
                    data = [p.record or b"" for p in encode_samples(raw, self.cfg.generate)]
                else:
                    data = pack_raw(raw)
            except Exception as exc:
                raise sample_failure(self.cfg.output_dir, ids.tolist(), exc) from None
            out[COL_IDS].append(ids.tolist())
            out[payload].append(data)
            out[COL_ROWS].append(json.dumps([r.row for r in raw]))
            end = time.perf_counter()
            out[COL_BUSY].append(end - start)
            out[COL_ENCODE].append(end - made if self.encode else 0.0)  # the encode stage adds its own
        self.calls += 1
        # testing only (faults.fail_actor_after_batches): die once, hard, after k calls
        faults.kill_worker_once(self.cfg.output_dir, self.calls, self.cfg.faults.fail_actor_after_batches)
        return out
