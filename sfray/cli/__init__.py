"""The ``sfray`` command line: thin dispatch to library functions and jobs.

Each subcommand lives in its own module under ``sfray.cli`` exposing ``register(subparsers)``;
its handler returns an exit code. User errors (:class:`~sfray.errors.SfrayError`) print one line
and exit 2; so do OS errors on the user's files (a read-only or full disk, a path that is not a
directory), in words. SIGTERM is handled like Ctrl-C: the command stops cleanly (what finished is
committed, nothing is half-written), prints "sfray: interrupted" and exits 143 (130 for Ctrl-C).
Anything else is a bug: one line with the log file that holds the traceback, exit 1
(docs/reliability.md). Heavy imports (torch, ray) happen inside handlers so ``sfray --help`` is
instant.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from sfray.errors import SfrayError

#: Subcommand modules, in help order. A module missing here is simply not offered.
SUBCOMMANDS = ("generate", "preview", "align", "dataset", "inspect", "convert", "benchmark", "score", "train",
               "finetune", "evaluate", "sweep", "pipeline")


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line, like every other sfray error (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"sfray: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="sfray",
        description="Annotated synthetic face datasets from controllable 3D-aware generators.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"sfray.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sfray.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so every cleanup path that handles one handles both."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def install_sigterm_handler() -> None:
    """SIGTERM -> :class:`Terminated` in the main thread (Ray's ``init`` replaces it: the Ray runtime
    restores it after ``init``, ``sfray.distributed.runtime``)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def _os_error_line(exc: OSError) -> str:
    """An OS error on a user's file in words: which file, what happened."""
    from sfray.io.space import is_space_error, space_error

    where = exc.filename or ""
    full = space_error(exc, where) if where else None
    if full is not None:
        return str(full)
    if is_space_error(exc):
        return f"no space left on the device ({' '.join(str(exc).split())[:200]})"
    reason = {errno.EROFS: "the filesystem is read-only", errno.EACCES: "permission denied",
              errno.EPERM: "operation not permitted", errno.ENOTDIR: "a part of the path is not a directory",
              errno.EISDIR: "is a directory", errno.ENOENT: "no such file or directory",
              errno.EEXIST: "already exists"}.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{where}: {reason}" if where else f"{reason} ({exc})"


def _internal_error(exc: BaseException) -> str:
    from sfray.generation.failures import one_line, write_log

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log = write_log(None, "internal-error", f"sfray {' '.join(sys.argv[1:])}\n\n{text}")
    return f"internal error: {one_line(exc)} (full traceback in {log}; please report it)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    install_sigterm_handler()
    try:
        return int(args.handler(args) or 0)
    except SfrayError as exc:
        print(f"sfray: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("sfray: interrupted", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except OSError as exc:
        print(f"sfray: error: {_os_error_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: keep the traceback, show one line
        print(f"sfray: error: {_internal_error(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
