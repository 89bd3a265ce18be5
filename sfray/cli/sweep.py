"""``sfray sweep CONFIG [key=value ...]``: Ray Tune over Stage I runs (resumable)."""

from __future__ import annotations

import argparse

from sfray.cli.common import add_config_args, load_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="sweep Stage I loss weights, sampling strategies and any train key with Ray Tune (ASHA)",
        description="Run a Ray Tune sweep of Stage I trials (configs/sweep/*.yaml). Writes sweep.csv, report.md, "
        "metric.png and best.yaml into output_dir; rerunning the same command after a crash resumes the sweep "
        "and keeps finished trials (docs/sweeps.md).",
    )
    add_config_args(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sfray.config.sweep import SweepJobConfig
    from sfray.distributed.tune import run_sweep

    cfg = load_from_args(SweepJobConfig, args)
    summary = run_sweep(cfg)
    rows, best = summary["rows"], summary["best"]
    stopped = sum(r["stopped_early"] for r in rows)
    print(f"sweep: {len(rows)} trials ({stopped} stopped early by ASHA)")
    if best:
        print(f"best: trial {best['trial_id']}, {cfg.metric} {best['final_' + cfg.metric]:.4f}  "
              f"config: {summary['files'].get('best')}")
    print(f"table: {summary['files']['csv']}   report: {summary['files']['report']}")
    return 0
