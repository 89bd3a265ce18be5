"""A sweep whose driver is killed mid-way finishes when the same command runs again, keeping the
trials that had finished (they are neither retrained nor rescored)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_setup import ROOT, shared_cache, write_sweep_yaml  # noqa: E402

pytestmark = pytest.mark.ray


def _cmd(cfg: Path) -> list[str]:
    return [sys.executable, "-m", "sfray.cli", "sweep", str(cfg)]


def test_killed_driver_resumes_without_redoing_finished_trials(tmp_path, tmp_path_factory):
    out = tmp_path / "sweep"
    space = {"strategy": {"kind": "grid", "values": ["gaussian", "sobol"]},
             "loss.keypoints": {"kind": "grid", "values": [0.3]}}
    cfg = write_sweep_yaml(tmp_path / "s.yaml", out, shared_cache(tmp_path_factory), space=space, max_t=2,
                           concurrent=1, asha=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(_cmd(cfg), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    finished: list[Path] = []
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            finished = list((out / "trials").glob("*/report.json"))
            if finished:
                break
            time.sleep(0.5)
        assert finished and proc.poll() is None, "the first trial should finish while the driver runs"
        time.sleep(3)  # let Tune record the finished trial in its experiment state
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its watchdog ends the Ray it started
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not (out / "sweep.csv").exists(), "killed before the end"
    done = {p.parent.name: p.stat().st_mtime_ns for p in finished}
    rerun = subprocess.run(_cmd(cfg), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert len(rows) == 2 and not any(r["error"] for r in rows)
    assert all(int(r["rounds"]) == 2 for r in rows)
    for trial, mtime in done.items():
        assert (out / "trials" / trial / "report.json").stat().st_mtime_ns == mtime, "a finished trial was redone"
    assert {r["trial_id"] for r in rows} >= set(done), "the restored sweep kept the finished trial's id"
