"""An exclusive, crash-safe lock on a directory: one writer at a time (docs/reliability.md).

The lock is ``fcntl.flock`` on a small file inside the directory. The kernel releases it when the
holder's process ends, however it ends (``kill -9`` included), so a stale lock never needs
cleaning up by hand. The file records who holds it (pid, host, start time, command) so a refused
writer can say whom it waited for. It is per process, not per machine: the Ray workers of a run
write shards without taking it (their driver holds it for them), and ``flock`` is not inherited
across ``exec``, so the Ray daemons the driver starts never hold it after the driver is gone.

The holder record is written in place through the locked descriptor, not with an atomic rename:
a rename would swap the inode under the lock and let a second writer lock the new file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sfray.errors import SfrayError


class LockHeld(SfrayError):
    """Another process holds the lock."""


def read_holder(lock_file: str | os.PathLike) -> dict[str, Any]:
    """The holder record of ``lock_file`` ({} when absent or unreadable)."""
    try:
        return json.loads(Path(lock_file).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder.get("pid"):
        return "another process (it has not recorded itself yet)"
    since = holder.get("since")
    started = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(since)) if since else ""
    what = f", {holder['purpose']}" if holder.get("purpose") else ""
    return f"pid {holder['pid']} on host {holder.get('host', '?')}{started}{what}"


@contextlib.contextmanager
def directory_lock(directory: str | os.PathLike, lock_name: str, purpose: str, *,
                   extra: dict[str, Any] | None = None) -> Iterator[Path]:
    """Hold the exclusive lock of ``directory`` (created if needed) for the ``with`` block.

    Raises :class:`LockHeld` at once, naming the holder's pid and host, when another process holds
    it. ``purpose`` (e.g. "sfray generate") and ``extra`` go into the holder record.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    path = root / lock_name
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(f"{root} is locked by {_describe(read_holder(path))}; one writer at a "
                           "time (wait for it to finish, or stop it)") from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                  "purpose": purpose, "command": " ".join(sys.argv)[:500], **(extra or {})}
        data = json.dumps(record).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        yield path
    finally:
        os.close(fd)  # releases the flock


def update_holder(lock_file: str | os.PathLike, **fields: Any) -> None:
    """Add ``fields`` to the holder record of a lock this process holds (e.g. the Ray daemons it started)."""
    record = {**read_holder(lock_file), **fields}
    fd = os.open(lock_file, os.O_RDWR | os.O_CLOEXEC)
    try:
        data = json.dumps(record).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)
