"""Turn a failure inside a worker into one line a user can act on (docs/reliability.md).

Whatever runs samples (this process, a Ray actor, a Ray write task) wraps its work with
:func:`sample_failure`: the full traceback goes to a log file under ``DATASET/logs/`` and the
error that travels back is a :class:`SampleError` (an ``SfrayError``) whose message names the
samples, the cause (the file or key when the cause is a user error) and the log file. A full disk
becomes "no space left on ..." (``sfray.io.space``). The driver then prints that one line instead
of a worker's stack dump.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from sfray.data import layout
from sfray.errors import SfrayError
from sfray.io.atomic import atomic_write_text
from sfray.io.space import space_error


class SampleError(SfrayError):
    """Making or storing some samples failed; the message names them, the cause and the log."""


def describe_ids(ids: Sequence[int]) -> str:
    """``samples 8-15``, ``sample 3``, ``samples 1, 4, 9 (+5 more)``."""
    ids = sorted(int(i) for i in ids)
    if not ids:
        return "no samples"
    if len(ids) == 1:
        return f"sample {ids[0]}"
    if ids[-1] - ids[0] == len(ids) - 1:
        return f"samples {ids[0]}-{ids[-1]}"
    head = ", ".join(map(str, ids[:4]))
    return f"samples {head}" + (f" (+{len(ids) - 4} more)" if len(ids) > 4 else "")


def one_line(exc: BaseException) -> str:
    """The cause in one line: a user error's own message, else ``Type: first line``."""
    text = " ".join(str(exc).split()) if isinstance(exc, SfrayError) else \
        f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
    return text if len(text) <= 400 else text[:397] + "..."


def write_log(dataset_dir: str | os.PathLike | None, name: str, text: str) -> Path:
    """Write ``text`` to ``DATASET/logs/<name>-<host>-<pid>-<time>.log`` (a temporary directory
    when the dataset directory cannot take it); returns the path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    file = f"{name}-{socket.gethostname()}-{os.getpid()}-{stamp}-{time.time_ns() % 10**6:06d}.log"
    if dataset_dir is not None:
        try:
            return atomic_write_text(layout.logs_dir(dataset_dir) / file, text)
        except (OSError, SfrayError):  # a full or read-only dataset disk: the temporary directory
            pass
    import tempfile

    return atomic_write_text(Path(tempfile.gettempdir()) / f"sfray-{file}", text)


def _with_line(err: SfrayError) -> SfrayError:
    """Keep the message in ``err.line`` too: Ray may append its own text to an exception's args on
    the way back to the driver, an attribute travels untouched (``RayExecutor`` reads it)."""
    err.line = str(err)  # type: ignore[attr-defined]
    return err


def sample_failure(dataset_dir: str | os.PathLike | None, ids: Sequence[int], exc: BaseException, *,
                   stage: str = "generating", need: int | None = None) -> SfrayError:
    """The one-line error for ``exc`` raised while ``stage`` ``ids``; logs the full traceback."""
    if isinstance(exc, SampleError):
        return exc
    what = f"{stage} {describe_ids(ids)}" if len(ids) else stage
    if dataset_dir is not None:
        full = space_error(exc, dataset_dir, need)
        if full is not None:
            return _with_line(type(full)(f"{what}: {full}"))
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log = write_log(dataset_dir, "error", f"{what} failed\n\n{text}")
    return _with_line(SampleError(f"{what} failed: {one_line(exc)} (full traceback in {log})"))
