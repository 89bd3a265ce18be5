"""``sfray preview CONFIG [key=value ...]``: render a few samples in-process and show them.

No Ray, no shards: the in-process executor's producer (the head, generator, annotator and quality
stage a generation job builds) makes ``generate.preview_samples`` sample ids (0, 1, ...), drawn as
one contact sheet with a row per sample: image | landmarks (green visible, red occluded) |
segmentation overlay | depth (``sfray.generation.preview.render_preview``). The quickest way to
check a config (camera ranges, expressions, a new checkpoint) before a long job.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from sfray.cli.common import add_config_args

    p = sub.add_parser(
        "preview",
        help="render a few annotated samples in-process and write a contact sheet",
        description="Render generate.preview_samples samples without Ray and write OUTPUT/preview.png "
        "(image | landmarks | segmentation | depth per sample) and the resolved config next to it.",
    )
    add_config_args(p)
    p.add_argument("--panel", type=int, default=256, help="panel size in pixels (default 256)")
    p.add_argument("--per-row", type=int, default=2, help="samples side by side per sheet row (default 2)")
    p.add_argument("--device", default=None, help="override generator.device (cpu, cuda, ...)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sfray.cli.common import load_from_args
    from sfray.config.schema import GenerateJobConfig
    from sfray.errors import ConfigError

    cfg = load_from_args(GenerateJobConfig, args)
    if cfg.generate.preview_samples < 1:
        raise ConfigError("config key 'generate.preview_samples' must be >= 1 for sfray preview")
    if args.panel < 16 or args.per_row < 1:
        raise ConfigError("--panel must be >= 16 and --per-row >= 1")
    from sfray.generation.preview import render_preview

    path = render_preview(cfg, panel=args.panel, per_row=args.per_row, device=args.device)
    print(path)
    return 0
