"""LMDB shards: atomic, idempotent writes and lazy, fork-safe reads.

A shard is one single-file LMDB (``subdir=False``) holding record bytes under the key
``f"{sample_id:012d}"`` plus a ``__shard__`` entry (JSON: ids, keys, checksums and a *content
checksum* over the (key, record checksum) pairs). Its name derives from its sample ids only
(``shard-{first_id:09d}-{count}`` for a contiguous range, plus a hash of the ids otherwise), never
from a worker or task index, so a retried write targets the same name (docs/dataset.md).

:func:`write_shard` builds ``shards/<name>.lmdb.tmp-<unique>`` next to the final file (same
filesystem), fsyncs it (``sfray.io.atomic`` helpers), then publishes it with ``os.link`` (atomic,
and unlike a rename it never clobbers an existing shard). If the final name exists with the same
content checksum the write is a no-op; with different content it raises. A crash leaves only the
tmp file, which :func:`sfray.data.manifest.sweep` removes. The returned :class:`ShardReceipt` is
small and picklable: the generation run logs it as a receipt, and ``Manifest.commit`` of its rows
makes the shard's samples exist.

Build on a local disk: LMDB must not be *written* on network filesystems (lmdb.h caveats).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lmdb
import numpy as np

from sfray.conventions import Field
from sfray.data import layout
from sfray.data.manifest import sample_row
from sfray.data.record import decode_record, read_header, record_checksum
from sfray.errors import AssetError, SfrayError
from sfray.io.atomic import fsync_dir, fsync_file, tmp_path_for

META_KEY = b"__shard__"
SHARD_FORMAT = 1
_PAGE = 4096
#: Blobs needed for a manifest row; images are not decoded when building receipts.
_ROW_FIELDS = (Field.CAMERA, Field.SHAPE, Field.EXPRESSION, Field.POSE)


def sample_key(sample_id: int) -> str:
    """The LMDB key (and manifest ``key``) of a sample."""
    return f"{int(sample_id):012d}"


def shard_name(sample_ids: Sequence[int]) -> str:
    """Deterministic shard name from its ids: ``shard-000000256-128`` (+ ``-<hash>`` if not contiguous)."""
    ids = np.sort(np.asarray(sample_ids, dtype=np.int64))
    name = f"shard-{int(ids[0]):09d}-{ids.size}"
    if ids.size > 1 and not np.all(np.diff(ids) == 1):
        name += "-" + hashlib.sha256(ids.tobytes()).hexdigest()[:10]
    return name


def content_checksum(keys: Sequence[str], checksums: Sequence[str]) -> str:
    """sha256 over sorted ``key:checksum`` lines: equal iff the shard holds the same records."""
    lines = "".join(f"{k}:{c}\n" for k, c in sorted(zip(keys, checksums)))
    return hashlib.sha256(lines.encode()).hexdigest()


@dataclass
class ShardReceipt:
    """What a shard write reports back (plain data; ``to_dict`` for Ray transport)."""

    name: str
    sample_ids: list[int]
    keys: list[str]
    checksums: list[str]
    nbytes: int  # sum of record sizes
    file_bytes: int
    content_checksum: str
    created: bool  # False when an identical shard already existed (idempotent retry)
    rows: list[dict[str, Any]] = field(default_factory=list)  # manifest rows, one per sample

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardReceipt:
        return cls(**d)


def _map_size(records: Sequence[tuple[int, bytes]]) -> int:
    """Generous LMDB map size: overflow pages per value plus tree pages; growth retried on MapFull."""
    pages = sum((len(b) + 64) // _PAGE + 1 for _, b in records)
    return (2 * pages + 2 * len(records) + 256) * _PAGE


def _build(tmp: Path, items: list[tuple[bytes, bytes]], meta: bytes, map_size: int) -> None:
    env = lmdb.open(str(tmp), map_size=map_size, subdir=False, lock=False, sync=True, metasync=True,
                    readahead=False, meminit=False, max_dbs=0)
    try:
        with env.begin(write=True) as txn:
            for key, value in items:
                txn.put(key, value, append=True)
            txn.put(META_KEY, meta)
        env.sync(True)
    finally:
        env.close()


def _check_existing(final: Path, name: str, checksum: str) -> None:
    with ShardReader(final) as reader:
        have = reader.meta().get("content_checksum")
    if have != checksum:
        raise AssetError(f"{final}: shard '{name}' already exists with different content "
                         f"(content checksum {have} != {checksum}); the samples were not reproduced "
                         "bit for bit. If this shard is not in manifest.parquet, move it aside "
                         "(sweep unreferenced='move').")


def write_shard(dataset_dir: str | Path, records: Sequence[tuple[int, bytes]]) -> ShardReceipt:
    """Write ``records`` [(sample_id, record bytes)] as one shard of ``dataset_dir``; return its receipt."""
    if not records:
        raise SfrayError("write_shard: no records to write")
    ordered = sorted(((int(i), bytes(b)) for i, b in records), key=lambda r: r[0])
    ids = [i for i, _ in ordered]
    if len(set(ids)) != len(ids):
        raise SfrayError(f"write_shard: duplicate sample ids in one shard (first id {ids[0]})")
    name = shard_name(ids)
    keys = [sample_key(i) for i in ids]
    sums = [record_checksum(b) for _, b in ordered]
    csum = content_checksum(keys, sums)
    rows = []
    for (sid, data), key, c in zip(ordered, keys, sums):
        sample = decode_record(data, fields=_ROW_FIELDS)
        if int(sample[Field.SAMPLE_ID]) != sid:
            raise SfrayError(f"write_shard: record stored under id {sid} says "
                             f"sample_id {sample[Field.SAMPLE_ID]}")
        rows.append(sample_row(sample, shard=name, key=key, checksum=c, nbytes=len(data)))
    nbytes = sum(len(b) for _, b in ordered)

    sdir = layout.shards_dir(dataset_dir)
    sdir.mkdir(parents=True, exist_ok=True)
    final = layout.shard_path(dataset_dir, name)
    receipt = dict(name=name, sample_ids=ids, keys=keys, checksums=sums, nbytes=nbytes,
                   content_checksum=csum, rows=rows)
    if final.exists():
        _check_existing(final, name, csum)
        return ShardReceipt(file_bytes=final.stat().st_size, created=False, **receipt)

    meta = json.dumps({"format": SHARD_FORMAT, "name": name, "sample_ids": ids, "keys": keys,
                       "checksums": sums, "content_checksum": csum}, separators=(",", ":")).encode()
    items = [(k.encode(), b) for k, (_, b) in zip(keys, ordered)]
    tmp = tmp_path_for(final)
    created = True
    try:
        size = _map_size(ordered)
        while True:
            try:
                _build(tmp, items, meta, size)
                break
            except lmdb.MapFullError:
                tmp.unlink(missing_ok=True)
                size *= 2
        fsync_file(tmp)
        try:
            os.link(tmp, final)  # atomic publish that never replaces an existing shard
        except FileExistsError:
            _check_existing(final, name, csum)  # a concurrent retry won the race
            created = False
        except OSError as exc:  # filesystems without hard links
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if final.exists():
                _check_existing(final, name, csum)
                created = False
            else:
                os.rename(tmp, final)
        fsync_dir(sdir)
    finally:
        tmp.unlink(missing_ok=True)
    return ShardReceipt(file_bytes=final.stat().st_size, created=created, **receipt)


class _EnvCache:
    """One read-only environment per shard file per process (py-lmdb refuses a second open).

    Keyed by (path, device, inode, mtime) so a shard replaced on disk gets a fresh handle;
    reference-counted so ``ShardReader.close`` closes the env when its last reader is done.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.envs: dict[tuple[Any, ...], list[Any]] = {}

    def acquire(self, path: Path) -> tuple[tuple[Any, ...], lmdb.Environment]:
        if self.pid != os.getpid():  # forked: the parent's handles are not ours to use or close
            self.pid, self.envs = os.getpid(), {}
        try:
            st = path.stat()
        except FileNotFoundError:
            raise AssetError(f"{path}: shard file not found") from None
        key = (str(path.resolve()), st.st_dev, st.st_ino, st.st_mtime_ns)
        entry = self.envs.get(key)
        if entry is None:
            try:
                env = lmdb.open(str(path), subdir=False, readonly=True, lock=False, readahead=False,
                                max_readers=512)
            except lmdb.Error as exc:
                raise AssetError(f"{path}: not a readable LMDB shard ({exc})") from exc
            # A truncated file maps fewer pages than LMDB's meta page promises; touching them would
            # kill the process with SIGBUS, so such a shard is refused before any read.
            try:
                needed = (int(env.info()["last_pgno"]) + 1) * int(env.stat()["psize"])
            except lmdb.Error as exc:
                env.close()
                raise AssetError(f"{path}: not a readable LMDB shard ({exc})") from exc
            if needed > st.st_size:
                env.close()
                raise AssetError(f"{path}: shard is truncated ({st.st_size} of {needed} bytes)")
            entry = self.envs[key] = [env, 0]
        entry[1] += 1
        return key, entry[0]

    def release(self, key: tuple[Any, ...]) -> None:
        entry = self.envs.get(key)
        if entry is None or self.pid != os.getpid():
            return
        entry[1] -= 1
        if entry[1] <= 0:
            entry[0].close()
            del self.envs[key]


_ENVS = _EnvCache()


class ShardReader:
    """Read-only access to one shard; opens lazily, reopens after fork, never pickles the env."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._env: lmdb.Environment | None = None
        self._key: tuple[Any, ...] | None = None
        self._pid = -1

    def _open(self) -> lmdb.Environment:
        if self._env is None or self._pid != os.getpid():
            self._key, self._env = _ENVS.acquire(self.path)
            self._pid = os.getpid()
        return self._env

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])

    def meta(self) -> dict[str, Any]:
        """The ``__shard__`` entry: ids, keys, checksums, content checksum."""
        with self._open().begin() as txn:
            raw = txn.get(META_KEY)
        if raw is None:
            raise AssetError(f"{self.path}: shard has no {META_KEY.decode()} entry (not written by sfray?)")
        return json.loads(raw)

    def get(self, key: str | int) -> bytes:
        """Record bytes by key string or sample id; KeyError if absent."""
        k = sample_key(key) if isinstance(key, (int, np.integer)) else key
        with self._open().begin() as txn:
            value = txn.get(k.encode())
        if value is None:
            raise KeyError(f"{self.path}: no record '{k}'")
        return value

    def header(self, key: str | int) -> tuple[dict[str, Any], int, int]:
        """(record header, offset of its first blob, record length) without copying the blobs:
        a structural check that reads only the start of each value. KeyError if absent."""
        k = sample_key(key) if isinstance(key, (int, np.integer)) else key
        with self._open().begin(buffers=True) as txn:
            value = txn.get(k.encode())
            if value is None:
                raise KeyError(f"{self.path}: no record '{k}'")
            head, base = read_header(value)
            return head, base, len(value)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        """(key, record bytes) pairs in key order."""
        with self._open().begin() as txn:
            for k, v in txn.cursor():
                if k != META_KEY:
                    yield k.decode(), bytes(v)

    def __len__(self) -> int:
        return len(self.meta()["keys"])

    def close(self) -> None:
        if self._key is not None and self._pid == os.getpid():
            _ENVS.release(self._key)
        self._env, self._key = None, None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: module globals may already be gone
            pass

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
