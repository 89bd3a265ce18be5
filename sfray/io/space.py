"""Free disk space: checked before a long write, and named in words when a write runs out of it.

A full disk shows up in many costumes: ``OSError(ENOSPC)``, ``EDQUOT`` (a quota), LMDB's
``MDB_MAP_FULL`` or ``mdb_txn_commit: Input/output error`` (LMDB reports a failed write of its
pages as EIO), pyarrow's ``IOError`` with the errno text inside. :func:`space_error` turns each of
these into one :class:`NoSpaceError` line: "no space left on PATH: need ~X, have Y"
(docs/reliability.md).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from sfray.errors import SfrayError

_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_SPACE_TEXT = ("no space left", "disk quota exceeded", "file too large", "mdb_map_full",
               "mapfullerror", "environment mapsize limit reached")
#: LMDB (and some filesystems) report a page write that failed for lack of space as a plain EIO.
_EIO_TEXT = ("input/output error",)


class NoSpaceError(SfrayError):
    """A write failed (or would fail) because the filesystem is full."""


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def existing_ancestor(path: str | os.PathLike) -> Path:
    """``path`` itself if it exists, else its nearest existing parent (where it would be created)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def free_bytes(path: str | os.PathLike) -> int:
    """Bytes available to this user on the filesystem that holds (or would hold) ``path``."""
    return int(shutil.disk_usage(existing_ancestor(path)).free)


def free_inodes(path: str | os.PathLike) -> int | None:
    """New files this user may still create on ``path``'s filesystem (None where not reported)."""
    try:
        st = os.statvfs(existing_ancestor(path))
    except OSError:
        return None
    return int(st.f_favail) if st.f_files else None


def check_free_space(path: str | os.PathLike, need: int, what: str) -> None:
    """Raise NoSpaceError when ``need`` bytes do not fit on ``path``'s filesystem."""
    have = free_bytes(path)
    if need > have:
        raise NoSpaceError(f"no space left on {existing_ancestor(path)} for {what}: need ~{human_bytes(need)}, "
                           f"have {human_bytes(have)} free")


def is_space_error(exc: BaseException) -> bool:
    """Does ``exc`` say that a write ran out of space (in any of the costumes above)?"""
    if isinstance(exc, NoSpaceError):
        return True
    if isinstance(exc, OSError) and exc.errno in _SPACE_ERRNOS:
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(t in text for t in _SPACE_TEXT)


def is_eio(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.EIO:
        return True
    text = str(exc).lower()
    return any(t in text for t in _EIO_TEXT)


def space_error(exc: BaseException, path: str | os.PathLike, need: int | None = None) -> SfrayError | None:
    """A one-line :class:`NoSpaceError` for a write to ``path`` that failed with ``exc``, or None
    when ``exc`` is not about space. An I/O error counts when the filesystem is (nearly) full."""
    if isinstance(exc, SfrayError) and not isinstance(exc, NoSpaceError):
        return None
    have = free_bytes(path)
    needed = f"need ~{human_bytes(need)}, " if need else ""
    if is_space_error(exc):
        if free_inodes(path) == 0:
            return NoSpaceError(f"no space left on {existing_ancestor(path)}: the filesystem has no free inodes "
                                f"(room for new files) left, though {human_bytes(have)} are free")
        return NoSpaceError(f"no space left on {existing_ancestor(path)}: {needed}have {human_bytes(have)} free")
    if is_eio(exc):
        if need is not None and have < 2 * need or have < 64 * 2**20:
            return NoSpaceError(f"no space left on {existing_ancestor(path)} (the write failed with an "
                                f"I/O error): {needed}have {human_bytes(have)} free")
        return SfrayError(f"I/O error writing {path}: {exc} (the disk may be failing or full; "
                          f"{human_bytes(have)} free)")
    return None
