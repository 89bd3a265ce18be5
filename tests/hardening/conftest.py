"""Fixtures of the hardening tests: SIGTERM restored after ``main()``, and small tmpfs mounts."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _restore_sigterm():
    """``main()`` installs sfray's SIGTERM handler in this process; put pytest's back."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def small_fs(tmp_path):
    """A small tmpfs (root only) that tests mount and unmount themselves; yields a mount() function."""
    mounted: list[Path] = []

    def mount(size: str, readonly: bool = False) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        opts = f"size={size}" + (",ro" if readonly else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


