"""Manifest: atomic commits, idempotent receipts, dropped rows, sweeps, dataset.yaml counts."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from synth_records import random_sample

from sfray.conventions import SEG_CLASSES, Field
from sfray.data import layout
from sfray.data.dataset_yaml import read_dataset_yaml, update_dataset_yaml
from sfray.data.manifest import Manifest, sample_row, sweep
from sfray.data.record import encode_record
from sfray.data.shard import write_shard
from sfray.errors import AssetError, SfrayError


def _receipt(root, ids, seed=0):
    return write_shard(root, [(i, encode_record(random_sample(i, seed=seed))) for i in ids])


def test_commit_rows_and_columns(tmp_path):
    m = Manifest.commit(tmp_path, [_receipt(tmp_path, [4, 5]), _receipt(tmp_path, [0, 1]).to_dict()])
    assert m.committed_ids().tolist() == [0, 1, 4, 5]
    row = Manifest.load(tmp_path).rows()[2]
    s = random_sample(4)
    assert row["shard"] == "shard-000000004-2" and row["key"] == "000000000004" and row["status"] == "ok"
    assert row["seed"] == s[Field.SEED] and row["generator"] == s[Field.GENERATOR]
    assert row["pose"] == pytest.approx(s[Field.POSE].tolist())
    assert row["quality_mask_iou"] == pytest.approx(s[Field.QUALITY]["mask_iou"])
    assert isinstance(row["quality_detector_ok"], bool)
    assert Manifest.load(tmp_path).shards() == ["shard-000000000-2", "shard-000000004-2"]


def test_recommit_and_dropped_rows(tmp_path):
    r = _receipt(tmp_path, [0, 1])
    Manifest.commit(tmp_path, [r])
    Manifest.commit(tmp_path, [r])  # a retried commit adds nothing
    dropped = sample_row(random_sample(2), status="dropped", reason="mask_iou")
    m = Manifest.commit(tmp_path, [dropped])
    assert m.committed_ids().tolist() == [0, 1, 2]
    assert m.counts()["by_status"] == {"ok": 2, "flagged": 0, "dropped": 1}
    assert m.counts()["by_reason"] == {"mask_iou": 1}
    assert [r["sample_id"] for r in m.rows(("ok",))] == [0, 1]


def test_failed_commit_leaves_previous_manifest(tmp_path, monkeypatch):
    Manifest.commit(tmp_path, [_receipt(tmp_path, [0])])
    before = (tmp_path / layout.MANIFEST_FILE).read_bytes()
    with pytest.raises(AssetError, match="does not exist"):
        Manifest.commit(tmp_path, [{**sample_row(random_sample(9)), "shard": "shard-000000009-1"}])
    with pytest.raises(SfrayError, match="status"):
        Manifest.commit(tmp_path, [{**sample_row(random_sample(9)), "status": "maybe"}])
    r = _receipt(tmp_path, [1])

    def boom(table, where, *a, **k):
        open(where, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError):
        Manifest.commit(tmp_path, [r])
    monkeypatch.undo()
    assert (tmp_path / layout.MANIFEST_FILE).read_bytes() == before
    assert layout.tmp_files(tmp_path) == []
    assert Manifest.load(tmp_path).committed_ids().tolist() == [0]


def test_sweep_keeps_committed_and_moves_orphans(tmp_path):
    Manifest.commit(tmp_path, [_receipt(tmp_path, [0, 1])])
    orphan = _receipt(tmp_path, [2, 3])  # written, never committed
    (layout.shards_dir(tmp_path) / "shard-000000009-1.lmdb.tmp-dead").write_bytes(b"x")
    report = sweep(tmp_path)
    assert report["unreferenced"] == [orphan.name] and len(report["removed_tmp"]) == 1
    assert layout.shard_path(tmp_path, orphan.name).is_file()  # keep: default
    sweep(tmp_path, unreferenced="move")
    assert layout.complete_shards(tmp_path) == ["shard-000000000-2"]
    assert (tmp_path / layout.ORPHANS_DIR / f"{orphan.name}.lmdb").is_file()
    # The moved-aside ids can now be rebuilt with different bytes.
    assert _receipt(tmp_path, [2, 3], seed=5).created


def test_dataset_yaml_schema_and_counts(tmp_path):
    Manifest.commit(tmp_path, [_receipt(tmp_path, [0, 1, 2])])
    update_dataset_yaml(tmp_path, config={"seed": 3}, generator="test-random-v1")
    y = read_dataset_yaml(tmp_path)
    assert y["counts"]["total"] == 3 and y["counts"]["by_status"]["ok"] == 3
    assert [c["name"] for c in y["labels"]["classes"]] == [c.name for c in SEG_CLASSES]
    assert y["labels"]["classes"][6]["color"] == "#0000ff"
    assert y["landmarks"]["mirror"][36] == 45 and y["config"] == {"seed": 3}
    Manifest.commit(tmp_path, [sample_row(random_sample(7), status="dropped", reason="blur")])
    update_dataset_yaml(tmp_path)  # keeps config and generator, refreshes counts
    y = read_dataset_yaml(tmp_path)
    assert y["counts"]["by_reason"] == {"blur": 1} and y["config"] == {"seed": 3}
