"""The unclear cases of the hostile-input probe, replayed without Ray: each ends in one
``sfray: error:`` line (exit 2) that names the file or key, or in a correct result, and leaves
nothing half-written (docs/reliability.md). The Ray-specific ones are in ``test_ray_cases.py``.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
from pathlib import Path

import lmdb
import pytest
import torch

from sfray.cli import main
from sfray.data import layout
from sfray.data.manifest import Manifest
from sfray.data.verify import verify_dataset
from sfray.errors import AssetError, ConfigError, UnsafePickleError
from sfray.generation.failures import SampleError
from sfray.io.space import NoSpaceError, space_error
from tests.data.synth_records import build_dataset
from tests.hardening import hostile
from tests.hardening.helpers import ROOT, generate, tiny_cfg, tree

QUICKSTART = str(ROOT / "configs" / "generate" / "quickstart.yaml")


@pytest.fixture(autouse=True)
def _restore_sigterm():
    """``main()`` installs sfray's SIGTERM handler in this process; put pytest's back."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("sfray: error: "), err
    return lines[0]


# -- configs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, words", [
    ("- a\n- b\n", "top level of a config must be a mapping"),
    ("42\n", "top level of a config must be a mapping"),
    ("", "empty"),
    ("# only a comment\n", "empty"),
    ("generate: [unclosed\n", "not a valid YAML config"),
    (b"\xff\xfe\x00garbage", "cannot read the config file"),
])
def test_a_config_file_that_is_not_a_mapping_is_one_line(tmp_path, capsys, content, words):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, _, err = run(capsys, "generate", str(path), f"output_dir={tmp_path / 'ds'}")
    line = error_line(err)
    assert code == 2 and str(path) in line and words in line
    assert not (tmp_path / "ds").exists()


def test_a_directory_given_as_config_or_flame_file_says_so(tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    code, _, err = run(capsys, "generate", str(folder))
    assert code == 2 and "is a directory" in error_line(err)
    code, _, err = run(capsys, "generate", QUICKSTART, f"output_dir={tmp_path / 'ds'}", "head.kind=flame",
                       f"head.path={folder}")
    line = error_line(err)
    assert code == 2 and str(folder) in line and "is a directory" in line
    code, _, err = run(capsys, "inspect", "checkpoint", str(folder))
    assert code == 2 and "is a directory" in error_line(err)


@pytest.mark.parametrize("override, key", [
    ("generate.num_samples=1e14", "generate.num_samples"),
    ("generate.num_samples=0", "generate.num_samples"),
    ("generate.batch_size=100000000", "generate.batch_size"),
    ("generate.resume_check=everything", "generate.resume_check"),
])
def test_out_of_range_values_are_refused_before_anything_is_allocated(tmp_path, capsys, override, key):
    code, _, err = run(capsys, "generate", QUICKSTART, f"output_dir={tmp_path / 'ds'}", override)
    assert code == 2 and key in error_line(err)
    assert not (tmp_path / "ds").exists()


# -- untrusted pickles --------------------------------------------------------------------------------

HOSTILE = {
    "os.system": (hostile.call("os", "system", ("echo pwned",)), UnsafePickleError, "os.system"),
    "os.system via STACK_GLOBAL": (hostile.stack_call("os", "system", ("echo pwned",)), UnsafePickleError,
                                   "os.system"),
    "torch.Tensor(1e13)": (hostile.call("torch", "Tensor", (10**13,)), AssetError, "asks for"),
    "numpy array of 8 TB": (hostile.call("numpy.core.multiarray", "_reconstruct",
                                         (__import__("numpy").ndarray, (10**12,), b"f8")), AssetError, "asks for"),
    "tensor base for copyreg": (hostile.call("copyreg", "_reconstructor", (torch.Tensor, torch.Tensor, 10**13)),
                                UnsafePickleError, "base"),
    "storage declaring 2 GiB": (hostile.call("torch.storage", "_load_from_bytes", (hostile.huge_storage_blob(),)),
                                AssetError, "asks for"),
    "5000-deep nesting": (hostile.deep_list(5000), AssetError, "nest deeper"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_pickles_are_refused_with_resource_limits(tmp_path, capsys, name):
    from sfray.generators.next3d.official_pickle import read_official_pickle

    data, error, words = HOSTILE[name]
    path = hostile.write(tmp_path / "evil.pkl", hostile.in_dict("G_ema", data))
    with pytest.raises(error, match=words):
        read_official_pickle(path)
    code, _, err = run(capsys, "inspect", "checkpoint", str(path))
    line = error_line(err)
    assert code == 2 and str(path) in line


def test_the_preflight_scans_a_checkpoint_before_any_worker_starts(tmp_path):
    """Only the checkpoint's existence used to be checked, so a hostile file reached the workers."""
    from sfray.generation.run import run_generation

    class NoWorkers:
        max_attempts = 1

        def session(self, cfg):
            raise AssertionError("no worker may start")

        def execute(self, cfg, units):
            raise AssertionError("no worker may start")

    pkl = hostile.write(tmp_path / "evil.pkl", hostile.in_dict("G_ema", hostile.call("os", "system", ("x",))))
    out = tmp_path / "ds"
    with pytest.raises(UnsafePickleError, match=r"os\.system.*generator\.next3d\.checkpoint"):
        run_generation(tiny_cfg(out, "generator.kind=next3d", f"generator.next3d.checkpoint={pkl}"), NoWorkers())
    for content in (b"", b"\x80\x04garbage", b"not a checkpoint at all"):
        pkl.write_bytes(content)
        with pytest.raises(AssetError, match="evil.pkl"):
            run_generation(tiny_cfg(out, "generator.kind=next3d", f"generator.next3d.checkpoint={pkl}"),
                           NoWorkers())
    assert not out.exists()


# -- devices and output locations ----------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_device_without_cuda_is_one_line(tmp_path):
    from sfray.distributed.executor import RayExecutor
    from sfray.generation.executor import InProcessExecutor

    cfg = tiny_cfg(tmp_path / "ds", "generator.device=cuda")
    with pytest.raises(ConfigError, match=r"generator\.device.*no usable CUDA"):
        generate(tmp_path / "ds", "generator.device=cuda", executor=InProcessExecutor())
    with pytest.raises(ConfigError, match=r"ray\.gpus_per_actor is 0"):
        RayExecutor(cfg.ray).check(cfg)
    gpu = tiny_cfg(tmp_path / "ds", "ray.gpus_per_actor=1")
    with pytest.raises(ConfigError, match=r"ray\.gpus_per_actor.*no usable CUDA.*forever"):
        RayExecutor(gpu.ray).check(gpu)  # a local Ray would wait forever for the GPU
    assert not (tmp_path / "ds").exists()


def test_output_locations_that_cannot_hold_a_dataset(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("mine")
    before = tree(tmp_path)
    for out, words in ((a_file, "not a directory"), (a_file / "ds", "is not a directory"),
                       (tmp_path / "mine", "not empty and is not an sfray dataset")):
        with pytest.raises(ConfigError, match=words) as err:
            generate(out)
        assert str(out) in str(err.value)
    assert tree(tmp_path) == before


@pytest.fixture
def small_fs(tmp_path):
    """A small tmpfs (root only) that tests mount and unmount themselves; yields a mount() function."""
    mounted: list[Path] = []

    def mount(size: str, readonly: bool = False) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        opts = f"size={size}" + (",ro" if readonly else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


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
