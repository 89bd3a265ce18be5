"""Generation through the Ray executor: determinism, resume, and fault injection.

The session's shared local Ray (loopback only, tests/conftest.py) serves the module; each test writes its
own dataset.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sfray.config import GenerateJobConfig, load_config
from sfray.data import layout
from sfray.data.layout import tmp_files
from sfray.data.manifest import Manifest
from sfray.data.verify import verify_dataset

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "configs" / "generate" / "quickstart.yaml"


def run_generation(cfg: GenerateJobConfig, **kwargs):
    """The library run with the Ray executor (what ``sfray generate`` does)."""
    from sfray.distributed.executor import RayExecutor
    from sfray.generation.run import run_generation as run

    return run(cfg, RayExecutor(cfg.ray), **kwargs)


def tiny(out: Path, *extra: str) -> GenerateJobConfig:
    return load_config(GenerateJobConfig, QUICKSTART, [
        f"output_dir={out}", "generate.num_samples=16", "generate.resolution=64",
        "generate.batch_size=4", "generate.samples_per_shard=8", "generate.preview_samples=4",
        "ray.actors_min=1", "ray.actors_max=2", *extra,
    ])


def checksums(out: Path) -> dict[int, str]:
    rows = Manifest.load(out).rows()
    return {int(r["sample_id"]): r["checksum"] for r in rows}


def assert_complete(out: Path, n: int) -> None:
    ids = Manifest.load(out).committed_ids()
    assert sorted(ids.tolist()) == list(range(n)), "every id exactly once"
    report = verify_dataset(out)
    assert report.ok, report
    assert not tmp_files(out), "no temporary file left behind"
    referenced = set(Manifest.load(out).shards())
    assert all(".tmp-" not in s for s in referenced)


def test_split_runs_are_byte_identical_to_one_run(tmp_path, shared_ray):
    one = tmp_path / "one"
    run_generation(tiny(one), progress=False)
    assert_complete(one, 16)

    two = tmp_path / "two"
    first = run_generation(tiny(two, "generate.num_samples=8"), progress=False)
    assert first.committed == 8
    second = run_generation(tiny(two), progress=False)
    assert second.generated_this_run == 8, "the resumed run only makes the missing ids"
    assert_complete(two, 16)
    assert checksums(one) == checksums(two)
    assert (one / "preview.png").is_file() and (one / "dataset.yaml").is_file()


def test_the_ray_executor_makes_the_recorded_records(tmp_path, shared_ray):
    """The fixture's config through the actor pool gives the bytes recorded before the refactor."""
    from tests.generation.fixture_rows import expected_rows, fixture, manifest_rows

    out = tmp_path / "fixture"
    cfg = load_config(GenerateJobConfig, None, [f"output_dir={out}", *fixture()["overrides"],
                                                "ray.actors_min=1", "ray.actors_max=2"])
    assert run_generation(cfg, progress=False).committed == 16
    expected = expected_rows()
    if expected is None:
        pytest.skip("library versions differ from the fixture's")
    assert manifest_rows(out) == expected


def test_resume_refuses_incompatible_settings(tmp_path, shared_ray):
    from sfray.errors import ConfigError

    out = tmp_path / "d"
    run_generation(tiny(out, "generate.num_samples=4"), progress=False)
    with pytest.raises(ConfigError, match="seed"):
        run_generation(tiny(out, "seed=5"), progress=False)


def test_actor_killed_mid_run_loses_nothing(tmp_path, shared_ray):
    out = tmp_path / "actor"
    summary = run_generation(tiny(out, "generate.num_samples=24", "faults.fail_actor_after_batches=1"),
                             progress=False)
    assert (layout.faults_dir(out) / layout.FAULT_WORKER_KILLED).is_file(), "the fault was injected"
    assert summary.committed == 24
    assert_complete(out, 24)


def test_driver_killed_mid_write_then_rerun(tmp_path):
    out = tmp_path / "driver"
    args = [f"output_dir={out}", "generate.num_samples=64", "generate.resolution=64", "generate.batch_size=4",
            "generate.samples_per_shard=4", "ray.actors_min=1", "ray.actors_max=1", "ray.num_cpus=2"]
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "sfray.cli", "generate", str(QUICKSTART), *args]
    proc = subprocess.run([*cmd, "faults.fail_driver_after_shards=2"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    children = layout.faults_dir(out) / layout.FAULT_DRIVER_CHILDREN
    try:
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    finally:
        for pid in json.loads(children.read_text()) if children.is_file() else []:
            try:
                os.kill(pid, signal.SIGKILL)  # only the Ray processes that driver started
            except ProcessLookupError:
                pass
    logged = sum(json.loads(p.read_text())["num_samples"] for p in layout.receipts_dir(out).glob("*.json"))
    assert 8 <= logged < 64, "at least two shards were logged, and the crash came before the end"
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_complete(out, 64)
    # shards finished before the kill were recovered from their receipts, not regenerated
    made = int(re.search(r"generated (\d+) this run", proc.stdout).group(1))
    assert made == 64 - logged
    assert np.all(np.diff(Manifest.load(out).committed_ids()) == 1)


def test_quality_gate_drops_are_recorded_and_survive_resume(tmp_path, shared_ray, capsys):
    from sfray.cli import main
    out = tmp_path / "gate"
    gate = ["quality.policy=drop", "quality.min_mask_iou=0.96"]  # hair caps lower the mesh-vs-image IoU
    first = run_generation(tiny(out, "generate.num_samples=8", *gate), progress=False)
    second = run_generation(tiny(out, *gate), progress=False)
    assert second.generated_this_run == 8, "dropped ids are not regenerated"
    manifest = Manifest.load(out)
    rows = manifest.rows()
    assert sorted(r["sample_id"] for r in rows) == list(range(16))
    dropped = [r for r in rows if r["status"] == "dropped"]
    assert dropped and len(dropped) < 16, "the gate drops some samples, not all"
    assert all(r["reason"] == "mask_iou" and r["shard"] == "" for r in dropped)
    assert all(r["quality_mask_iou"] < 0.96 for r in dropped)
    assert all(r["quality_mask_iou"] >= 0.96 for r in rows if r["status"] == "ok")
    assert first.dropped + second.dropped >= len(dropped)
    assert verify_dataset(out).ok
    assert main(["dataset", "stats", str(out)]) == 0
    assert "mask_iou" in capsys.readouterr().out


def test_bad_asset_fails_once_before_ray_starts(tmp_path):
    from sfray.errors import AssetError

    out = tmp_path / "bad"
    for override, name in (("head.path=/no/such/generic_model.pkl", "generic_model.pkl"),
                           ("generator.next3d.checkpoint=/no/such/next3d.pkl", "next3d.pkl")):
        kind = "head.kind=flame" if override.startswith("head") else "generator.kind=next3d"
        extra = [kind, override]
        with pytest.raises(AssetError, match=name):
            run_generation(tiny(out, *extra), progress=False)
        assert not out.exists(), "nothing is written for a job that cannot start"
