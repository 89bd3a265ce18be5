"""Testing-only fault injection for training runs (``faults.*``); each fault fires once.

A marker file under ``OUTPUT/_faults`` records that a fault fired, so the restarted worker (or a
rerun) carries on instead of dying again, like the generation job's fault knobs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

FAULTS_DIR = "_faults"
KILLED_MARKER = "worker-killed"
KILL_EXIT_CODE = 17


def kill_worker_hook(at_step: int, output_dir: str | Path, rank: int) -> Callable[[int], None]:
    """A loop hook: rank 0 exits hard (no cleanup, like a lost node) when it reaches ``at_step``."""

    def hook(step: int) -> None:
        if at_step < 0 or step != at_step or rank != 0:
            return
        d = Path(output_dir) / FAULTS_DIR
        d.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(d / KILLED_MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"step {step}\n".encode())
        os.close(fd)
        os._exit(KILL_EXIT_CODE)

    return hook
