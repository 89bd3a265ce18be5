"""Atomic file writes: every file sfray writes appears complete or not at all.

The recipe (one implementation for the whole project): write a temporary file with a unique name
in the target's own directory (same filesystem, so the rename is atomic), flush and fsync it,
``os.replace`` it onto the target, then fsync the directory so the rename itself survives a
power cut. A crash leaves at most a ``<name>.tmp-<unique>`` file, never a truncated target.

``durable=False`` keeps the all-or-nothing rename but skips both fsyncs: for bulk exports of many
small files, where a power cut may lose recent files but must never leave a truncated one.

:func:`atomic_dir` does the same for a whole directory (an export): it is built under a temporary
sibling and renamed into place only once complete; an existing target is replaced only when the
caller says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from sfray.io.space import space_error

#: Marks files being written; such files are never read as results and are swept.
TMP_MARK = ".tmp-"


def tmp_path_for(path: str | os.PathLike) -> Path:
    """A unique temporary sibling of ``path`` (same directory, ``TMP_MARK`` in its name)."""
    p = Path(path)
    return p.with_name(f"{p.name}{TMP_MARK}{uuid.uuid4().hex[:12]}")


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory entry (a rename into it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mkdir: bool = True, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` through; publish it atomically on success.

    For writers that want a file name (PIL ``save``, ``torch.save``, safetensors, pyarrow). On an
    exception the temporary file is removed and the target is left as it was.
    """
    final = Path(path)
    if mkdir:
        final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(final)
    try:
        yield tmp
        if durable:
            fsync_file(tmp)
        os.replace(tmp, final)
        if durable:
            fsync_dir(final.parent)
    except OSError as exc:  # a full disk, in whatever words the writer used (sfray.io.space)
        full = space_error(exc, final.parent)
        if full is None:
            raise
        raise type(full)(f"writing {final}: {full}") from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, mkdir: bool = True,
                       durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see module docstring); return the path."""
    with atomic_path(path, mkdir=mkdir, durable=durable) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, mkdir: bool = True,
                      durable: bool = True) -> Path:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"), mkdir=mkdir, durable=durable)


def atomic_write_json(path: str | os.PathLike, obj: object, *, mkdir: bool = True, durable: bool = True,
                      **dumps: object) -> Path:
    """``json.dumps(obj, **dumps)`` written with :func:`atomic_write_text` (receipts, reports)."""
    return atomic_write_text(path, json.dumps(obj, **dumps), mkdir=mkdir, durable=durable)  # type: ignore[arg-type]


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary directory to fill; publish it as ``path`` on success.

    On an exception the temporary directory is removed and ``path`` is left as it was. An existing
    non-empty ``path`` raises FileExistsError unless ``replace`` (then it is renamed aside and
    removed once the new directory is in place; the caller decides what may be replaced).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and not final.is_dir():
        raise NotADirectoryError(f"{final} exists and is not a directory")
    if final.is_dir() and any(final.iterdir()) and not replace:
        raise FileExistsError(f"{final} exists and is not empty")
    tmp = tmp_path_for(final)
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if final.exists():
            old = tmp_path_for(final)
            os.replace(final, old)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
