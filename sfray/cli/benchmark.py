"""``sfray benchmark inspect|make-lapa-like``: check a benchmark download; build a LaPa-format set."""

from __future__ import annotations

import argparse
import json


def _names() -> list[str]:
    from sfray.benchmarks.catalog import benchmark_names

    return list(benchmark_names())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="inspect real benchmarks; build a LaPa-format set from renders",
                       description="Real face benchmarks in their original layouts (docs/benchmarks-data.md).")
    bsub = p.add_subparsers(dest="benchmark_command", metavar="ACTION")
    bsub.required = True

    i = bsub.add_parser("inspect", help="per-split usable counts, the label schema and every problem by file")
    i.add_argument("name", help="benchmark: 300w | lapa | lapa-d | celebamask-hq | facesynthetics")
    i.add_argument("root", help="the benchmark's root folder")
    i.add_argument("--json", action="store_true", help="print the full report as JSON")
    i.add_argument("--quick", action="store_true", help="read image headers only (no truncation check)")
    i.add_argument("--lapa-root", help="lapa-d only: the LaPa folder when it is not inside ROOT")
    i.add_argument("--max-problems", type=int, default=50, help="problems listed in the text output")
    i.set_defaults(handler=_inspect)

    m = bsub.add_parser("make-lapa-like", help="write held-out procedural renders in LaPa's exact layout",
                        description="Render samples a dataset never contains (same generator config, ids after "
                                    "its own) and write them as LaPa: JPEG images, PNG labels in LaPa's ids "
                                    "(with hair), 106-point landmark files.")
    m.add_argument("dataset", help="an sfray dataset made by the procedural generator (its dataset.yaml)")
    m.add_argument("out", help="output folder (LaPa layout: {train,val,test}/{images,labels,landmarks})")
    m.add_argument("--train", type=int, default=64, help="train images (default 64)")
    m.add_argument("--val", type=int, default=16, help="val images (default 16)")
    m.add_argument("--test", type=int, default=32, help="test images (default 32)")
    m.add_argument("--first-id", type=int, default=None,
                   help="first sample id to render (default: after the dataset's own ids)")
    m.add_argument("--resolution", type=int, default=None, help="render size (default: the dataset's)")
    m.set_defaults(handler=_make_lapa_like)


def _inspect(args: argparse.Namespace) -> int:
    from sfray.benchmarks.catalog import BENCHMARKS, open_benchmark

    _names()
    BENCHMARKS.check(args.name)
    kwargs = {"check": "quick" if args.quick else "full", "progress": not args.json}
    if args.lapa_root:
        if args.name != "lapa-d":
            from sfray.errors import SfrayError

            raise SfrayError("--lapa-root applies to lapa-d only")
        kwargs["lapa_root"] = args.lapa_root
    report = open_benchmark(args.name, args.root, **kwargs).scan()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.format_text(max_problems=args.max_problems))
    return 0


def _make_lapa_like(args: argparse.Namespace) -> int:
    from sfray.benchmarks.lapa_like import make_lapa_like

    counts = {"train": args.train, "val": args.val, "test": args.test}
    written = make_lapa_like(args.dataset, args.out, counts, first_id=args.first_id, resolution=args.resolution,
                             progress=True)
    total = sum(written.values())
    print(f"wrote {total} LaPa-format samples to {args.out} "
          f"({', '.join(f'{k} {v}' for k, v in written.items())}); check: sfray benchmark inspect lapa {args.out}")
    return 0
