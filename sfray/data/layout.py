"""File names of a dataset directory (DESIGN.md §6), in one place::

    DATASET/manifest.parquet        the commit record: one row per committed sample
    DATASET/dataset.yaml            resolved config, generator identity, label schema, counts
    DATASET/shards/<name>.lmdb      complete shards (single-file LMDB, subdir=False)
    DATASET/shards/<name>.lmdb.tmp-<unique>   shards being built; never referenced, swept
    DATASET/orphans/                unreferenced complete shards moved aside by a sweep
"""

from __future__ import annotations

import os
from pathlib import Path

MANIFEST_FILE = "manifest.parquet"
DATASET_YAML = "dataset.yaml"
SHARDS_DIR = "shards"
ORPHANS_DIR = "orphans"
SHARD_SUFFIX = ".lmdb"
#: Marks files being written (shards and the manifest); such files are never committed.
TMP_MARK = ".tmp-"


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
    """Leftovers of interrupted writes: tmp shards (and their lock files) and tmp manifests."""
    root = Path(dataset_dir)
    found = [p for p in shards_dir(root).glob(f"*{TMP_MARK}*")] if shards_dir(root).is_dir() else []
    found += list(root.glob(f"{MANIFEST_FILE}{TMP_MARK}*")) + list(root.glob(f"{DATASET_YAML}{TMP_MARK}*"))
    return sorted(found)


def fsync_dir(path: str | Path) -> None:
    """Flush a directory entry (a rename into it) to disk: the last step of an atomic publish."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
