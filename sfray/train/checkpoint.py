"""Training checkpoints: one directory per saved step, complete or absent.

    OUTPUT/checkpoints/step_00000400/
        model.safetensors  model.json     the task's model (weights + what rebuilds it)
        state.pt                          optimizer, AMP scaler, loop state (step, epoch, history)
        config.yaml                       the resolved config of the run
        meta.json                         step, epoch, world size, global batch, task

A checkpoint is written into a temporary directory and renamed into place (or handed to Ray
Train, which copies it under the same name), so a crash never leaves a half checkpoint that a
resume would pick. ``state.pt`` holds only tensors and plain containers and is read with
``torch.load(weights_only=True)``: no code is ever unpickled. Resuming checks the keys that must
not change (``RESUME_KEYS``) against the saved config and refuses with the key named.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from sfray.errors import AssetError, ConfigError
from sfray.io.atomic import atomic_path, atomic_write_text, fsync_dir

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "state.pt"
META_FILE = "meta.json"
CONFIG_FILE = "config.yaml"
_STEP_DIR = re.compile(r"^step_(\d{8,})$")


def step_dir_name(step: int) -> str:
    return f"step_{int(step):08d}"


def checkpoints_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR


def write_checkpoint_files(directory: Path, *, state: dict[str, Any], meta: dict[str, Any], config_yaml: str) -> None:
    """Write state.pt, meta.json and config.yaml into ``directory`` (the model files come from the task)."""
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / STATE_FILE) as tmp:
        torch.save(state, tmp)
    atomic_write_text(directory / CONFIG_FILE, config_yaml)
    atomic_write_text(directory / META_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def new_tmp_dir(root: Path, step: int) -> Path:
    """A fresh, unique directory next to where ``step``'s checkpoint will go."""
    d = root / f".tmp-{step_dir_name(step)}-{uuid.uuid4().hex[:8]}"
    d.mkdir(parents=True)
    return d


def publish(tmp: Path, root: Path, step: int, keep: int) -> Path:
    """Rename a written tmp checkpoint to ``root/step_N`` and drop all but the newest ``keep``."""
    final = root / step_dir_name(step)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(root)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    r = Path(root)
    if not r.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in r.iterdir()
             if (m := _STEP_DIR.match(p.name)) and (p / META_FILE).is_file() and (p / STATE_FILE).is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def read_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise AssetError(f"{directory}: not a training checkpoint (no {META_FILE}); "
                         f"pass OUTPUT/{CHECKPOINTS_DIR}/step_N")
    return json.loads(path.read_text())


def read_state(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refusals and truncated files come in several types
        raise AssetError(f"{path}: unreadable training state ({type(exc).__name__}: {exc})") from exc


def read_config_dict(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise AssetError(f"{directory}: no {CONFIG_FILE}; not a complete sfray checkpoint")
    return yaml.safe_load(path.read_text()) or {}


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_resume_compatible(checkpoint: str | Path, current: dict[str, Any], keys: Sequence[str],
                            extra: dict[str, tuple[Any, Any]] | None = None) -> None:
    """Raise ConfigError naming the first of ``keys`` whose value differs from the checkpoint's."""
    saved = read_config_dict(checkpoint)
    pairs = {k: (_lookup(saved, k), _lookup(current, k)) for k in keys}
    pairs.update(extra or {})
    for key, (was, now) in pairs.items():
        if was != now:
            raise ConfigError(f"cannot resume from {checkpoint}: config key '{key}' was {was!r} there and is "
                              f"{now!r} now; restore it, or start a new run (another output_dir, or "
                              f"train.resume=never with an empty output_dir)")
