"""File names of a dataset directory (docs/dataset.md), in one place::

    DATASET/manifest.parquet        the commit record: one row per committed sample
    DATASET/dataset.yaml            resolved config, generator identity, label schema, counts
    DATASET/config.yaml             the resolved generation config (a resume must match it)
    DATASET/preview.png             contact sheet of the first committed samples
    DATASET/shards/<name>.lmdb      complete shards (single-file LMDB, subdir=False)
    DATASET/shards/<name>.lmdb.tmp-<unique>   shards being built; never referenced, swept
    DATASET/receipts/<unit>.json    write-ahead log: one receipt per written shard (folded into
                                    the manifest by the generation run's recover step)
    DATASET/orphans/                unreferenced complete shards moved aside by a sweep
    DATASET/damaged/                committed shards found missing records or corrupt by a rerun
                                    (kept for inspection; their samples were regenerated)
    DATASET/logs/                   full tracebacks of failed runs (the error line names the file)
    DATASET/sfray.lock              the writer's lock: pid, host, start time (docs/reliability.md)
    DATASET/_faults/                testing only: marks left by fault injection (``faults.*``)

Names read back from files (a manifest's ``shard`` column, a receipt's shard) must be sfray shard
names (:data:`SHARD_NAME`); :func:`shard_path` refuses anything else, so no row can point outside
``shards/``. Destructive commands act only on directories that :func:`is_dataset_dir` recognises.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from sfray.errors import AssetError
from sfray.io.atomic import TMP_MARK  # files being written carry it; never committed, swept
from sfray.io.lock import directory_lock

MANIFEST_FILE = "manifest.parquet"
DATASET_YAML = "dataset.yaml"
CONFIG_FILE = "config.yaml"
PREVIEW_FILE = "preview.png"
SHARDS_DIR = "shards"
RECEIPTS_DIR = "receipts"
RECEIPT_SUFFIX = ".json"
ORPHANS_DIR = "orphans"
SHARD_SUFFIX = ".lmdb"
FAULTS_DIR = "_faults"
DAMAGED_DIR = "damaged"
LOGS_DIR = "logs"
LOCK_FILE = "sfray.lock"
#: Files only an sfray dataset has; a directory with none of them is not one.
MARKER_FILES = (MANIFEST_FILE, CONFIG_FILE, DATASET_YAML)
#: Folder layouts of other datasets that sfray exports to and imports from (``sfray.data.export``,
#: ``sfray.data.importers``, docs/dataset.md).
EXPORT_LAYOUTS = ("synthforge", "facesynthetics")
#: Every shard name ``sfray.data.shard.shard_name`` makes: first id, count, optional id hash.
SHARD_NAME = re.compile(r"shard-\d{9,}-\d+(?:-[0-9a-f]{10})?")
#: Fault-injection marks (testing only): the worker that already died, the driver's child pids.
FAULT_WORKER_KILLED = "actor-killed"
FAULT_DRIVER_CHILDREN = "driver_children.json"


def shards_dir(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / SHARDS_DIR


def is_shard_name(name: object) -> bool:
    return isinstance(name, str) and SHARD_NAME.fullmatch(name) is not None


def shard_path(dataset_dir: str | Path, name: str) -> Path:
    """Path of the complete shard ``name`` (no suffix) inside ``dataset_dir``.

    ``name`` usually comes from a file (manifest, receipt); one that is not an sfray shard name
    (``../../outside/evil``) raises AssetError instead of pointing anywhere.
    """
    if not is_shard_name(name):
        raise AssetError(f"{dataset_dir}: shard name {name!r} is not an sfray shard name; refusing a "
                         f"path outside {shards_dir(dataset_dir)}")
    return shards_dir(dataset_dir) / f"{name}{SHARD_SUFFIX}"


def is_tmp(name: str) -> bool:
    return TMP_MARK in name


def complete_shards(dataset_dir: str | Path) -> list[str]:
    """Names (without suffix) of the complete shard files on disk, sorted."""
    d = shards_dir(dataset_dir)
    if not d.is_dir():
        return []
    return sorted(p.name[: -len(SHARD_SUFFIX)] for p in d.iterdir()
                  if p.name.endswith(SHARD_SUFFIX) and is_shard_name(p.name[: -len(SHARD_SUFFIX)])
                  and p.is_file())


def tmp_files(dataset_dir: str | Path) -> list[Path]:
    """Leftovers of interrupted writes: tmp shards (and their lock files), tmp receipts, and tmp
    files of the top-level files (manifest, dataset.yaml, config.yaml, preview.png)."""
    root = Path(dataset_dir)
    found = list(root.glob(f"*{TMP_MARK}*")) if root.is_dir() else []
    for sub in (shards_dir(root), receipts_dir(root)):
        found += list(sub.glob(f"*{TMP_MARK}*")) if sub.is_dir() else []
    return sorted(found)


def receipts_dir(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / RECEIPTS_DIR


def faults_dir(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / FAULTS_DIR


def logs_dir(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / LOGS_DIR


def is_dataset_dir(path: str | Path) -> bool:
    """Does ``path`` hold an sfray dataset (or the start of one: a run writes config.yaml first)?"""
    root = Path(path)
    return root.is_dir() and any((root / name).is_file() for name in MARKER_FILES)


def require_dataset(path: str | Path, action: str) -> Path:
    """``path`` if it is a dataset directory, else AssetError: ``action`` (a destructive command)
    must not run on anything else."""
    root = Path(path)
    if not root.is_dir():
        raise AssetError(f"{root}: no such dataset directory; refusing to {action}")
    if not is_dataset_dir(root):
        raise AssetError(f"{root} is not an sfray dataset (none of {', '.join(MARKER_FILES)}); "
                         f"refusing to {action}")
    return root


@contextlib.contextmanager
def dataset_lock(dataset_dir: str | Path, purpose: str) -> Iterator[Path]:
    """The dataset's writer lock (``sfray.io.lock``): one run, import or sweep at a time."""
    with directory_lock(dataset_dir, LOCK_FILE, purpose) as path:
        yield path
