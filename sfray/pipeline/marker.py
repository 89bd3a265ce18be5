"""The done-marker of a stage: written last and atomically, so its presence means "finished".

A marker holds the hash of the stage's resolved config (and of the markers of the stages it reads
from). A stage is complete when its marker exists, the hash equals the one the current config gives,
and the stage's output files are all there; anything else reruns it (docs/quickstart.md, resuming).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from sfray.io.atomic import atomic_write_json
from sfray.pipeline.layout import marker_path

#: Bumped when the marker's meaning changes, so old markers read as "not done".
MARKER_VERSION = 1


def config_hash(stage: str, config_text: str, upstream: dict[str, str | None]) -> str:
    """sha256 of the stage name, its resolved config and the hashes of the stages it reads."""
    h = hashlib.sha256()
    h.update(f"sfray-pipeline-stage/{MARKER_VERSION}\n{stage}\n".encode())
    h.update(config_text.encode("utf-8"))
    for name in sorted(upstream):
        h.update(f"\n{name}={upstream[name] or '-'}".encode())
    return h.hexdigest()


def read_marker(root: str | Path, stage: str) -> dict[str, Any] | None:
    """The stage's marker, or None when absent or unreadable (a damaged marker means "not done")."""
    path = marker_path(root, stage)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != MARKER_VERSION or not isinstance(data.get("hash"), str):
        return None
    return data


def write_marker(root: str | Path, stage: str, digest: str, seconds: float, summary: dict[str, Any], *,
                 status: str) -> Path:
    """Record that ``stage`` started ("running") or finished ("done") with the config of hash ``digest``."""
    record = {"version": MARKER_VERSION, "stage": stage, "status": status, "hash": digest, "seconds": round(seconds, 3),
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "summary": summary}
    return atomic_write_json(marker_path(root, stage), record, indent=2, default=str)


def clear_marker(root: str | Path, stage: str) -> None:
    marker_path(root, stage).unlink(missing_ok=True)
