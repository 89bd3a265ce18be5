"""Datasets a sweep makes once and shares: keyed by a content hash of what makes them.

A trial asks for "the dataset of this generation config"; the key is a SHA-256 of the config
(with ``output_dir`` left out) and of every input file it names that changes the result (a
guide file). The first trial to ask builds it under the entry's lock; a concurrent trial waits
on that lock and then finds it ready. An entry counts as ready only once its ``READY`` marker is
published (atomically, last), so a build that crashed half-way is never used: the next trial
resumes it (generation runs are resumable).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from sfray.config.schema import GenerateJobConfig
from sfray.io.atomic import atomic_write_text
from sfray.io.digest import file_sha256
from sfray.io.lock import LockHeld, directory_lock

READY = "READY"
LOCKS = ".locks"


def content_key(cfg: GenerateJobConfig) -> str:
    """SHA-256 of what decides the dataset's content: the config minus output_dir, plus the guide file."""
    tree = OmegaConf.to_container(OmegaConf.structured(cfg))
    tree.pop("output_dir", None)
    guide = tree.get("sampling", {}).pop("guide", None)
    payload = {"config": tree, "guide": file_sha256(guide) if guide else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def is_ready(path: Path) -> bool:
    return (path / READY).is_file()


def cached(root: str | Path, label: str, key: str, build: Callable[[Path], None], *, poll_s: float = 0.5,
           log: Callable[[str], None] | None = None) -> Path:
    """The entry ``root/label-key[:16]``; ``build(path)`` makes it if no one has (once, under its lock)."""
    path = Path(root) / f"{label}-{key[:16]}"
    if is_ready(path):
        return path
    waited = False
    while True:
        try:
            with directory_lock(Path(root) / LOCKS, f"{path.name}.lock", "sfray sweep: dataset cache"):
                if not is_ready(path):
                    if log:
                        log(f"sweep: building {path.name}")
                    build(path)
                    atomic_write_text(path / READY, json.dumps({"key": key, "label": label, "at": time.time()}))
                return path
        except LockHeld:
            if not waited and log:
                log(f"sweep: waiting for another trial to build {path.name}")
            waited = True
            time.sleep(poll_s)
