"""``sfray evaluate CONFIG [key=value ...]``: score the direct mapping and a finetuned model on a benchmark."""

from __future__ import annotations

import argparse

from sfray.cli.common import add_config_args, add_progress_flag, load_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a Stage I model's direct mapping and a Stage II model on a benchmark's test splits",
        description="Run the frozen Stage I model (model.stage1) and, if given, a `sfray finetune` model "
        "(model.finetuned) on a benchmark's protocol crops, map the predictions back to the original images "
        "and score them. Writes report.json, report.md, qualitative.png and predictions/ (sfray score's "
        "format) into output_dir.",
    )
    add_config_args(p)
    add_progress_flag(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sfray.cli.finetune import print_summary
    from sfray.config.finetune import EvaluateJobConfig
    from sfray.evaluate.job import run_evaluation

    cfg = load_from_args(EvaluateJobConfig, args)
    report = run_evaluation(cfg, progress=not args.no_progress)
    print_summary(report, cfg.output_dir)
    return 0
