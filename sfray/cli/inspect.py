"""``sfray inspect head|checkpoint``: describe a head model or a generator checkpoint without running it.

Each action is a sub-subparser; ``checkpoint`` is registered by :mod:`sfray.cli.inspect_checkpoint`
when that module is present.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

#: Flag -> HeadConfig field for the optional FLAME files.
FILE_FLAGS = {
    "embedding": "landmark_embedding",
    "dynamic_embedding": "dynamic_embedding",
    "obj": "template_obj",
    "label_map": "label_map",
    "masks": "masks",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="describe a head model or a checkpoint",
                       description="Read a model file without executing code from it and print a summary.")
    isub = p.add_subparsers(dest="inspect_command", metavar="WHAT")
    isub.required = True
    _add_head(isub)
    for module in ("sfray.cli.inspect_checkpoint",):
        try:
            importlib.import_module(module).add_parser(isub)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def _add_head(isub: argparse._SubParsersAction) -> None:
    h = isub.add_parser(
        "head", help="summarise the procedural head or a FLAME model",
        description="Without PATH: the embedded procedural head. With PATH (a FLAME generic_model.pkl): "
                    "the FLAME head, plus whichever optional files are given. key=value items right after "
                    "PATH are HeadConfig overrides (e.g. n_shape=50 or head.dtype=float64); put --flags "
                    "after them.")
    h.add_argument("items", nargs="*", metavar="[PATH] [key=value ...]",
                   help="FLAME generic_model.pkl (optional) followed by head config overrides")
    h.add_argument("--json", action="store_true", help="print the summary as JSON")
    h.add_argument("--embedding", help="DECA landmark_embedding.npy or RingNet flame_static_embedding.pkl")
    h.add_argument("--dynamic-embedding", help="RingNet flame_dynamic_embedding.npy")
    h.add_argument("--obj", help="head_template.obj (UV layout)")
    h.add_argument("--label-map", help="UV label map image painted with the SEG_CLASSES colours")
    h.add_argument("--masks", help="FLAME_masks.pkl (vertex regions)")
    h.set_defaults(handler=run_head)


def _split_items(items: list[str]) -> tuple[str | None, list[str]]:
    from sfray.errors import ConfigError

    paths = [i for i in items if "=" not in i or Path(i).exists()]
    overrides = [i for i in items if i not in paths]
    if len(paths) > 1:
        raise ConfigError(f"sfray inspect head takes at most one PATH, got {paths}")
    norm = [o[len("head."):] if o.startswith("head.") else o for o in overrides]
    return (paths[0] if paths else None), norm


def run_head(args: argparse.Namespace) -> int:
    from sfray.config import load_config
    from sfray.config.schema import HeadConfig

    path, overrides = _split_items(args.items)
    if path is not None:
        overrides = ["kind=flame", f"path={path}", *overrides]
    for flag, key in FILE_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    cfg = load_config(HeadConfig, None, overrides)
    summary = head_summary_for(cfg)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        from sfray.head.summary import format_summary

        print(format_summary(summary))
    return 0


def head_summary_for(cfg: object) -> dict:
    """Summary dict of the head ``cfg`` describes; a FLAME head may be incomplete (listed in 'missing')."""
    from sfray.head.factory import build_head
    from sfray.head.layer import HeadModel

    if getattr(cfg, "kind") != "flame":
        return build_head(cfg).summary()  # type: ignore[arg-type]
    from sfray.head.flame import load_flame_parts

    assets, missing = load_flame_parts(cfg)  # type: ignore[arg-type]
    model = HeadModel(assets, cfg.n_shape, cfg.n_expression, dtype=cfg.dtype)  # type: ignore[attr-defined]
    summary = model.summary()
    summary["missing"] = missing
    return summary
