"""The hostile cases that are about Ray: errors raised inside actors, SIGTERM, and ``kill -9`` of the
driver. Each runs ``sfray generate`` in a subprocess on a private loopback Ray and stops only the
processes that run started (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sfray.data import layout
from sfray.data.manifest import Manifest
from sfray.data.verify import verify_dataset
from tests.hardening.helpers import ROOT

pytestmark = pytest.mark.ray
QUICKSTART = str(ROOT / "configs" / "generate" / "quickstart.yaml")
SMALL = ["generate.resolution=64", "generate.batch_size=4", "generate.samples_per_shard=4",
         "generate.preview_samples=1", "ray.actors_min=1", "ray.actors_max=1", "ray.num_cpus=2"]
#: Error-level lines (Python logging, Ray's C++ log, raylet) and tracebacks.
ERROR_LINE = re.compile(r"\bERROR\b|\bCRITICAL\b|\(raylet\) [EF]\b|^\[[^\]]*\s[EF]\s+\d+\s+\d+\]|Traceback",
                        re.MULTILINE)
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONUNBUFFERED": "1"}


def generate_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sfray.cli", "generate", QUICKSTART, f"output_dir={out}", *SMALL, *extra]


def descendants(pid: int) -> dict[int, float]:
    try:
        return {c.pid: c.create_time() for c in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return {}


def alive(known: dict[int, float]) -> list[str]:
    left = []
    for pid, created in known.items():
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) < 1e-3:
                left.append(f"{pid} {proc.name()}")
        except psutil.Error:
            pass
    return left


def wait_gone(known: dict[int, float], seconds: float = 40) -> list[str]:
    """Wait until none of ``known`` is alive; returns what is left, after killing it (cleanup)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive(known):
        time.sleep(0.5)
    left = alive(known)
    for pid in known:
        try:
            os.kill(pid, signal.SIGKILL)  # only processes this test's run started
        except (ProcessLookupError, PermissionError):
            pass
    return left


@pytest.mark.parametrize("case", ["actor constructor", "actor call"])
def test_an_error_inside_a_ray_actor_is_one_line_with_a_log_file(tmp_path, case):
    """Original failure: 160-390 lines of Ray stack dump for a checkpoint that passed the preflight."""
    out = tmp_path / "ds"
    if case == "actor constructor":
        pkl = tmp_path / "not_next3d.pkl"  # only allowed globals, so the preflight scan passes it
        pkl.write_bytes(pickle.dumps({"G_ema": 1}, protocol=4))
        extra = ["generator.kind=next3d", f"generator.next3d.checkpoint={pkl}", "generate.num_samples=4"]
        words = f"building the generator failed: {pkl}: G_ema is a 'int'"
    else:
        extra = ["quality.detector=tests.hardening.faulty.explode", "generate.num_samples=4"]
        words = "generating samples 0-3 failed: RuntimeError: the detector crashed on purpose"
    proc = subprocess.run(generate_cmd(out, *extra), env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 2, log[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("sfray: error:")]
    assert len(errors) == 1 and words in errors[0], log[-3000:]
    bad = [ln for ln in log.splitlines() if ERROR_LINE.search(ln)]
    assert not bad, "\n".join(bad)
    trace = Path(errors[0].split("full traceback in ")[1].rstrip(")"))
    assert trace.parent == out / layout.LOGS_DIR and "Traceback" in trace.read_text()


def test_sigterm_stops_a_ray_run_like_ctrl_c_and_commits_what_finished(tmp_path):
    """Original failure: SIGTERM printed Ray stack lines where SIGINT printed "sfray: interrupted"."""
    out = tmp_path / "ds"
    cmd = generate_cmd(out, "generate.num_samples=400")
    proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    known: dict[int, float] = {}
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list(layout.receipts_dir(out).glob("*.json")):
            known.update(descendants(proc.pid))
            time.sleep(0.2)
        known.update(descendants(proc.pid))
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == "sfray: interrupted"
    assert "Traceback" not in stderr and not [ln for ln in stderr.splitlines() if ERROR_LINE.search(ln)]
    committed = Manifest.load(out).committed_ids()
    assert 0 < committed.size < 400, "what finished before the signal is committed"
    assert not layout.tmp_files(out) and verify_dataset(out).ok
    assert wait_gone(known, 30) == [], "the run's Ray processes stopped with it"


def test_kill_9_of_the_driver_leaves_no_ray_process_behind(tmp_path):
    """Original failure: after ``kill -9`` of the driver, the Ray agents it started lived on."""
    out = tmp_path / "ds"
    proc = subprocess.run(generate_cmd(out, "generate.num_samples=64", "faults.fail_driver_after_shards=1"),
                          env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    recorded = json.loads((layout.faults_dir(out) / layout.FAULT_DRIVER_CHILDREN).read_text())
    known = {}
    for pid in recorded:
        try:
            known[pid] = psutil.Process(pid).create_time()
        except psutil.Error:
            pass
    assert wait_gone(known, 40) == [], "the watchdog stopped the Ray processes the dead driver started"
    # (that a rerun then completes the dataset is tests/distributed/test_generation.py's driver test)
