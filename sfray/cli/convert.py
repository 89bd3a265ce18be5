"""``sfray convert checkpoint IN OUT``: an official Next3D .pkl -> sfray's .safetensors format.

The pickle is read with the restricted unpickler (its embedded code is never run), checked
strictly against our architecture, and written atomically with its config and provenance.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert model files to sfray formats",
                       description="Convert model files into sfray's own (pickle-free) formats.")
    csub = p.add_subparsers(dest="convert_command", metavar="WHAT")
    csub.required = True
    c = csub.add_parser("checkpoint", help="Next3D .pkl (official) -> .safetensors",
                        description="Read an official Next3D network pickle without running its code, check "
                                    "every tensor name and shape, write OUT.safetensors (+ config metadata).")
    c.add_argument("src", metavar="IN", help="official next3d_*.pkl (or an sfray .safetensors to rewrite)")
    c.add_argument("dst", metavar="OUT", help="output .safetensors path (written atomically)")
    c.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    c.set_defaults(handler=_convert_checkpoint)


def _convert_checkpoint(args: argparse.Namespace) -> int:
    from sfray.generators.next3d.checkpoint import convert_checkpoint

    out, ckpt, report = convert_checkpoint(args.src, args.dst, overwrite=args.overwrite)
    n = sum(t.numel() for t in ckpt.tensors.values())
    extras = f"; kept extras {report.ignored_extras}" if report.ignored_extras else ""
    print(f"wrote {out} ({len(ckpt.tensors)} tensors, {n:,} values; identity {ckpt.identity}{extras})")
    return 0
