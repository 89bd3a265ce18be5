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
    DATASET/_faults/                testing only: marks left by fault injection (``faults.*``)
"""

from __future__ import annotations

from pathlib import Path

from sfray.io.atomic import TMP_MARK  # files being written carry it; never committed, swept

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
#: Fault-injection marks (testing only): the worker that already died, the driver's child pids.
FAULT_WORKER_KILLED = "actor-killed"
FAULT_DRIVER_CHILDREN = "driver_children.json"


def shards_dir(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / SHARDS_DIR


def shard_path(dataset_dir: str | Path, name: str) -> Path:
    """Path of the complete shard ``name`` (no suffix) inside ``dataset_dir``."""
    return shards_dir(dataset_dir) / f"{name}{SHARD_SUFFIX}"


def is_tmp(name: str) -> bool:
    return TMP_MARK in name


def complete_shards(dataset_dir: str | Path) -> list[str]:
    """Names (without suffix) of the complete shard files on disk, sorted."""
    d = shards_dir(dataset_dir)
    if not d.is_dir():
        return []
    return sorted(p.name[: -len(SHARD_SUFFIX)] for p in d.iterdir()
                  if p.name.endswith(SHARD_SUFFIX) and not is_tmp(p.name) and p.is_file())


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
