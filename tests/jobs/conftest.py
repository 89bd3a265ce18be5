"""One private Ray head on loopback for every ``ray job submit`` test of the session.

The ``ray_head`` fixture starts ``ray start --head`` once per session with its own ``--temp-dir``,
free ports for every daemon, and token authentication with a token made for this session (passed as
``RAY_AUTH_TOKEN``, so ``~/.ray/auth_token`` is neither read nor written). Teardown stops exactly the
processes it started: those of this user whose command line names the private temp dir (the head's
daemons) and all their descendants (workers, job supervisors, job drivers). It never runs a
machine-wide ``ray stop`` and never kills by name. Use ``ray_head.submit([...])`` to run a job file::

    proc = ray_head.submit(["python", "jobs/generate.py", "configs/generate/quickstart.yaml", ...])
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
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]

#: CPUs the head advertises: more than the 2 cores of the dev machine on purpose, so that a job's
#: driver, a Ray Data pool and two training workers can be scheduled at once.
HEAD_NUM_CPUS = 4
#: Object store of the test head (bytes): small, the jobs under test move little data.
HEAD_OBJECT_STORE_BYTES = 1_000_000_000
#: Seconds to wait for the job agent to answer after `ray start` returned.
AGENT_READY_TIMEOUT_S = 120


def ray_bin() -> str:
    """The ``ray`` executable of the Python running the tests."""
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else shutil.which("ray") or "ray"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_under(tag: str) -> list[psutil.Process]:
    """This user's processes whose command line names ``tag``, and all their descendants (agents
    rename themselves to ``ray::...`` and no longer show the temp dir)."""
    uid = os.getuid()
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "cmdline", "uids"]):
        try:
            if proc.info["uids"] is None or proc.info["uids"].real != uid:
                continue
            if any(tag in part for part in proc.info["cmdline"] or []):
                found[proc.pid] = proc
                for child in proc.children(recursive=True):
                    found[child.pid] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


def stop_processes_under(tag: str, grace_s: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL after ``grace_s``, every process :func:`_processes_under` finds; returns
    the pids still alive afterwards (normally none). The GCS server, the raylet and the autoscaler
    monitor ignore SIGTERM for many seconds; a test head keeps no state worth a longer grace."""
    victims = _processes_under(tag)
    for proc in victims:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(victims, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    _, still = psutil.wait_procs(alive, timeout=5)
    late = _processes_under(tag)  # anything a daemon started while it was being stopped
    for proc in late:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    _, late_still = psutil.wait_procs(late, timeout=5)
    return sorted({p.pid for p in [*still, *late_still]})


@dataclass
class RayHead:
    """A running private head: its dashboard address and the environment a client needs."""

    address: str  # http://127.0.0.1:<dashboard port>, for `ray job ... --address`
    gcs_address: str  # 127.0.0.1:<gcs port>, for ray.init(address=...)
    env: dict[str, str]  # RAY_AUTH_MODE / RAY_AUTH_TOKEN / PYTHONPATH for clients
    temp_dir: Path

    def ray(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the ``ray`` CLI with this head's client environment (or ``env``)."""
        return subprocess.run([ray_bin(), *args], env=self.env if env is None else env, capture_output=True,
                              text=True, timeout=timeout)

    def processes(self) -> list[psutil.Process]:
        """The processes of this head (daemons and their descendants)."""
        return _processes_under(str(self.temp_dir))

    def submit(self, entrypoint: Sequence[str], *, working_dir: Path = ROOT, timeout: float = 600,
               submit_args: Sequence[str] = ()) -> subprocess.CompletedProcess:
        """``ray job submit --address A --working-dir D [submit_args] -- ENTRYPOINT``, waiting for the
        job; returns the finished process (exit code 0 iff the job succeeded, the job's log in stdout).
        Retries while the agent still answers "No available agent" just after start-up."""
        cmd = [ray_bin(), "job", "submit", "--address", self.address, "--working-dir", str(working_dir),
               *submit_args, "--", *entrypoint]
        deadline = time.monotonic() + timeout
        while True:
            proc = subprocess.run(cmd, env=self.env, cwd=working_dir, capture_output=True, text=True,
                                  timeout=max(1.0, deadline - time.monotonic()))
            if proc.returncode == 0 or "No available agent" not in proc.stdout + proc.stderr:
                return proc
            if time.monotonic() > deadline - 5:
                return proc
            time.sleep(3)


def _client_env(token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN_PATH")}
    env.update({
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        # keeps every daemon (the client server included) on 127.0.0.1; --node-ip-address alone
        # still lets some resolve the machine's own address
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    })
    return env


def _start_head(temp: Path, env: dict[str, str]) -> RayHead:
    port, dash, agent, agent_grpc, env_agent, metrics, client = (_free_port() for _ in range(7))
    cmd = [ray_bin(), "start", "--head", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
           f"--port={port}", f"--dashboard-port={dash}", f"--temp-dir={temp}",
           f"--num-cpus={HEAD_NUM_CPUS}", f"--object-store-memory={HEAD_OBJECT_STORE_BYTES}",
           # private ports: another Ray on this machine must not shadow our job agent
           f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
           f"--runtime-env-agent-port={env_agent}", f"--metrics-export-port={metrics}",
           f"--ray-client-server-port={client}",
           "--include-dashboard=true", "--disable-usage-stats"]
    started = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        raise RuntimeError(f"ray start failed ({started.returncode}): {started.stderr[-2000:]}")
    head = RayHead(address=f"http://127.0.0.1:{dash}", gcs_address=f"127.0.0.1:{port}", env=env,
                   temp_dir=temp)
    deadline = time.monotonic() + AGENT_READY_TIMEOUT_S
    while True:  # the job agent registers a few seconds after `ray start` returns
        probe = subprocess.run([ray_bin(), "job", "list", "--address", head.address], env=env,
                               capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return head
        if time.monotonic() > deadline:
            raise RuntimeError(f"job agent at {head.address} not ready: {probe.stderr[-2000:]}")
        time.sleep(2)


@pytest.fixture(scope="session")
def ray_head():
    """The session's private loopback head (token auth on); see the module docstring."""
    # short path: Ray's unix sockets live under the temp dir and have a 107-byte limit
    temp = Path(tempfile.mkdtemp(prefix="sfr", dir="/tmp"))
    env = _client_env(uuid.uuid4().hex)
    try:
        try:
            head = _start_head(temp, env)
        except (RuntimeError, subprocess.TimeoutExpired):
            # a port taken between choosing and binding it: stop what started, try once more
            stop_processes_under(str(temp))
            head = _start_head(temp, env)
        yield head
    finally:
        survivors = stop_processes_under(str(temp))
        shutil.rmtree(temp, ignore_errors=True)
        if survivors:
            pytest.fail(f"processes of the test Ray head survived SIGKILL: {survivors}")
