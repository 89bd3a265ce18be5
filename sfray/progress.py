"""A one-line progress report for long work (done/total, rate, ETA), terminal- and log-friendly."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """A single updating progress line on stderr: done/total, rate and ETA."""

    def __init__(self, total: int, label: str, stream: Any = None, min_interval: float | None = None):
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self.last = 0.0
        self.last_done = -1
        # a terminal gets an updating line; a log file a new line now and then
        self.min_interval = min_interval if min_interval is not None else (0.5 if self.tty else 10.0)

    def update(self, done: int, extra: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and (now - self.last < self.min_interval or done == self.last_done) and done < self.total:
            return
        self.last, self.last_done = now, done
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        eta_s = f"{eta:5.0f}s" if eta != float("inf") else "    ?"
        line = f"{self.label}: {done}/{self.total} ({rate:.2f}/s, ETA {eta_s}){', ' + extra if extra else ''}"
        self.stream.write(f"\r{line}\x1b[K" if self.tty else line + "\n")
        self.stream.flush()

    def close(self, extra: str = "") -> None:
        self.update(self.total if self.total else 0, extra, force=True)
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()
