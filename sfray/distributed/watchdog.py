"""A parent-death watchdog for the local Ray a driver starts (docs/reliability.md).

``ray.init()`` starts its daemons with kernel fate-sharing, so the GCS and the raylet die with a
driver that is killed with ``kill -9``; the agents the raylet starts (dashboard agent, runtime-env
agent) do not, and would sleep forever, reparented to init. So a driver that starts a local Ray
also starts this small process (in its own session, so a terminal's Ctrl-C does not reach it). It
keeps a list of the driver's descendants (pid + start time, refreshed every half second) and
waits on a pipe from the driver. When the pipe closes without the driver's "done" line (the driver
died, however it died), it terminates the processes of its last list that are still the same
processes, kills those that ignore SIGTERM for a few seconds, and exits. A driver that ends
normally writes "done" first, and the watchdog exits without touching anything.

Run as ``python -m sfray.distributed.watchdog PARENT_PID``; :func:`start_watchdog` does that.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

DONE = b"done\n"
POLL_S = 0.5
GRACE_S = 3.0


def _descendants(parent: psutil.Process) -> dict[int, float]:
    out: dict[int, float] = {}
    try:
        for child in parent.children(recursive=True):
            if child.pid == os.getpid():
                continue
            try:
                out[child.pid] = child.create_time()
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return out


def _same(pid: int, created: float) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        return proc if abs(proc.create_time() - created) < 1e-3 else None
    except psutil.Error:
        return None


def stop_processes(known: dict[int, float], grace: float = GRACE_S) -> list[int]:
    """SIGTERM, then SIGKILL after ``grace`` seconds, the processes of ``known`` that are still the
    same processes (pid and start time); returns the pids signalled."""
    procs = [p for pid, created in known.items() if (p := _same(pid, created)) is not None]
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    return [p.pid for p in procs]


def watch(parent_pid: int, stream: int) -> None:
    """Follow ``parent_pid``'s descendants until ``stream`` (a pipe from it) says done or closes."""
    try:
        parent = psutil.Process(parent_pid)
    except psutil.Error:
        return
    known: dict[int, float] = {}
    buffer = b""
    while True:
        known.update(_descendants(parent))
        known = {pid: c for pid, c in known.items() if _same(pid, c) is not None}
        ready, _, _ = select.select([stream], [], [], POLL_S)
        if not ready:
            continue
        chunk = os.read(stream, 64)
        buffer += chunk
        if DONE in buffer:
            return
        if not chunk:  # EOF without "done": the driver is gone
            stop_processes(known)
            return


@contextmanager
def start_watchdog() -> Iterator[subprocess.Popen]:
    """Run a watchdog of this process for the ``with`` block (see the module docstring)."""
    proc = subprocess.Popen([sys.executable, "-m", "sfray.distributed.watchdog", str(os.getpid())],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)
    try:
        yield proc
    finally:
        try:
            assert proc.stdin is not None
            proc.stdin.write(DONE)
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":  # pragma: no cover - runs as its own process
    watch(int(sys.argv[1]), sys.stdin.fileno())
