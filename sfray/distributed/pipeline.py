"""The pipeline's Ray runners: the stages whose jobs need Ray (generation's actor pool, Ray Train).

``sfray.pipeline`` is plain Python and never imports Ray; it calls these through the runner table
built here. Each runner takes the stage's loaded job config and returns a JSON-able summary.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sfray.config.pipeline import PipelineJobConfig
from sfray.pipeline.stages import Runner


def _generate(cfg: Any, progress: bool) -> dict:
    from sfray.distributed.executor import RayExecutor
    from sfray.generation.run import run_generation

    return dataclasses.asdict(run_generation(cfg, RayExecutor(cfg.ray), progress=progress))


def _train(cfg: Any, progress: bool) -> dict:
    from sfray.distributed.train_stage1 import train_stage1_any

    return train_stage1_any(cfg, progress=progress)


def _finetune(cfg: Any, progress: bool) -> dict:
    from sfray.distributed.finetune import finetune_any  # type: ignore[import-not-found]

    return finetune_any(cfg, progress=progress)


#: Stage name -> runner, for the stages that run on Ray.
RUNNERS: dict[str, Runner] = {"generate": _generate, "train": _train, "finetune": _finetune}


def run_pipeline_any(cfg: PipelineJobConfig, *, progress: bool = True) -> dict[str, Any]:
    """``sfray pipeline`` / ``jobs/pipeline.py``: every selected stage, with the Ray runners."""
    from sfray.pipeline import run_pipeline

    return run_pipeline(cfg, RUNNERS, progress=progress)
