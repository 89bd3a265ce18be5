"""The ``checkpoint`` action of ``sfray inspect`` (registered by ``sfray.cli.inspect``)."""

from __future__ import annotations

import argparse
import json


def add_parser(isub: argparse._SubParsersAction) -> None:
    """Add ``checkpoint PATH [--json] [--dump-source DIR]`` to the ``inspect`` sub-parsers."""
    c = isub.add_parser("checkpoint", help="describe a Next3D checkpoint (.pkl or .safetensors)",
                        description="Read a Next3D checkpoint without running its code and report classes, "
                                    "rendering kwargs, parameter counts and the strict shape check.")
    c.add_argument("path", help="official next3d_*.pkl or sfray .safetensors")
    c.add_argument("--json", action="store_true", help="print the full report as JSON")
    c.add_argument("--dump-source", metavar="DIR", default=None,
                   help="write the embedded module sources (as text, never run) into DIR")
    c.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sfray.generators.next3d.inspect import format_report, inspect_checkpoint

    rep = inspect_checkpoint(args.path, dump_source=args.dump_source)
    print(json.dumps(rep, indent=2) if args.json else format_report(rep))
    return 0 if rep.get("state_check", {}).get("ok", False) else 1
