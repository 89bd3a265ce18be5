"""LMDB shards: naming, atomic publish, idempotent retries, conflicts, crash leftovers, readers."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from synth_records import random_sample

from sfray.conventions import Field
from sfray.data import layout
from sfray.data.dataset_yaml import update_dataset_yaml
from sfray.data.manifest import Manifest, sweep
from sfray.data.record import decode_record, encode_record, record_checksum
from sfray.data.shard import ShardReader, sample_key, shard_name, write_shard
from sfray.errors import AssetError, SfrayError

REPO = Path(__file__).resolve().parents[2]


def _records(ids, seed=0):
    return [(i, encode_record(random_sample(i, seed=seed))) for i in ids]


def test_names_derive_from_ids_only():
    assert shard_name([5, 3, 4]) == shard_name([3, 4, 5]) == "shard-000000003-3"
    gappy = shard_name([3, 5, 9])
    assert gappy.startswith("shard-000000003-3-") and gappy != shard_name([3, 5, 8])


def test_write_then_read_back(tmp_path):
    recs = _records([10, 11, 12])
    receipt = write_shard(tmp_path, list(reversed(recs)))
    assert receipt.created and receipt.name == "shard-000000010-3"
    assert receipt.sample_ids == [10, 11, 12] and receipt.keys == [sample_key(i) for i in (10, 11, 12)]
    assert receipt.checksums == [record_checksum(b) for _, b in recs]
    assert receipt.nbytes == sum(len(b) for _, b in recs)
    assert [r["sample_id"] for r in receipt.rows] == [10, 11, 12]
    assert receipt.rows[1]["camera"] == pytest.approx(random_sample(11)[Field.CAMERA].tolist())
    assert os.listdir(tmp_path / "shards") == ["shard-000000010-3.lmdb"]
    with ShardReader(layout.shard_path(tmp_path, receipt.name)) as reader:
        assert len(reader) == 3
        assert reader.get(11) == recs[1][1]
        assert [k for k, _ in reader] == receipt.keys
        with pytest.raises(KeyError):
            reader.get(13)


def test_idempotent_rewrite_is_a_noop(tmp_path):
    first = write_shard(tmp_path, _records([0, 1]))
    path = layout.shard_path(tmp_path, first.name)
    stat = path.stat()
    again = write_shard(tmp_path, _records([0, 1]))
    assert not again.created and again.content_checksum == first.content_checksum
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert layout.tmp_files(tmp_path) == []


def test_conflicting_content_raises_and_keeps_the_shard(tmp_path):
    first = write_shard(tmp_path, _records([0, 1]))
    path = layout.shard_path(tmp_path, first.name)
    before = path.read_bytes()
    with pytest.raises(AssetError, match="different content"):
        write_shard(tmp_path, _records([0, 1], seed=99))
    assert path.read_bytes() == before and layout.tmp_files(tmp_path) == []


def test_crash_mid_write_leaves_only_a_tmp_file_that_sweep_removes(tmp_path):
    # A child process dies (no cleanup runs) after building the shard but before publishing it.
    code = (
        "import os, sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "import numpy as np\n"
        "import sfray.data.shard as shard\n"
        "from synth_records import random_sample\n"
        "from sfray.data.record import encode_record\n"
        "shard.fsync_file = lambda path: os._exit(9)\n"
        "shard.write_shard(sys.argv[1], [(i, encode_record(random_sample(i))) for i in (0, 1)])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(Path(__file__).parent)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    leftovers = layout.tmp_files(tmp_path)
    assert len(leftovers) == 1 and layout.TMP_MARK in leftovers[0].name
    assert layout.complete_shards(tmp_path) == []
    assert len(Manifest.load(tmp_path)) == 0
    # The tmp file can never be committed, and a sweep removes it.
    bogus = {"sample_id": 0, "shard": leftovers[0].name[: -len(".lmdb")], "status": "ok"}
    with pytest.raises(SfrayError):
        Manifest.commit(tmp_path, [bogus])
    with pytest.raises(SfrayError, match="not an sfray dataset"):
        sweep(tmp_path)  # shards alone do not make a dataset: sweep deletes only inside one
    update_dataset_yaml(tmp_path)
    report = sweep(tmp_path)
    assert report["removed_tmp"] and layout.tmp_files(tmp_path) == []
    receipt = write_shard(tmp_path, _records([0, 1]))
    assert receipt.created and len(Manifest.commit(tmp_path, [receipt])) == 2


def test_reader_pickles_closed_and_reopens(tmp_path):
    receipt = write_shard(tmp_path, _records([7]))
    reader = ShardReader(layout.shard_path(tmp_path, receipt.name))
    first = reader.get(7)
    clone = pickle.loads(pickle.dumps(reader))
    assert clone._env is None and clone.get(7) == first
    assert decode_record(first)[Field.SAMPLE_ID] == 7
    reader.close()
    clone.close()


def test_bad_shard_inputs(tmp_path):
    with pytest.raises(SfrayError, match="duplicate"):
        write_shard(tmp_path, _records([1]) + _records([1]))
    with pytest.raises(SfrayError, match="says sample_id"):
        write_shard(tmp_path, [(2, encode_record(random_sample(3)))])
    with pytest.raises(AssetError, match="not found"):
        ShardReader(tmp_path / "nope.lmdb").get(0)
