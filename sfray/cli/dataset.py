"""``sfray dataset verify|stats|export|import|sweep``: inspect, check and convert dataset directories."""

from __future__ import annotations

import argparse
import json
import sys

from sfray.cli.common import int_in
from sfray.config.registries import IMAGE_FORMATS
from sfray.data.layout import EXPORT_LAYOUTS as LAYOUTS
from sfray.data.manifest import SWEEP_MODES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="verify, summarise, export or import datasets",
                       description="Work with an sfray dataset directory (manifest.parquet + shards/).")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    dsub.required = True

    v = dsub.add_parser("verify", help="check every record against the manifest (exit 1 on problems)")
    v.add_argument("path", help="dataset directory")
    v.add_argument("--max-problems", type=int_in(0), default=20, help="problems to list (default 20)")
    v.set_defaults(handler=_verify)

    s = dsub.add_parser("stats", help="counts, shard sizes, class pixel shares, landmark visibility")
    s.add_argument("path", help="dataset directory")
    s.add_argument("--sample", type=int_in(1), default=256, help="records sampled for pixel/visibility stats")
    s.set_defaults(handler=_stats)

    e = dsub.add_parser("export", help="write the SynthForge or FaceSynthetics folder layout")
    e.add_argument("path", help="dataset directory")
    e.add_argument("--layout", choices=LAYOUTS, required=True)
    e.add_argument("--out", required=True, help="output folder (written whole, then put in place)")
    e.add_argument("--overwrite", action="store_true",
                   help="replace --out if it exists and is not empty (never a dataset or its parent)")
    e.set_defaults(handler=_export)

    i = dsub.add_parser("import", help="import a released SynthForge or FaceSynthetics folder")
    i.add_argument("src", help="source folder in the given layout")
    i.add_argument("--layout", choices=LAYOUTS, required=True)
    i.add_argument("--out", required=True, help="target dataset directory (resumes if it exists)")
    i.add_argument("--image-format", choices=IMAGE_FORMATS.names(), default="png")
    i.add_argument("--image-quality", type=int_in(1, 100), default=95)
    i.add_argument("--samples-per-shard", type=int_in(1), default=256)
    i.set_defaults(handler=_import)

    w = dsub.add_parser("sweep", help="delete leftover temporary files (run while no job writes)")
    w.add_argument("path", help="dataset directory")
    w.add_argument("--unreferenced", choices=SWEEP_MODES, default="keep",
                   help="what to do with complete shards the manifest does not list (default keep)")
    w.set_defaults(handler=_sweep)


def _verify(args: argparse.Namespace) -> int:
    from sfray.data.verify import verify_dataset

    report = verify_dataset(args.path)
    for w in report.warnings[: args.max_problems]:
        print(f"warning: {w}", file=sys.stderr)
    if report.ok:
        print(f"ok: {report.checked} records in {report.shards} shards match the manifest")
        return 0
    print(f"FAILED: {len(report.problems)} problem(s); {report.checked} records checked "
          f"in {report.shards} shards")
    for prob in report.problems[: args.max_problems]:
        print(f"  {prob}")
    if len(report.problems) > args.max_problems:
        print(f"  ... and {len(report.problems) - args.max_problems} more")
    return 1


def _stats(args: argparse.Namespace) -> int:
    from sfray.data.verify import dataset_stats

    print(json.dumps(dataset_stats(args.path, sample=args.sample), indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    from sfray.data.export import export_dataset

    n = export_dataset(args.path, args.out, layout=args.layout, overwrite=args.overwrite)
    print(f"exported {n} samples to {args.out} ({args.layout} layout)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from sfray.data.importers import import_facesynthetics, import_synthforge

    fn = import_synthforge if args.layout == "synthforge" else import_facesynthetics
    n = fn(args.src, args.out, image_format=args.image_format, image_quality=args.image_quality,
           samples_per_shard=args.samples_per_shard)
    print(f"imported {n} new samples from {args.src} into {args.out}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from sfray.data.layout import dataset_lock, require_dataset
    from sfray.data.manifest import sweep

    require_dataset(args.path, "sweep it")
    with dataset_lock(args.path, "sfray dataset sweep"):
        result = sweep(args.path, unreferenced=args.unreferenced)
    print(json.dumps(result, indent=2))
    return 0
