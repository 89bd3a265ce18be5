"""``sfray score BENCHMARK ROOT PREDICTIONS``: score any tool's predictions under sfray's protocol."""

from __future__ import annotations

import argparse
import json
import math


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score", help="score predictions (landmarks.json, parsing/) against a benchmark",
        description="Score a PREDICTIONS directory: landmarks.json keyed by image path relative to ROOT "
                    "(points in the benchmark's own annotation frame) and/or parsing/<path>.png label maps in "
                    "the benchmark's ids at the original size (docs/evaluation.md).")
    p.add_argument("benchmark", help="300w | lapa | lapa-d | celebamask-hq | facesynthetics")
    p.add_argument("root", help="the benchmark's root folder")
    p.add_argument("predictions", help="the predictions directory")
    p.add_argument("--split", action="append", help="split to score (repeatable; default: the test splits)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--norm", choices=("inter_ocular", "inter_pupil"), default="inter_ocular",
                   help="NME normalisation (default inter_ocular)")
    p.add_argument("--threshold", type=float, default=0.08, help="FR/AUC threshold on NME (default 0.08)")
    p.add_argument("--lapa-root", help="lapa-d only: the LaPa folder when it is not inside ROOT")
    p.add_argument("--report", metavar="OUT", help="also write OUT/report.json, report.md and a figure")
    p.add_argument("--method", default="predictions", help="row name in the report tables")
    p.set_defaults(handler=_score)


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100.0 * x:.2f}"


def format_scores(report) -> str:
    lines = [f"{report.benchmark} at {report.root}"]
    for name, s in report.splits.items():
        if s.landmarks is not None:
            lm = s.landmarks
            lines.append(f"  {name}: NME {_pct(lm['nme'])}% ({lm['norm']}, {lm['images']} images), "
                         f"FR@{lm['threshold']:g} {_pct(lm['fr'])}%, AUC@{lm['threshold']:g} {_pct(lm['auc'])}%")
        if s.parsing is not None:
            pa = s.parsing
            per = ", ".join(f"{k} {_pct(v)}" for k, v in pa["f1"].items())
            lines.append(f"  {name}: mean F1 {_pct(pa['mean_f1'])}% over {len(pa['mean_over'])} classes "
                         f"({pa['images']} images); F1 %: {per}")
        if s.depth is not None:
            d = s.depth
            lines.append(f"  {name}: depth si-RMSE {d['si_rmse']:.4f}, si-MAE {d['si_mae']:.4f} ({d['images']} images)")
        for task, keys in s.skipped.items():
            if keys:
                shown = ", ".join(keys[:10]) + (f" ... (+{len(keys) - 10})" if len(keys) > 10 else "")
                lines.append(f"  {name}: skipped {len(keys)} image(s) without usable {task} ground truth: {shown}")
    return "\n".join(lines)


def _score(args: argparse.Namespace) -> int:
    from sfray.benchmarks.catalog import BENCHMARKS, benchmark_names, open_benchmark
    from sfray.errors import SfrayError
    from sfray.evaluate.scoring import score_predictions

    benchmark_names()
    BENCHMARKS.check(args.benchmark)
    kwargs = {"progress": not args.json}
    if args.lapa_root:
        if args.benchmark != "lapa-d":
            raise SfrayError("--lapa-root applies to lapa-d only")
        kwargs["lapa_root"] = args.lapa_root
    reader = open_benchmark(args.benchmark, args.root, **kwargs)
    report = score_predictions(reader, args.predictions, args.split, norm=args.norm, threshold=args.threshold,
                               progress=not args.json)
    if args.report:
        from sfray.evaluate.report import write_score_report

        write_score_report(args.report, reader, args.predictions, report, method=args.method)
    if args.json:
        from sfray.evaluate.report import json_safe

        print(json.dumps(json_safe(report.as_dict()), indent=2))
    else:
        print(format_scores(report))
    return 0
