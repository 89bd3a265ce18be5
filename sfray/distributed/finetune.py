"""Stage II on Ray Train (``runner=ray``): the driver side and the per-worker function.

The driver runs every check first (``plan_finetune``: config, Stage I model, benchmark, resume
point; nothing written on failure), then hands the plan to ``run_torch_trainer``. Each worker
opens the benchmark itself, reads its share of the train split through the same
``BenchmarkDataset`` + ``LoaderData`` as the plain-torch runner (rank ``r`` takes every
``world``-th image of an epoch's shuffle) and trains with the same ``run_stage2_worker``; rank 0
scores both methods and writes the outputs. The benchmark root and ``output_dir`` must be on
storage every node sees.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from sfray.config.finetune import FinetuneJobConfig
from sfray.config.loader import config_from_yaml_text, to_yaml
from sfray.distributed.train import RayContext, run_torch_trainer
from sfray.evaluate.report import REPORT_JSON
from sfray.io.atomic import atomic_write_text
from sfray.train.checkpoint import CONFIG_FILE
from sfray.train.stage2 import Stage2Plan, plan_finetune, run_stage2_worker, train_dataset


def _stage2_worker(config: dict[str, Any]) -> None:
    import torch

    from sfray.evaluate.job import open_stage2_benchmark
    from sfray.train.data import LoaderData

    cfg = config_from_yaml_text(FinetuneJobConfig, config["cfg_yaml"])
    torch.set_num_threads(cfg.train.threads or max(1, int(cfg.ray.cpus_per_worker)))
    plan: Stage2Plan = config["plan"]
    ctx = RayContext(plan.output_dir, cfg.train.keep_checkpoints)
    reader, _, _ = open_stage2_benchmark(cfg.benchmark, need_train=True)
    data = LoaderData(train_dataset(cfg, reader, plan), plan.train_indices, cfg.train.batch_size, rank=ctx.rank,
                      world=ctx.world_size, seed=cfg.seed, num_workers=0)
    resume = ctx.resume_candidate() or plan.resume_from
    run_stage2_worker(cfg, plan, ctx, data, reader, resume_from=resume, progress=config["progress"])


def _absolute_paths(cfg: FinetuneJobConfig) -> FinetuneJobConfig:
    """The config with its paths made absolute: Ray workers do not share the driver's directory."""
    cfg = copy.deepcopy(cfg)
    cfg.output_dir = str(Path(cfg.output_dir).resolve())
    for section, key in ((cfg.model, "stage1"), (cfg.benchmark, "root"), (cfg.benchmark, "lapa_root"),
                         (cfg.benchmark, "build_from")):
        if getattr(section, key):
            setattr(section, key, str(Path(getattr(section, key)).resolve()))
    return cfg


def run_finetune_ray(cfg: FinetuneJobConfig, *, progress: bool = True) -> dict[str, Any]:
    """Stage II with Ray Train (``runner=ray``); returns report.json's content."""
    from sfray.distributed.runtime import ray_session

    plan, _ = plan_finetune(cfg, progress=progress)
    if plan.done is not None:
        return plan.done
    worker_yaml = to_yaml(_absolute_paths(cfg))
    out = plan.output_dir.resolve()
    plan.output_dir = out
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG_FILE, plan.config_yaml)
    cpus = cfg.ray.num_workers * cfg.ray.cpus_per_worker + 1
    with ray_session(cfg.ray, default_num_cpus=max(int(cpus + 0.999), os.cpu_count() or 1)):
        run_torch_trainer(_stage2_worker, {"cfg_yaml": worker_yaml, "plan": plan, "progress": progress},
                          ray_cfg=cfg.ray, output_dir=out, keep_checkpoints=cfg.train.keep_checkpoints)
    return json.loads((out / REPORT_JSON).read_text())


def finetune_any(cfg: FinetuneJobConfig, *, progress: bool = True) -> dict[str, Any]:
    """The runner ``cfg.runner`` names: Ray Train or plain torch in this process."""
    if cfg.runner == "local":
        from sfray.train.stage2 import run_finetune

        return run_finetune(cfg, progress=progress)
    return run_finetune_ray(cfg, progress=progress)
