"""SHA-256 of a file's bytes, read in chunks: how a checkpoint is identified in reports and how a
sweep's cache key covers a guide file, without loading either whole into memory."""

from __future__ import annotations

import hashlib
import os

#: Bytes read per chunk (4 MiB).
CHUNK = 1 << 22


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
