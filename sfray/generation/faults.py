"""Testing only: fault injection for the ``faults.fail_*`` knobs (docs/architecture.md).

These functions kill processes on purpose so the tests can prove that a run loses and duplicates
no sample when a worker or the driver dies. They do nothing unless a ``faults`` knob is set, and
no production code path depends on what they do. Each fault fires once per dataset directory:
its mark in ``DATASET/_faults/`` stops a retried or restarted process from firing it again.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from sfray.data import layout
from sfray.io.atomic import atomic_write_json


def kill_worker_once(dataset_dir: str | Path, calls: int, after: int) -> None:
    """``faults.fail_actor_after_batches``: the first worker to reach ``after`` calls exits hard.

    The mark is created exclusively, so among concurrent workers exactly one dies.
    """
    if after < 0 or calls < after:
        return
    fault_dir = layout.faults_dir(dataset_dir)
    fault_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(fault_dir / layout.FAULT_WORKER_KILLED, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(17)  # no cleanup, no exception: as a crashed worker process looks to its scheduler


def kill_driver(dataset_dir: str | Path) -> None:
    """``faults.fail_driver_after_shards``: record this process's children (so a test can stop
    exactly them afterwards) and SIGKILL this process, as a crashed or preempted driver."""
    import psutil

    children = [c.pid for c in psutil.Process().children(recursive=True)]
    atomic_write_json(layout.faults_dir(dataset_dir) / layout.FAULT_DRIVER_CHILDREN, children)
    os.kill(os.getpid(), signal.SIGKILL)


def driver_children(dataset_dir: str | Path) -> list[int]:
    """The pids :func:`kill_driver` recorded (empty if it never fired)."""
    path = layout.faults_dir(dataset_dir) / layout.FAULT_DRIVER_CHILDREN
    return json.loads(path.read_text()) if path.is_file() else []
