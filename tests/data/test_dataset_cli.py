"""``sfray dataset verify|stats|sweep`` on good and damaged datasets."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from sfray.cli import main
from sfray.data import layout
from sfray.data.manifest import Manifest
from sfray.data.shard import ShardReader


def test_verify_ok(small_dataset, capsys):
    assert main(["dataset", "verify", str(small_dataset)]) == 0
    assert "ok: 7 records in 2 shards" in capsys.readouterr().out


def test_verify_detects_a_flipped_byte_inside_the_lmdb_file(small_dataset, capsys):
    row = Manifest.load(small_dataset).rows()[5]
    path = layout.shard_path(small_dataset, row["shard"])
    record = ShardReader(path).get(row["key"])
    data = bytearray(path.read_bytes())
    at = data.find(record[200:264])  # a stretch of this record's value inside the data file
    assert at > 0 and data.find(record[200:264], at + 1) == -1
    data[at + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    assert main(["dataset", "verify", str(small_dataset)]) == 1
    out = capsys.readouterr().out
    assert "FAILED: 1 problem" in out and f"sample {row['sample_id']}: checksum mismatch" in out


def test_verify_detects_a_row_without_record(small_dataset, capsys):
    path = small_dataset / layout.MANIFEST_FILE
    table = pq.read_table(path)
    extra = table.slice(0, 1).to_pylist()[0] | {"sample_id": 99, "key": "000000000099"}
    pq.write_table(pa.concat_tables([table, pa.Table.from_pylist([extra], schema=table.schema)]), path)
    assert main(["dataset", "verify", str(small_dataset)]) == 1
    assert "sample 99: key '000000000099' not found" in capsys.readouterr().out


def test_verify_reports_missing_shard_and_tmp_rows(small_dataset, capsys):
    shard = Manifest.load(small_dataset).shards()[1]
    layout.shard_path(small_dataset, shard).unlink()
    (layout.shards_dir(small_dataset) / "shard-000000050-1.lmdb.tmp-abc").write_bytes(b"")
    assert main(["dataset", "verify", str(small_dataset)]) == 1
    captured = capsys.readouterr()
    assert f"shard {shard}: file" in captured.out and "leftover temporary file" in captured.err
    assert main(["dataset", "sweep", str(small_dataset)]) == 0
    assert layout.tmp_files(small_dataset) == []


def test_verify_missing_manifest_is_a_user_error(tmp_path, capsys):
    assert main(["dataset", "verify", str(tmp_path)]) == 2
    assert "no manifest" in capsys.readouterr().err


def test_stats(small_dataset, capsys):
    assert main(["dataset", "stats", str(small_dataset), "--sample", "4"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["counts"]["total"] == 7 and stats["shards"]["count"] == 2 and stats["sampled_records"] == 4
    assert abs(sum(stats["class_pixel_share"].values()) - 1.0) < 1e-3
    assert 0.5 < stats["landmark_visibility_rate"] < 1.0  # random samples: ~80% visible
    assert stats["image_sizes"] == {"32x32": 4}
