"""The CPU encode stage of two-stage generation: raw record fields in, record bytes out.

The generator actor (``sfray.distributed.generate_actor``) hands each unit's samples over as
raw arrays, one pickled ``dict`` of record fields per sample (:func:`pack_raw`: NumPy arrays
pickle as their bytes plus a small header, protocol 5). :func:`encode_units` runs as a pool of
Ray tasks (``ray.encode_workers``, by default the node's CPUs the generator actors leave free)
and encodes them with ``sfray.generation.producer.encode_samples``, the same function the
in-process executor calls, so the bytes do not depend on the layout. A dropped sample travels as
``b""`` and stays ``b""``. The rows then go to the LMDB datasink unchanged but for the payload.

The pickles never leave the run: they are made and read by this run's own workers, through Ray's
object store, and never stored.
"""

from __future__ import annotations

import pickle
import time
from typing import Any

import numpy as np

from sfray.config.loader import config_from_yaml_text
from sfray.config.schema import GenerateJobConfig
from sfray.distributed.columns import COL_ENCODE, COL_IDS, COL_RAW, COL_RECORDS
from sfray.generation.failures import sample_failure
from sfray.generation.producer import RawSample, encode_samples


def pack_raw(raw: list[RawSample]) -> list[bytes]:
    """One pickled record-field dict per sample (``b""`` where the gate dropped it)."""
    return [b"" if r.fields is None else pickle.dumps(r.fields, protocol=5) for r in raw]


def unpack_raw(ids: list[int], packed: list[bytes]) -> list[RawSample]:
    return [RawSample(int(i), pickle.loads(p) if len(p) else None) for i, p in zip(ids, packed)]


def encode_units(batch: dict[str, Any], *, config_yaml: str) -> dict[str, Any]:
    """``map_batches`` function (a task pool): replaces :data:`COL_RAW` by :data:`COL_RECORDS`."""
    cfg = config_from_yaml_text(GenerateJobConfig, config_yaml)
    records, seconds = [], []
    for ids, packed in zip(batch[COL_IDS], batch[COL_RAW]):
        start = time.perf_counter()
        ids = [int(i) for i in np.asarray(ids).tolist()]
        try:
            made = encode_samples(unpack_raw(ids, list(packed)), cfg.generate)
        except Exception as exc:
            raise sample_failure(cfg.output_dir, ids, exc, stage="encoding") from None
        records.append([m.record or b"" for m in made])
        seconds.append(time.perf_counter() - start)
    out = {k: v for k, v in batch.items() if k != COL_RAW}
    out[COL_RECORDS] = records
    out[COL_ENCODE] = [float(a) + b for a, b in zip(batch.get(COL_ENCODE, [0.0] * len(seconds)), seconds)]
    return out
