"""Training rows straight from a generation pipeline (``data.source=stream``): no shard is written.

The generator actors of ``sfray generate`` make the records; instead of the LMDB datasink, a
``map_batches`` decodes them into training columns that flow into the Train workers' dataset
shards. :func:`generator_records` is the only function that knows the generation pipeline's
pieces (work planning, the actor class and its columns). Epoch ``e`` of a stream uses the fresh
ids ``[e * samples_per_epoch, (e + 1) * samples_per_epoch)``; the held-out samples come from a
disjoint id range (``data.stream.val_id_offset``). Samples are pure functions of (seed, id,
config), so a restarted stream makes the same samples again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import ray

from sfray.config.schema import GenerateJobConfig
from sfray.config.train import StreamSection
from sfray.train.data import records_to_columns

#: Columns of the rows generator_records yields.
COL_SAMPLE_ID = "sample_id"
COL_RECORD = "record"


def load_generation_config(stream: StreamSection) -> GenerateJobConfig:
    from sfray.config.loader import load_config

    return load_config(GenerateJobConfig, stream.generate_config, list(stream.overrides))


def _flatten_units(batch: dict[str, np.ndarray]) -> dict[str, list]:
    from sfray.distributed.columns import COL_IDS, COL_RECORDS

    ids: list[int] = []
    records: list[bytes] = []
    for unit_ids, unit_records in zip(batch[COL_IDS], batch[COL_RECORDS]):
        for sid, rec in zip(unit_ids, unit_records):
            if rec:  # b"": the quality gate dropped the sample
                ids.append(int(sid))
                records.append(bytes(rec))
    return {COL_SAMPLE_ID: ids, COL_RECORD: records}


def generator_records(gen_cfg: GenerateJobConfig, sample_ids: np.ndarray, *, actors: int, cpus_per_actor: float,
                      gpus_per_actor: float) -> ray.data.Dataset:
    """Rows ``(sample_id, record bytes)`` for ``sample_ids``, made by a pool of generator actors."""
    from sfray.config.loader import to_yaml
    from sfray.distributed.columns import COL_IDS, COL_UNIT
    from sfray.distributed.generate_actor import GeneratorActor
    from sfray.generation.plan import plan_units

    ids = np.sort(np.asarray(sample_ids, dtype=np.int64))
    if ids.size == 0:
        raise ValueError("no sample ids to generate")
    base, span = int(ids[0]), int(ids[-1] - ids[0] + 1)
    done = np.setdiff1d(np.arange(span, dtype=np.int64), ids - base)
    units = plan_units(span, gen_cfg.generate.samples_per_shard, done)  # one unit = one batch of actor work
    items = [{COL_UNIT: u.unit, COL_IDS: (u.sample_ids + base).tolist()} for u in units]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(GeneratorActor, batch_size=1, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
                        num_cpus=cpus_per_actor, num_gpus=gpus_per_actor,
                        fn_constructor_kwargs={"config_yaml": to_yaml(gen_cfg), "encode": True})
    return ds.map_batches(_flatten_units, batch_size=1, batch_format="numpy")


class DecodeRows:
    """``map_batches`` callable: (sample_id, record) rows -> training columns of ``fields``."""

    def __init__(self, fields: Sequence[str]):
        self.fields = tuple(fields)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return records_to_columns([bytes(r) for r in batch[COL_RECORD]], self.fields)


def epoch_ids(stream: StreamSection, first_epoch: int, epochs: int) -> np.ndarray:
    """The fresh ids of epochs ``[first_epoch, epochs)``, in order."""
    n = stream.samples_per_epoch
    return np.arange(first_epoch * n, max(epochs, first_epoch) * n, dtype=np.int64)


def val_ids(stream: StreamSection) -> np.ndarray:
    return np.arange(stream.val_id_offset, stream.val_id_offset + stream.val_samples, dtype=np.int64)


def training_stream(gen_cfg: GenerateJobConfig, stream: StreamSection, fields: Sequence[str], *,
                    first_epoch: int, epochs: int) -> ray.data.Dataset:
    """Decoded training rows of epochs ``[first_epoch, epochs)``, generated as they are consumed."""
    rows = generator_records(gen_cfg, epoch_ids(stream, first_epoch, epochs), actors=stream.actors,
                             cpus_per_actor=stream.cpus_per_actor, gpus_per_actor=stream.gpus_per_actor)
    return rows.map_batches(DecodeRows(fields), batch_size=16, batch_format="numpy")


def held_out_records(gen_cfg: GenerateJobConfig, stream: StreamSection) -> list[bytes]:
    """The held-out samples' records, made once, in id order (they stay in memory, never on disk)."""
    rows = generator_records(gen_cfg, val_ids(stream), actors=stream.actors,
                             cpus_per_actor=stream.cpus_per_actor, gpus_per_actor=stream.gpus_per_actor)
    got = sorted((int(r[COL_SAMPLE_ID]), bytes(r[COL_RECORD])) for r in rows.iter_rows())
    return [rec for _, rec in got]
