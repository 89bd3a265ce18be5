"""``sfray generate CONFIG [key=value ...]``: make (or resume) a dataset, then its preview sheet."""

from __future__ import annotations

import argparse
from pathlib import Path

from sfray.cli.common import add_config_args, add_progress_flag, load_from_args
from sfray.data.layout import PREVIEW_FILE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate an annotated dataset (resumable) with a Ray actor pool",
        description="Generate (or resume) a dataset: LMDB shards + manifest.parquet + dataset.yaml "
        "+ preview.png in output_dir. Rerunning the same command resumes where it stopped.",
    )
    add_config_args(p)
    add_progress_flag(p, "the progress line")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sfray.config.schema import GenerateJobConfig
    from sfray.distributed.executor import RayExecutor
    from sfray.generation.run import run_generation

    cfg = load_from_args(GenerateJobConfig, args)
    summary = run_generation(cfg, RayExecutor(cfg.ray), progress=not args.no_progress)
    print(
        f"dataset: {summary.output_dir}  committed {summary.committed}/{summary.requested}"
        f" (dropped {summary.dropped}); generated {summary.generated_this_run} this run"
        f" in {summary.seconds:.1f}s"
    )
    print(f"preview: {Path(summary.output_dir) / PREVIEW_FILE}")
    return 0
