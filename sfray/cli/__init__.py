"""The ``sfray`` command line: thin dispatch to library functions and jobs.

Each subcommand lives in its own module under ``sfray.cli`` exposing ``register(subparsers)``;
its handler returns an exit code. User errors (:class:`~sfray.errors.SfrayError`) print one line
and exit 2. Heavy imports (torch, ray) happen inside handlers so ``sfray --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sfray.errors import SfrayError

#: Subcommand modules, in help order. A module missing here is simply not offered.
SUBCOMMANDS = ("generate", "preview", "align", "dataset", "inspect", "convert", "train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfray",
        description="Annotated synthetic face datasets from controllable 3D-aware generators.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SfrayError as exc:
        print(f"sfray: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sfray: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
