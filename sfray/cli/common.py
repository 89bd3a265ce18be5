"""Helpers shared by subcommands: the CONFIG + overrides pattern (and progress, re-exported)."""

from __future__ import annotations

import argparse
from typing import TypeVar

from sfray.progress import Progress

__all__ = ["Progress", "add_config_args", "add_progress_flag", "int_in", "load_from_args"]

T = TypeVar("T")


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """Positional CONFIG (a YAML under configs/, or a path) followed by key=value overrides."""
    parser.add_argument("config", help="config YAML (e.g. configs/generate/quickstart.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. generate.num_samples=32")


def add_progress_flag(parser: argparse.ArgumentParser, what: str = "progress lines") -> None:
    """``--no-progress`` (read back as ``args.no_progress``) for commands that print progress."""
    parser.add_argument("--no-progress", action="store_true", help=f"do not print {what}")


def load_from_args(schema: type[T], args: argparse.Namespace) -> T:
    from sfray.config import load_config

    return load_config(schema, args.config, args.overrides)


def int_in(low: int, high: int | None = None):  # noqa: ANN201 - an argparse type
    """An argparse ``type``: an integer in ``low..high`` (no upper bound when ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is not in {low}..{'' if high is None else high}")
        return value

    return parse
