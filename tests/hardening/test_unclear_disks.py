"""Unclear cases of the hostile-input probe, without Ray: read-only and full disks, before and during
a run. Each says so in words (``no space left on PATH: need ~X, have Y``) and leaves nothing
half-written; a rerun with room completes (docs/reliability.md). The tmpfs cases need root.
"""

from __future__ import annotations

import errno
from pathlib import Path

import lmdb
import pytest

from sfray.data import layout
from sfray.data.manifest import Manifest
from sfray.data.verify import verify_dataset
from sfray.errors import ConfigError
from sfray.io.space import NoSpaceError, space_error
from tests.data.synth_records import build_dataset
from tests.hardening.helpers import ROOT, generate

QUICKSTART = str(ROOT / "configs" / "generate" / "quickstart.yaml")

def test_a_read_only_output_is_one_line(small_fs):
    ro = small_fs("1m", readonly=True)
    with pytest.raises(ConfigError, match=r"cannot write in .*Read-only file system"):
        generate(ro / "ds")


def test_free_space_is_checked_against_the_plan_before_anything_is_written(small_fs):
    disk = small_fs("2m")
    with pytest.raises(NoSpaceError, match=r"no space left on .* need ~.*have .* free") as err:
        generate(disk / "ds", "generate.num_samples=1000", "generate.resolution=512")
    assert "generate.num_samples" in str(err.value)
    assert not (disk / "ds").exists()


def test_a_full_disk_during_a_run_says_so_and_a_rerun_on_more_space_completes(small_fs, monkeypatch):
    """The disk fills after the preflight (here the preflight's check is skipped to get there)."""
    import shutil

    import sfray.generation.preflight as preflight

    disk = small_fs("48k")
    monkeypatch.setattr(preflight, "check_free_space", lambda *a, **k: None)
    out = disk / "ds"
    with pytest.raises(NoSpaceError, match=r"no space left on .*have .* free") as err:
        generate(out)
    assert "samples" in str(err.value) and "\n" not in str(err.value)
    assert not layout.tmp_files(out), "no half-written file is left"
    assert verify_dataset(out).ok if (out / layout.MANIFEST_FILE).is_file() else True
    monkeypatch.undo()
    bigger = small_fs("8m")
    shutil.copytree(out, bigger / "ds", symlinks=True)
    assert generate(bigger / "ds").committed == 8 and verify_dataset(bigger / "ds").ok


def test_write_errors_in_the_storage_protocol_are_named(tmp_path, monkeypatch):
    import sfray.generation.storage as storage

    calls = {"n": 0}
    real = storage.write_shard

    def failing(root, records):
        calls["n"] += 1
        if calls["n"] == 2:
            raise lmdb.Error("mdb_txn_commit: No space left on device")
        return real(root, records)

    monkeypatch.setattr(storage, "write_shard", failing)
    out = tmp_path / "ds"
    with pytest.raises(NoSpaceError, match=r"storing samples 4-7: no space left on"):
        generate(out)
    assert sorted(Manifest.load(out).committed_ids().tolist()) == [0, 1, 2, 3], "the first shard is kept"
    monkeypatch.undo()
    assert generate(out).generated_this_run == 4 and verify_dataset(out).ok


def test_lmdb_input_output_errors_are_read_as_a_full_disk_when_it_is_full(tmp_path, monkeypatch):
    import sfray.io.space as space

    exc = lmdb.Error("mdb_txn_commit: Input/output error")
    monkeypatch.setattr(space, "free_bytes", lambda path: 4096)
    assert isinstance(space_error(exc, tmp_path, need=10**6), NoSpaceError)
    monkeypatch.setattr(space, "free_bytes", lambda path: 10**12)
    err = space_error(exc, tmp_path, need=10**6)
    assert err is not None and not isinstance(err, NoSpaceError) and "I/O error" in str(err)
    assert isinstance(space_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path), NoSpaceError)
    assert space_error(ValueError("unrelated"), tmp_path) is None


def test_a_full_disk_while_writing_the_manifest_names_the_file(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    out = tmp_path / "ds"
    build_dataset(out, [[0, 1]])
    before = (out / layout.MANIFEST_FILE).read_bytes()

    def full(table, where):
        Path(where).write_bytes(b"PAR1 half")
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(NoSpaceError, match=r"writing .*manifest\.parquet: no space left on"):
        Manifest.remove(out, [0])
    assert (out / layout.MANIFEST_FILE).read_bytes() == before and not layout.tmp_files(out)


