"""The six unsafe cases of the hostile-input probe, each replayed: data is never lost or mixed,
no path derived from a file's contents escapes its directory, destructive commands touch only
datasets, a second writer is refused, and an empty output_dir is refused (docs/reliability.md).

Everything runs in-process (no Ray): the cases are about the run's storage logic, which is the
same for every executor.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest

from sfray.conventions import Column
from sfray.data import layout
from sfray.data.manifest import Manifest
from sfray.data.shard import ShardReader
from sfray.data.verify import verify_dataset
from sfray.errors import ConfigError, SfrayError
from sfray.generation.storage import recover, write_unit
from tests.generation.fixture_rows import manifest_rows
from tests.hardening.helpers import ROOT, cli, generate, one_error_line, tree


def _without_lock(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k != layout.LOCK_FILE}


# -- 1. the resume guard holds on every artefact; verify checks each record's format --------------

def test_resume_guard_holds_without_a_manifest(tmp_path):
    """Original failure: with manifest.parquet gone, a rerun at another resolution folded the old
    receipts in beside new samples, and verify said ok."""
    out = tmp_path / "ds"
    generate(out, "generate.resolution=64")
    (out / layout.MANIFEST_FILE).unlink()
    before = _without_lock(tree(out))
    with pytest.raises(ConfigError, match=r"generate\.resolution: 64 -> 32"):
        generate(out)
    assert _without_lock(tree(out)) == before, "a refused run changes nothing"


def test_resume_guard_reads_the_records_when_every_config_is_gone(tmp_path):
    out = tmp_path / "ds"
    generate(out, "generate.resolution=64")
    for name in (layout.MANIFEST_FILE, layout.CONFIG_FILE, layout.DATASET_YAML):
        (out / name).unlink()
    before = _without_lock(tree(out))
    with pytest.raises(ConfigError, match=r"generate\.resolution") as err:
        generate(out)
    assert "shard-000000000-4" in str(err.value) and "\n" not in str(err.value)
    assert _without_lock(tree(out)) == before


def test_verify_checks_every_record_against_the_declared_format(tmp_path):
    """Records of another resolution committed into a dataset fail verify, though their checksums hold."""
    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, "generate.resolution=64")
    generate(b, "generate.num_samples=12")  # 32x32; ids 8..11 form shard-000000008-4
    name = "shard-000000008-4"
    shutil.copy(layout.shard_path(b, name), layout.shard_path(a, name))
    shutil.copy(layout.receipts_dir(b) / f"{name}.json", layout.receipts_dir(a) / f"{name}.json")
    recover(a)  # the commit a rerun would make
    assert len(Manifest.load(a)) == 12
    report = verify_dataset(a)
    assert not report.ok
    text = "\n".join(report.problems)
    for sid in (8, 9, 10, 11):
        assert f"sample {sid}:" in text
    assert "32" in text and "64" in text and "sample 0:" not in text
    # without dataset.yaml and config.yaml the records must still agree with each other
    (a / layout.DATASET_YAML).unlink()
    (a / layout.CONFIG_FILE).unlink()
    assert not verify_dataset(a).ok


# -- 2. a rerun regenerates committed rows whose shard or record is missing or corrupt ----------

def _shard_of(out: Path, sample_id: int) -> Path:
    row = next(r for r in Manifest.load(out).rows() if r[Column.SAMPLE_ID] == sample_id)
    return layout.shard_path(out, row[Column.SHARD])


def test_a_deleted_shard_is_regenerated(tmp_path):
    """Original failure: the rerun said "committed 16/16, generated 0" over a deleted shard."""
    out = tmp_path / "ds"
    generate(out)
    rows = manifest_rows(out)
    _shard_of(out, 4).unlink()
    assert not verify_dataset(out).ok
    summary = generate(out)
    assert summary.generated_this_run == 4 and summary.committed == 8
    assert manifest_rows(out) == rows, "the same ids, bytes and shard names as before"
    assert verify_dataset(out).ok


def test_a_corrupt_record_is_regenerated_with_its_shard(tmp_path):
    """A sample's bytes depend on its generator batch, so the damaged record is made again with
    the ids its shard was made with: the same bytes under the same shard name."""
    out = tmp_path / "ds"
    generate(out)
    rows = manifest_rows(out)
    path = _shard_of(out, 5)
    with ShardReader(path) as reader:
        record = reader.get(5)
    data = bytearray(path.read_bytes())
    at = bytes(data).find(record[-64:])
    assert at > 0
    data[at + 10] ^= 0xFF  # one flipped byte inside record 5's value
    path.write_bytes(bytes(data))
    assert not verify_dataset(out).ok
    summary = generate(out)
    assert summary.generated_this_run == 4 and summary.committed == 8
    assert manifest_rows(out) == rows
    assert verify_dataset(out).ok
    assert [p.name for p in (out / layout.DAMAGED_DIR).iterdir()] == [path.name]


def test_a_truncated_shard_is_quarantined_and_regenerated(tmp_path):
    out = tmp_path / "ds"
    generate(out)
    rows = manifest_rows(out)
    path = _shard_of(out, 0)
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    summary = generate(out)
    assert summary.generated_this_run == 4
    assert manifest_rows(out) == rows and verify_dataset(out).ok
    kept = list((out / layout.DAMAGED_DIR).iterdir())
    assert len(kept) == 1 and kept[0].stat().st_size == size // 2, "the damaged file is kept aside"


def test_a_record_missing_from_its_shard_is_regenerated(tmp_path):
    out = tmp_path / "ds"
    generate(out)
    rows = manifest_rows(out)
    path = _shard_of(out, 6)
    env = lmdb.open(str(path), subdir=False, lock=False)
    with env.begin(write=True) as txn:
        assert txn.delete(b"%012d" % 6)
    env.close()
    summary = generate(out)
    assert summary.generated_this_run == 4 and summary.committed == 8
    assert manifest_rows(out) == rows
    assert verify_dataset(out).ok


# -- 3. paths derived from file contents are confined ---------------------------------------------

def _hostile_checkpoint(path: Path, names: list[str]) -> Path:
    from tests.generators.next3d.official_dump import _PersistentProxy, dump_official

    children = {f"m{i}": _PersistentProxy(name, f"# source of {i}\n", {}) for i, name in enumerate(names)}
    g = _PersistentProxy("TriPlaneGenerator", "# top\n", {"_modules": children})
    path.write_bytes(dump_official({"G_ema": g}, {}))
    return path


def test_dump_source_confines_hostile_class_names(tmp_path):
    """Original failure: a class named ``x/../../TRAV`` wrote outside DIR when ``DIR/00_x`` existed;
    NUL, ``/`` or 300-character names crashed with a partial dump."""
    box = tmp_path / "box"
    dump = box / "inner" / "DIR"
    names = ["x/../../TRAV", "a\x00b", "/etc/passwd", "A" * 300, "..", "ok_name"]
    pkl = _hostile_checkpoint(tmp_path / "evil.pkl", names)
    for i in range(len(names) + 1):
        (dump / f"{i:02d}_x").mkdir(parents=True)  # the matching subdirectory of the original case
    before = {p for p in tmp_path.rglob("*")}
    proc = cli("inspect", "checkpoint", str(pkl), "--dump-source", str(dump))
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    new = {p for p in tmp_path.rglob("*")} - before
    assert new and all(dump in p.parents for p in new), sorted(map(str, new))
    index = json.loads((dump / "index.json").read_text())
    assert len(index) == len(names) + 1
    for entry in index:
        name = entry["file"]
        assert "/" not in name and "\x00" not in name and not name.startswith(".") and len(name) <= 120
        assert (dump / name).is_file()


def test_a_manifest_shard_outside_the_dataset_is_refused(tmp_path):
    """Original failure: a row whose shard is ``../../outside/evil`` made verify read that file."""
    out = tmp_path / "sub" / "ds"
    generate(out)
    outside = tmp_path / "outside"
    outside.mkdir()
    real = _shard_of(out, 0)
    shutil.copy(real, outside / "evil.lmdb")  # a perfectly valid shard, but outside the dataset
    manifest = Manifest.load(out)
    table = manifest.table
    shards = table.column(Column.SHARD).to_pylist()
    shards = ["../../outside/evil" if s == real.stem else s for s in shards]
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = table.set_column(table.schema.get_field_index(Column.SHARD), Column.SHARD, pa.array(shards))
    pq.write_table(table, out / layout.MANIFEST_FILE)
    report = verify_dataset(out)
    assert not report.ok
    assert any("../../outside/evil" in p for p in report.problems)
    os.utime(outside / "evil.lmdb", (1, 1))
    with pytest.raises(SfrayError, match=r"outside"):
        generate(out)
    assert (outside / "evil.lmdb").stat().st_atime == 1, "the file outside was never opened"
    from sfray.data.torch_dataset import SfrayDataset

    with pytest.raises(SfrayError, match=r"\.\./\.\./outside/evil"):
        SfrayDataset(out)[0]


# -- 4. destructive commands touch only datasets, never what a receipt references ----------------

def test_sweep_refuses_a_directory_that_is_not_a_dataset(tmp_path):
    """Original failure: ``sfray dataset sweep`` deleted ``*.tmp-*`` files of any directory."""
    victim = tmp_path / "home"
    (victim / "shards").mkdir(parents=True)
    (victim / "notes.txt.tmp-1234").write_text("my draft")
    (victim / "shards" / "x.lmdb.tmp-99").write_text("not ours")
    before = tree(victim)
    for mode in ("keep", "move", "delete"):
        proc = cli("dataset", "sweep", str(victim), "--unreferenced", mode)
        assert proc.returncode == 2
        line = one_error_line(proc.stderr)
        assert str(victim) in line and "not an sfray dataset" in line
    assert tree(victim) == before


def test_sweep_delete_keeps_shards_that_a_receipt_references(tmp_path):
    """Original failure: ``--unreferenced delete`` removed a shard whose receipt was not folded yet."""
    out = tmp_path / "ds"
    generate(out)
    from sfray.generation.executor import InProcessExecutor
    from tests.hardening.helpers import tiny_cfg

    cfg = tiny_cfg(out, "generate.num_samples=12")
    made = InProcessExecutor("cpu").records(cfg, [8, 9, 10, 11])
    body = write_unit(out, [8, 9, 10, 11], [m.record for m in made], [m.row for m in made])
    shard = layout.shard_path(out, body["shard"])
    assert shard.is_file() and 8 not in Manifest.load(out).committed_ids()
    proc = cli("dataset", "sweep", str(out), "--unreferenced", "delete")
    assert proc.returncode == 0, proc.stderr
    assert shard.is_file(), "a receipt references it: it is about to be committed"
    assert body["shard"] not in json.loads(proc.stdout)["moved_or_deleted"]


# -- 5. one writer per dataset ---------------------------------------------------------------------

HOLD = """
import sys, time
from sfray.data.layout import dataset_lock
with dataset_lock(sys.argv[1], "test holder"):
    print("locked", flush=True)
    time.sleep(120)
"""


def _hold_lock(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "ds"
    generate(out, "generate.num_samples=4")
    holder = _hold_lock(out)
    try:
        before = _without_lock(tree(out))
        with pytest.raises(SfrayError) as err:
            generate(out)
        msg = str(err.value)
        assert f"pid {holder.pid}" in msg and socket.gethostname() in msg and str(out) in msg
        assert "\n" not in msg
        assert _without_lock(tree(out)) == before
        proc = cli("dataset", "sweep", str(out))
        assert proc.returncode == 2 and f"pid {holder.pid}" in one_error_line(proc.stderr)
    finally:
        holder.kill()  # SIGKILL: the kernel releases the lock with the process
        holder.wait()
    assert generate(out).generated_this_run == 4, "the lock of a dead process is free"


def test_the_lock_is_released_after_a_run_and_records_pid_and_host(tmp_path):
    out = tmp_path / "ds"
    generate(out, "generate.num_samples=4")
    info = json.loads((out / layout.LOCK_FILE).read_text())
    assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
    holder = _hold_lock(out)  # would block forever if the run had kept it
    holder.kill()
    holder.wait()


# -- 6. empty and root-like output directories ---------------------------------------------------

@pytest.mark.parametrize("value", ["", ".", "/", "..", " "])
def test_an_empty_or_root_like_output_dir_is_refused(tmp_path, value, monkeypatch, capsys):
    """Original failure: ``output_dir=''`` wrote the dataset into the current directory."""
    import signal

    from sfray.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # keep pytest's SIGTERM handler
    before = tree(tmp_path)
    code = main(["generate", str(ROOT / "configs/generate/quickstart.yaml"), f"output_dir='{value}'",
                 "generate.num_samples=1"])
    assert code == 2
    assert "output_dir" in one_error_line(capsys.readouterr().err)
    assert tree(tmp_path) == before
