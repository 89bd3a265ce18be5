"""``jobs/generate.py`` under ``ray job submit`` against a local head on loopback (token auth on).

The test starts its own head with a private ``--temp-dir`` and stops exactly the processes whose
command line names that directory; it never runs a machine-wide ``ray stop``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from sfray.data.manifest import Manifest
from sfray.data.verify import verify_dataset

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_bin() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else shutil.which("ray") or "ray"


def _stop_processes_under(tag: str) -> None:
    """Stop the head's daemons (their command lines name our temp dir) and all their descendants
    (agents rename themselves to ``ray::...`` and no longer show the temp dir)."""
    victims: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(tag in part for part in proc.info["cmdline"] or []):
                victims[proc.pid] = proc
                for child in proc.children(recursive=True):
                    victims[child.pid] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    victims.pop(os.getpid(), None)
    victims = list(victims.values())
    for proc in victims:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(victims, timeout=10)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture()
def ray_head():
    # short path: Ray's unix sockets live under the temp dir and have a 107-byte limit
    temp = Path(tempfile.mkdtemp(prefix="sfr", dir="/tmp"))
    port, dash, agent, agent_grpc, env_agent, metrics, client = (_free_port() for _ in range(7))
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps every daemon (the client server included) on
    # 127.0.0.1; --node-ip-address alone still lets some resolve the machine's own address
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    cmd = [_ray_bin(), "start", "--head", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
           f"--port={port}", f"--dashboard-port={dash}", f"--temp-dir={temp}", "--num-cpus=3",
           # private ports: another Ray on this machine must not shadow our job agent
           f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
           f"--runtime-env-agent-port={env_agent}", f"--metrics-export-port={metrics}",
           f"--ray-client-server-port={client}",
           "--include-dashboard=true", "--disable-usage-stats"]
    try:
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=180)
        address = f"http://127.0.0.1:{dash}"
        deadline = time.monotonic() + 120
        while True:  # the job agent registers a few seconds after `ray start` returns
            probe = subprocess.run([_ray_bin(), "job", "list", "--address", address], env=env,
                                   capture_output=True, text=True, timeout=60)
            if probe.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        yield address, env
    finally:
        _stop_processes_under(str(temp))
        shutil.rmtree(temp, ignore_errors=True)


def test_generate_job_runs_under_ray_job_submit(ray_head, tmp_path):
    address, env = ray_head
    out = tmp_path / "job"
    cmd = [_ray_bin(), "job", "submit", "--address", address, "--working-dir", str(ROOT), "--",
           "python", "jobs/generate.py", "configs/generate/quickstart.yaml", f"output_dir={out}",
           "generate.num_samples=8", "generate.resolution=64", "generate.samples_per_shard=4",
           "ray.address=auto", "ray.actors_max=1"]
    start = time.monotonic()
    for _ in range(20):  # "No available agent" can still answer the first submissions
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if proc.returncode == 0 or "No available agent" not in proc.stdout + proc.stderr:
            break
        time.sleep(3)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert "committed 8/8" in proc.stdout
    assert sorted(Manifest.load(out).committed_ids().tolist()) == list(range(8))
    assert verify_dataset(out).ok
    assert time.monotonic() - start < 600
