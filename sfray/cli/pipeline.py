"""``sfray pipeline CONFIG [key=value ...]``: the whole job, generate to report (resumable)."""

from __future__ import annotations

import argparse

from sfray.cli.common import add_config_args, add_progress_flag, load_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipeline",
        help="run generate -> Stage I -> LaPa-like set -> Stage II -> evaluate -> report (resumable)",
        description="Run the stages the config selects under output_root and gather report.md there. "
        "Stages complete with the same config are skipped, unfinished ones resume, changed ones are redone; "
        "rerunning the same command continues where it stopped (docs/quickstart.md).",
    )
    add_config_args(p)
    add_progress_flag(p, "the stages' progress lines")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sfray.config.pipeline import PipelineJobConfig
    from sfray.distributed.pipeline import run_pipeline_any

    cfg = load_from_args(PipelineJobConfig, args)
    result = run_pipeline_any(cfg, progress=not args.no_progress)
    ran = [n for n, r in result["stages"].items() if r["status"] == "ran"]
    skipped = [n for n, r in result["stages"].items() if r["status"] == "skipped"]
    print(f"pipeline: {result['output_root']}  ran {', '.join(ran) or 'nothing'}"
          f"{'; skipped (complete) ' + ', '.join(skipped) if skipped else ''} in {result['seconds']:.1f}s")
    if result.get("report"):
        print(f"report: {result['report']}")
    return 0
