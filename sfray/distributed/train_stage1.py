"""Stage I on Ray Train (``runner=ray``): the driver side and the per-worker function.

The driver runs every check first (``plan_stage1``: config, data, init weights, resume point;
nothing written on failure), then builds the training dataset (a Ray Data read of the shards, or a
live generation stream) and hands it to ``run_torch_trainer``. Each worker trains its shard with
the same ``run_stage1_worker`` as the plain-torch runner; rank 0 writes the outputs.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import ray

from sfray.config.loader import config_from_yaml_text, to_yaml
from sfray.config.train import TrainJobConfig
from sfray.conventions import Field
from sfray.distributed.train import TRAIN_DATASET, RayContext, RayShardData, run_torch_trainer
from sfray.io.atomic import atomic_write_text
from sfray.train import report as rep
from sfray.train.augment import TRAIN_FIELDS
from sfray.train.checkpoint import CONFIG_FILE, read_meta
from sfray.train.stage1 import (
    Stage1Plan,
    ValSource,
    dataset_val_source,
    plan_stage1,
    run_stage1_worker,
    training_votes,
)


def _dataset_rows(cfg: TrainJobConfig, plan: Stage1Plan) -> ray.data.Dataset:
    """Decoded training rows of the dataset's training split (shards read by Ray Data)."""
    from sfray.distributed.lmdb_datasource import read_sfray_dataset
    from sfray.distributed.stream import DecodeRows

    split = plan.split

    def keep_training(batch: dict[str, Any]) -> dict[str, Any]:
        keep = ~split.is_held_out(batch[Field.SAMPLE_ID])
        return {k: v[keep] for k, v in batch.items()}

    ds = read_sfray_dataset(cfg.data.dataset_dir, decode=False)
    if not cfg.data.val_dataset_dir:  # a separate held-out dataset: every sample here trains
        ds = ds.map_batches(keep_training, batch_format="numpy")
    ds = ds.select_columns([Field.SAMPLE_ID, "record"])
    return ds.map_batches(DecodeRows(TRAIN_FIELDS), batch_size=16, batch_format="numpy").randomize_block_order()


def _stage1_worker(config: dict[str, Any]) -> None:
    import torch

    cfg = config_from_yaml_text(TrainJobConfig, config["cfg_yaml"])
    torch.set_num_threads(cfg.train.threads or max(1, int(cfg.ray.cpus_per_worker)))
    plan: Stage1Plan = config["plan"]
    ctx = RayContext(plan.output_dir, cfg.train.keep_checkpoints)
    stream = cfg.data.source == "stream"
    data = RayShardData(ray.train.get_dataset_shard(TRAIN_DATASET), cfg.train.batch_size, config["batches_per_epoch"],
                        repeat=not stream, first_epoch=config["first_epoch"],
                        shuffle_buffer=0 if stream else 4 * cfg.train.batch_size, seed=cfg.seed)
    if stream:
        from sfray.train.data import RecordsDataset

        val = ValSource(RecordsDataset(ray.get(config["val_records"]), TRAIN_FIELDS), cfg.train.val_batch_size)
        votes = None
    else:
        val = dataset_val_source(cfg, plan)
        votes = lambda: training_votes(cfg, plan)  # noqa: E731
    resume = ctx.resume_candidate() or plan.resume_from
    run_stage1_worker(cfg, plan, ctx, data, val, resume_from=resume, votes=votes, collect_votes=stream,
                      progress=config["progress"])


def _absolute_paths(cfg: TrainJobConfig) -> TrainJobConfig:
    """The config with its paths made absolute: Ray workers do not share the driver's directory."""
    cfg = copy.deepcopy(cfg)
    cfg.output_dir = str(Path(cfg.output_dir).resolve())
    if cfg.data.dataset_dir:
        cfg.data.dataset_dir = str(Path(cfg.data.dataset_dir).resolve())
    if cfg.data.val_dataset_dir:
        cfg.data.val_dataset_dir = str(Path(cfg.data.val_dataset_dir).resolve())
    if cfg.data.stream.generate_config:
        cfg.data.stream.generate_config = str(Path(cfg.data.stream.generate_config).resolve())
    if cfg.model.init_from:
        cfg.model.init_from = str(Path(cfg.model.init_from).resolve())
    return cfg


def run_stage1_ray(cfg: TrainJobConfig, *, progress: bool = True) -> dict[str, Any]:
    """Train Stage I with Ray Train (``runner=ray``); returns report.json's content."""
    from sfray.distributed.runtime import ray_session

    plan = plan_stage1(cfg)
    cfg = _absolute_paths(cfg)
    worker_yaml = to_yaml(cfg)
    out = plan.output_dir.resolve()
    plan.output_dir = out
    world, b = cfg.ray.num_workers, cfg.train.batch_size
    cpus = world * cfg.ray.cpus_per_worker + 1
    if cfg.data.source == "stream":
        cpus += cfg.data.stream.actors * cfg.data.stream.cpus_per_actor
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG_FILE, plan.config_yaml)
    with ray_session(cfg.ray, default_num_cpus=max(int(cpus + 0.999), os.cpu_count() or 1)):
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        config: dict[str, Any] = {"cfg_yaml": worker_yaml, "plan": plan, "progress": progress, "first_epoch": 0}
        if cfg.data.source == "dataset":
            config["batches_per_epoch"] = (len(plan.train_indices) // world) // b
            ds = _dataset_rows(cfg, plan)
        else:
            from sfray.distributed.stream import held_out_records, load_generation_config, training_stream

            gen_cfg = load_generation_config(cfg.data.stream)
            per_epoch = ((cfg.data.stream.samples_per_epoch // world) // b) // cfg.train.accumulate
            if per_epoch < 1:
                from sfray.errors import ConfigError

                raise ConfigError(f"data.stream.samples_per_epoch={cfg.data.stream.samples_per_epoch} is less than one "
                                  f"optimizer step ({world} workers x train.batch_size={b} x train.accumulate)")
            config["batches_per_epoch"] = (cfg.data.stream.samples_per_epoch // world) // b
            if plan.resume_from is not None:
                config["first_epoch"] = int(read_meta(plan.resume_from)["step"]) // per_epoch
            config["val_records"] = ray.put(held_out_records(gen_cfg, cfg.data.stream))
            ds = training_stream(gen_cfg, cfg.data.stream, TRAIN_FIELDS, first_epoch=config["first_epoch"],
                                 epochs=cfg.train.epochs)
        run_torch_trainer(_stage1_worker, config, ray_cfg=cfg.ray, output_dir=out,
                          keep_checkpoints=cfg.train.keep_checkpoints, datasets={TRAIN_DATASET: ds})
    return json.loads((out / rep.REPORT_JSON).read_text())


def train_stage1_any(cfg: TrainJobConfig, *, progress: bool = True) -> dict[str, Any]:
    """The runner ``cfg.runner`` names: Ray Train or plain torch in this process."""
    if cfg.runner == "local":
        from sfray.train.stage1 import train_stage1

        return train_stage1(cfg, progress=progress)
    return run_stage1_ray(cfg, progress=progress)

