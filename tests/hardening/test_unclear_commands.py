"""Unclear cases of the hostile-input probe, without Ray: worker errors, damaged datasets, exports and
conversions, signals and unexpected errors at the command line (docs/reliability.md).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from sfray.data import layout
from sfray.data.verify import verify_dataset
from sfray.errors import AssetError
from sfray.generation.failures import SampleError
from tests.data.synth_records import build_dataset
from tests.hardening.helpers import ROOT, generate, tree
from tests.hardening.helpers import one_error_line as error_line
from tests.hardening.helpers import run_main as run

QUICKSTART = str(ROOT / "configs" / "generate" / "quickstart.yaml")

# -- worker errors, damaged datasets -----------------------------------------------------------------

def test_an_error_inside_a_worker_is_one_line_with_a_log_file(tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(SampleError) as err:
        generate(out, "quality.detector=tests.hardening.faulty.explode")
    msg = str(err.value)
    assert "generating samples 0-3 failed: RuntimeError: the detector crashed on purpose" in msg
    log = Path(msg.split("full traceback in ")[1].rstrip(")"))
    assert log.parent == out / layout.LOGS_DIR and "Traceback" in log.read_text()
    assert "explode" in log.read_text()


def test_a_corrupt_manifest_is_one_line_and_a_corrupt_receipt_is_set_aside(tmp_path, capsys):
    out = tmp_path / "ds"
    generate(out)
    receipt = sorted(layout.receipts_dir(out).iterdir())[1]
    receipt.write_text("{not json")
    manifest = (out / layout.MANIFEST_FILE).read_bytes()
    (out / layout.MANIFEST_FILE).write_bytes(b"PAR1 garbage")
    code, _, err = run(capsys, "dataset", "verify", str(out))
    assert code == 2 and layout.MANIFEST_FILE in error_line(err)
    with pytest.raises(AssetError, match="manifest.parquet"):
        generate(out)
    (out / layout.MANIFEST_FILE).write_bytes(manifest)
    summary = generate(out)
    assert summary.committed == 8 and verify_dataset(out).ok
    assert (out / layout.DAMAGED_DIR / receipt.name).read_text() == "{not json"


def test_commands_on_a_directory_that_is_not_a_dataset(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for argv in (("dataset", "verify", str(empty)), ("dataset", "stats", str(empty)),
                 ("dataset", "sweep", str(empty)), ("dataset", "export", str(empty), "--layout", "synthforge",
                                                     "--out", str(tmp_path / "x"))):
        code, _, err = run(capsys, *argv)
        assert code == 2 and str(empty) in error_line(err)
    assert not (tmp_path / "x").exists()


# -- exports and conversions ---------------------------------------------------------------------------

@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    build_dataset(root, [[0, 1, 2], [3, 4]])
    return root


def test_export_into_a_non_empty_folder_needs_overwrite(dataset, tmp_path, capsys):
    out = tmp_path / "export"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run(capsys, "dataset", "export", str(dataset), "--layout", "synthforge", "--out", str(out))
    assert code == 2 and "--overwrite" in error_line(err)
    assert tree(out) == {"keep.txt": b"mine"}
    code, stdout, _ = run(capsys, "dataset", "export", str(dataset), "--layout", "synthforge", "--out", str(out),
                          "--overwrite")
    assert code == 0 and "exported 5 samples" in stdout
    assert not (out / "keep.txt").exists() and len(list((out / "images").iterdir())) == 5
    assert not [p for p in tmp_path.iterdir() if layout.TMP_MARK in p.name]


@pytest.mark.parametrize("where", ["dataset", "parent", "inside", "other dataset"])
def test_export_never_replaces_a_dataset(dataset, tmp_path, capsys, where):
    other = tmp_path / "other"
    build_dataset(other, [[9]])
    target = {"dataset": dataset, "parent": tmp_path, "inside": dataset / "shards" / "x",
              "other dataset": other}[where]
    before = tree(tmp_path)
    code, _, err = run(capsys, "dataset", "export", str(dataset), "--layout", "facesynthetics", "--out",
                       str(target), "--overwrite")
    assert code == 2 and "--out" in error_line(err)
    assert tree(tmp_path) == before


def test_an_export_that_fails_leaves_nothing(dataset, tmp_path, capsys, monkeypatch):
    import sfray.data.export as export

    real, seen = export._annotation, []

    def damaged(rec):
        seen.append(rec)
        if len(seen) == 3:
            raise AssetError("shard-000000000-3: record 2 is damaged (test)")
        return real(rec)

    monkeypatch.setattr(export, "_annotation", damaged)
    out = tmp_path / "export"
    code, _, err = run(capsys, "dataset", "export", str(dataset), "--layout", "synthforge", "--out", str(out))
    assert code == 2 and "damaged" in error_line(err)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if layout.TMP_MARK in p.name]


def test_sigterm_is_handled_like_ctrl_c_and_leaves_no_partial_export(dataset, tmp_path, capsys, monkeypatch):
    import time

    import sfray.data.export as export

    real = export._save_image

    def slow(chw, path):
        time.sleep(0.3)
        real(chw, path)

    monkeypatch.setattr(export, "_save_image", slow)
    timer = threading.Timer(0.8, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    out = tmp_path / "export"
    code, _, err = run(capsys, "dataset", "export", str(dataset), "--layout", "synthforge", "--out", str(out))
    timer.join()
    assert code == 143 and err.strip() == "sfray: interrupted"
    assert not out.exists() and not [p for p in tmp_path.iterdir() if layout.TMP_MARK in p.name]


def test_convert_refuses_to_replace_without_overwrite(tmp_path, capsys):
    dst = tmp_path / "model.safetensors"
    dst.write_bytes(b"precious")
    code, _, err = run(capsys, "convert", "checkpoint", str(tmp_path / "any.pkl"), str(dst))
    assert code == 2 and "--overwrite" in error_line(err) and dst.read_bytes() == b"precious"
    code, _, err = run(capsys, "convert", "checkpoint", str(tmp_path / "any.pkl"), str(tmp_path))
    assert code == 2 and "safetensors" in error_line(err)


def test_os_errors_reaching_the_cli_are_named_in_words(tmp_path, capsys, monkeypatch):
    import sfray.cli.dataset as cli_dataset

    def boom(args):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(cli_dataset, "_stats", boom)
    code, _, err = run(capsys, "dataset", "stats", str(tmp_path))
    assert code == 2 and error_line(err) == f"sfray: error: {tmp_path / 'x'}: permission denied"


def test_an_unexpected_bug_is_one_line_with_its_traceback_logged(tmp_path, capsys, monkeypatch):
    import sfray.cli.dataset as cli_dataset

    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli_dataset, "_stats", bug)
    code, _, err = run(capsys, "dataset", "stats", str(tmp_path))
    line = error_line(err)
    assert code == 1 and "internal error: ZeroDivisionError: a bug" in line
    log = Path(line.split("full traceback in ")[1].split(";")[0])
    assert "ZeroDivisionError" in log.read_text()
    log.unlink()


def test_the_watchdog_stops_only_the_processes_it_knew():
    """A pid reused by another process (another start time) is left alone."""
    import psutil

    from sfray.distributed.watchdog import stop_processes

    mine = subprocess.Popen(["sleep", "60"])
    other = subprocess.Popen(["sleep", "60"])
    try:
        created = psutil.Process(mine.pid).create_time()
        stopped = stop_processes({mine.pid: created, other.pid: 12345.0}, grace=1.0)
        assert stopped == [mine.pid]
        mine.wait(timeout=5)  # gone (psutil may have reaped it already, so no exit code to compare)
        assert other.poll() is None, "a process it did not know is untouched"
    finally:
        for proc in (mine, other):
            proc.kill()
            proc.wait()
