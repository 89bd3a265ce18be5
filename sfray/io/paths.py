"""Paths that come from outside: names read from files, files the user names, output locations.

Three rules (docs/reliability.md):

* A name read from a file's contents (a class name in a pickle, a shard name in a manifest) is
  never joined to a directory as is: :func:`safe_filename` turns text into one harmless file name,
  and :func:`child_path` refuses a name that is not a plain file name (separators, ``..``, NUL).
  The check is lexical, so a directory the user symlinked on purpose (``shards -> /big/disk``)
  still works, while ``../../outside`` never leaves the directory.
* A file the user names is checked for what it is (:func:`require_file`): missing, a directory,
  or unreadable each get their own one-line message naming the config key.
* An output location must not be empty, the filesystem root, the home directory, or the current
  directory or one of its parents (:func:`unsafe_output_reason`): writing a dataset there would
  mix it with the user's own files, and sweeping it could delete them.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from sfray.errors import AssetError

#: Characters kept by :func:`safe_filename`; everything else becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Longest name :func:`safe_filename` returns (filesystems allow 255 bytes).
MAX_NAME = 100


def safe_filename(text: str, *, max_len: int = MAX_NAME, fallback: str = "unnamed") -> str:
    """One harmless file name from arbitrary text: ``[A-Za-z0-9._-]`` only, no leading dot or dash,
    at most ``max_len`` characters. Text that had to change gets a short hash of the original, so
    two different hostile names never collapse onto the same file."""
    cleaned = _UNSAFE.sub("_", str(text)).lstrip(".-_")
    if cleaned == str(text) and 0 < len(cleaned) <= max_len:
        return cleaned
    digest = hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    keep = max(max_len - len(digest) - 1, 1)
    return f"{(cleaned or fallback)[:keep]}-{digest}"


def is_plain_name(name: str) -> bool:
    """True for a single path component that stays where it is joined (no separator, ``..``, NUL)."""
    return (bool(name) and name not in (".", "..") and "\x00" not in name and "/" not in name
            and (os.altsep is None or os.altsep not in name) and os.sep not in name)


def child_path(root: str | os.PathLike, name: str, *, what: str) -> Path:
    """``root / name`` when ``name`` is a plain file name; AssetError naming ``what`` otherwise."""
    if not isinstance(name, str) or not is_plain_name(name):
        raise AssetError(f"{what}: {name!r} is not a plain file name; refusing a path outside {root}")
    return Path(root) / name


def require_file(path: str | os.PathLike, what: str, *, key: str | None = None) -> Path:
    """``path`` as a Path if it is a readable regular file, else one AssetError line that says
    which of missing / a directory / unreadable it is (and the config ``key`` to fix)."""
    p = Path(path)
    where = f" (config key {key})" if key else ""
    if p.is_dir():
        raise AssetError(f"{p}: is a directory, expected {what}{where}")
    if not p.exists():
        raise AssetError(f"{p}: file not found (expected {what}){where}")
    if not p.is_file():
        raise AssetError(f"{p}: not a regular file (expected {what}){where}")
    if not os.access(p, os.R_OK):
        raise AssetError(f"{p}: not readable (permission denied; expected {what}){where}")
    return p


def unsafe_output_reason(value: str) -> str | None:
    """Why ``value`` must not be an output directory (None when it may): empty, NUL, the root,
    the home directory, or the current directory or one of its parents."""
    if not str(value).strip():
        return "is empty (it would write into the current directory)"
    if "\x00" in str(value):
        return "contains a NUL character"
    target = Path(os.path.abspath(os.path.expanduser(str(value))))
    if target == Path(target.anchor):
        return f"is the filesystem root ({target})"
    if target == Path.home().absolute():
        return f"is the home directory ({target})"
    cwd = Path.cwd().absolute()
    if target == cwd or target in cwd.parents:
        return f"is the current directory or one of its parents ({target})"
    return None
