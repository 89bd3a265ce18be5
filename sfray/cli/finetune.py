"""``sfray finetune CONFIG [key=value ...]``: Stage II label finetuning on a real benchmark (resumable)."""

from __future__ import annotations

import argparse

from sfray.cli.common import add_config_args, add_progress_flag, load_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="Stage II: finetune label nets on a real benchmark over a frozen Stage I model, then score",
        description="Train small label-finetuning nets on a benchmark's train split on top of a frozen Stage I "
        "model (runner=ray: Ray Train; runner=local: this process), then score the direct mapping and the "
        "finetuned model on its test splits. Writes checkpoints/, model/, predictions/, report.json, report.md "
        "and qualitative.png into output_dir; rerunning the same command resumes or returns the report.",
    )
    add_config_args(p)
    add_progress_flag(p)
    p.set_defaults(handler=_run)


def print_summary(report: dict, out: str) -> None:
    """One line per method and split: mean F1, NME, depth error (what the tables in report.md hold)."""
    for r in report.get("results", []):
        for split, v in r.get("splits", {}).items():
            parts = []
            if v.get("parsing"):
                parts.append(f"mean F1 {100 * (v['parsing'].get('mean_f1') or 0):.2f}%")
            if v.get("landmarks"):
                parts.append(f"NME {100 * (v['landmarks'].get('nme') or 0):.2f}%")
            if v.get("depth"):
                parts.append(f"si-RMSE {v['depth'].get('si_rmse') or 0:.4f}")
            print(f"{r.get('benchmark')} {split}, {r.get('method')}: {', '.join(parts) or 'nothing scored'}")
    print(f"report: {out}/report.md")


def _run(args: argparse.Namespace) -> int:
    from sfray.config.finetune import FinetuneJobConfig
    from sfray.distributed.finetune import finetune_any

    cfg = load_from_args(FinetuneJobConfig, args)
    report = finetune_any(cfg, progress=not args.no_progress)
    print_summary(report, cfg.output_dir)
    return 0
