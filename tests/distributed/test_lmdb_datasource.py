"""Ray Data datasource over LMDB shards: all committed records, decoded, in a tiny local Ray."""

from __future__ import annotations

import numpy as np
import pytest

from sfray.conventions import Field
from sfray.data.manifest import Manifest, sample_row
from sfray.data.record import encode_record
from sfray.data.shard import write_shard


def _sample(i: int) -> dict:
    rng = np.random.default_rng(i)
    return {Field.SAMPLE_ID: i, Field.SEED: i + 100, Field.GENERATOR: "t",
            Field.IMAGE: rng.integers(0, 256, (3, 16, 16), dtype=np.uint8),
            Field.DEPTH: rng.random((8, 8)).astype(np.float32),
            Field.LANDMARKS_2D: rng.random((68, 2)).astype(np.float32),
            Field.QUALITY: {"score": float(i)}}


@pytest.mark.ray
def test_read_committed_records(tmp_path, shared_ray):
    from sfray.distributed.lmdb_datasource import SfrayLmdbDatasource, read_sfray_dataset

    root = tmp_path / "ds"
    receipts = [write_shard(root, [(i, encode_record(_sample(i))) for i in ids])
                for ids in ([0, 1, 2], [3, 4], [5, 6, 7, 8])]
    write_shard(root, [(i, encode_record(_sample(i))) for i in (20, 21)])  # uncommitted: must stay invisible
    Manifest.commit(root, receipts + [sample_row(_sample(9), status="dropped", reason="x")])

    tasks = SfrayLmdbDatasource(root).get_read_tasks(2)
    assert len(tasks) == 2 and sum(t.metadata.num_rows for t in tasks) == 9

    # the session's shared local Ray (loopback only, tests/conftest.py)
    rows = read_sfray_dataset(root, rows_per_block=2).take_all()
    assert sorted(r["sample_id"] for r in rows) == list(range(9))
    for r in rows:
        s = _sample(r["sample_id"])
        assert np.array_equal(r[Field.IMAGE], s[Field.IMAGE]) and r[Field.SEED] == s[Field.SEED]
        assert np.array_equal(r[Field.DEPTH], s[Field.DEPTH].astype(np.float16).astype(np.float32))
    raw = read_sfray_dataset(root, decode=False, statuses=("ok",)).take_all()
    assert {r["checksum"] for r in raw} == {c for rc in receipts for c in rc.checksums}
    images_only = read_sfray_dataset(root, fields=[Field.IMAGE])
    batch = next(iter(images_only.iter_batches(batch_size=4, batch_format="numpy")))
    assert batch[Field.IMAGE].shape[1:] == (3, 16, 16) and Field.DEPTH not in batch
