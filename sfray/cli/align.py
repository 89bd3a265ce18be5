"""``sfray align CONFIG [key=value ...]``: fit the global alignment map against a generator."""

from __future__ import annotations

import argparse
import sys

from sfray.cli.common import add_config_args, load_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align",
        help="fit the global alignment map (mesh -> generator world) on fresh samples",
        description="Generate fresh samples, fit the affine map that puts the head mesh onto the "
        "generator's geometry (depth, silhouette, Chamfer, landmarks), measure it on held-out "
        "samples and write output_dir/alignment_map.safetensors + align_report.{json,md}. "
        "Use the map with annotate.alignment_map=PATH.",
    )
    add_config_args(p)
    p.add_argument("--quiet", action="store_true", help="do not print progress")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sfray.align.job import run_align
    from sfray.config.schema import AlignJobConfig

    cfg = load_from_args(AlignJobConfig, args)
    result = run_align(cfg, stream=None if args.quiet else sys.stderr)
    b, a = result.report["before"], result.report["after"]

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    print(f"map: {result.map_path}")
    print(f"landmark px {fmt(b['landmark_px'])} -> {fmt(a['landmark_px'])}; "
          f"depth {fmt(b['depth_abs'])} -> {fmt(a['depth_abs'])}; "
          f"mask IoU {fmt(b['mask_iou'])} -> {fmt(a['mask_iou'])} "
          f"({result.report['samples']} held-out samples)")
    print(f"report: {result.output_dir}/align_report.md")
    return 0
