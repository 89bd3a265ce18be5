"""``sfray train CONFIG [key=value ...]``: Stage I, the multi-task model (resumable)."""

from __future__ import annotations

import argparse

from sfray.cli.common import add_config_args, add_progress_flag, load_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the Stage I multi-task model on a dataset or a live generation stream",
        description="Train Stage I (segmentation, depth, landmarks) with Ray Train (runner=ray) or in this "
        "process (runner=local). Writes checkpoints/, model/, predictions.npz, report.json, report.md and "
        "predictions.png into output_dir; rerunning the same command resumes the run.",
    )
    add_config_args(p)
    add_progress_flag(p, "the progress line")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sfray.config.train import TrainJobConfig
    from sfray.distributed.train_stage1 import train_stage1_any

    cfg = load_from_args(TrainJobConfig, args)
    report = train_stage1_any(cfg, progress=not args.no_progress)
    val = report.get("val", {})
    print(
        f"stage1: {report.get('steps')} steps, held-out NME {val.get('nme', float('nan')):.4f} "
        f"(mean shape {val.get('baseline_mean_shape_nme', float('nan')):.4f}), mean F1 "
        f"{val.get('seg_mean_f1', float('nan')):.4f} "
        f"(majority map {val.get('baseline_majority_map_mean_f1', float('nan')):.4f}), "
        f"depth MAE {val.get('depth_mae', float('nan')):.4f}"
    )
    print(f"report: {report.get('output_dir')}/report.json   model: {report.get('files', {}).get('model')}")
    return 0
