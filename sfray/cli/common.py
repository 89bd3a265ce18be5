"""Helpers shared by subcommands: the CONFIG + overrides pattern (and progress, re-exported)."""

from __future__ import annotations

import argparse
from typing import TypeVar

from sfray.progress import Progress

__all__ = ["Progress", "add_config_args", "load_from_args"]

T = TypeVar("T")


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """Positional CONFIG (a YAML under configs/, or a path) followed by key=value overrides."""
    parser.add_argument("config", help="config YAML (e.g. configs/generate/quickstart.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. generate.num_samples=32")


def load_from_args(schema: type[T], args: argparse.Namespace) -> T:
    from sfray.config import load_config

    return load_config(schema, args.config, args.overrides)
