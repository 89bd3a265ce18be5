"""Stage I end to end without Ray: plan (all checks, nothing written), train, evaluate, report.

``train_stage1(cfg)`` is the plain-torch runner (``runner=local``); the Ray Train runner
(``sfray.distributed.train_stage1``) calls the same :func:`plan_stage1` on the driver and the same
:func:`run_stage1_worker` in every worker, with its own data and context. Outputs:
``OUTPUT/config.yaml``, ``checkpoints/``, ``model/`` (the final model: weights, spec and the
resolved config, loadable by path alone with :func:`load_stage1_model`), and the files of
``sfray.train.report``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from sfray.config.loader import config_from_yaml_text, to_yaml
from sfray.config.train import RESUME_KEYS, TrainJobConfig
from sfray.conventions import Field
from sfray.devices import resolve_device
from sfray.errors import AssetError, ConfigError
from sfray.io.atomic import atomic_write_text
from sfray.models import MODEL_SIZES
from sfray.models.io import MODEL_DIR, check_size, find_model_dir, load_model, read_model_meta
from sfray.models.multitask import MultiTaskModel
from sfray.train import report as rep
from sfray.train.augment import TRAIN_FIELDS
from sfray.train.checkpoint import (
    CONFIG_FILE,
    check_resume_compatible,
    checkpoints_root,
    latest_checkpoint,
    read_meta,
)
from sfray.train.context import LocalContext, RunContext, torch_threads
from sfray.train.data import LoaderData, open_dataset, split_indices
from sfray.train.evaluation import PixelVotes
from sfray.train.faults import kill_worker_hook
from sfray.train.loop import fit
from sfray.train.split import HeldOutSplit
from sfray.train.stage1_task import Stage1Task
from sfray.train.task import TrainData


@dataclass
class Stage1Plan:
    """Everything decided before the first write."""

    output_dir: Path
    config_yaml: str
    dataset: str  # the dataset directory (absolute) or "stream:<generation config>"
    split: HeldOutSplit
    resume_from: Path | None
    train_indices: np.ndarray | None = None  # dataset positions (data.source=dataset)
    val_indices: np.ndarray | None = None
    world_size: int = 1


def _world_size(cfg: TrainJobConfig) -> int:
    return cfg.ray.num_workers if cfg.runner == "ray" else 1


def _choose_resume(cfg: TrainJobConfig, out: Path) -> Path | None:
    root = checkpoints_root(out)
    latest = latest_checkpoint(root)
    if cfg.train.resume == "never":
        if latest is not None or (out / rep.REPORT_JSON).exists():
            raise ConfigError(f"output_dir={out} already holds a training run; use another output_dir, "
                              "or train.resume=auto to continue it")
        return None
    if cfg.train.resume == "auto":
        return latest
    path = Path(cfg.train.resume)
    read_meta(path)  # a clear error if it is not a checkpoint
    return path


def plan_stage1(cfg: TrainJobConfig) -> Stage1Plan:
    """Check the config, the data, the init weights and the resume point; write nothing."""
    MODEL_SIZES.check(cfg.model.size)
    multiple = MODEL_SIZES.get(cfg.model.size).min_input_multiple
    if cfg.crop.input_size % multiple:
        raise ConfigError(f"bad value for config key 'crop.input_size': model size '{cfg.model.size}' needs a "
                          f"multiple of {multiple}, got {cfg.crop.input_size}")
    if cfg.model.init_from:
        check_size(read_model_meta(cfg.model.init_from), cfg.model.size, f"model.init_from={cfg.model.init_from}")
    out = Path(cfg.output_dir)
    split = HeldOutSplit(cfg.data.val_fraction, cfg.data.split_salt)
    plan = Stage1Plan(out, to_yaml(cfg), "", split, None, world_size=_world_size(cfg))
    if cfg.data.source == "dataset":
        ds = open_dataset(cfg.data.dataset_dir, (Field.SAMPLE_ID,))
        plan.dataset = str(Path(cfg.data.dataset_dir).resolve())
        plan.train_indices, plan.val_indices = split_indices(ds.sample_ids, split, cfg.data.max_val_samples)
        if cfg.data.val_dataset_dir:  # a separate held-out set: every sample of dataset_dir trains
            val_ds = open_dataset(cfg.data.val_dataset_dir, (Field.SAMPLE_ID,))
            plan.train_indices = np.arange(len(ds), dtype=np.int64)
            cap = cfg.data.max_val_samples or len(val_ds)
            plan.val_indices = np.arange(min(cap, len(val_ds)), dtype=np.int64)
        if len(plan.val_indices) == 0 or len(plan.train_indices) == 0:
            raise ConfigError(f"data.val_fraction={cfg.data.val_fraction} leaves {len(plan.train_indices)} training "
                              f"and {len(plan.val_indices)} held-out samples of {len(ds)}; both must be > 0")
    else:
        gen = Path(cfg.data.stream.generate_config)
        if not gen.is_file():
            raise ConfigError(f"data.stream.generate_config={gen}: file not found")
        plan.dataset = f"stream:{gen}"
    plan.resume_from = _choose_resume(cfg, out)
    if plan.resume_from is not None:
        check_size(read_model_meta(plan.resume_from), cfg.model.size, str(plan.resume_from))
        saved = read_meta(plan.resume_from)
        saved_cfg = OmegaConf.to_container(OmegaConf.load(plan.resume_from / CONFIG_FILE))
        extra = {"ray.num_workers (world size)": (saved.get("world_size"), plan.world_size)}
        if cfg.data.source == "dataset":
            was = saved_cfg.get("data", {}).get("dataset_dir")
            extra["data.dataset_dir"] = (str(Path(was).resolve()) if was else None, plan.dataset)
        current = OmegaConf.to_container(OmegaConf.create(plan.config_yaml))
        check_resume_compatible(plan.resume_from, current, RESUME_KEYS, extra)
    return plan


class ValSource:
    """Held-out raw batches from a map-style dataset (rank 0 iterates it at each validation)."""

    def __init__(self, dataset: torch.utils.data.Dataset, batch_size: int):
        self.dataset, self.batch_size = dataset, batch_size

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self) -> Iterator[dict[str, Any]]:
        return iter(torch.utils.data.DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False))


def dataset_val_source(cfg: TrainJobConfig, plan: Stage1Plan) -> ValSource:
    ds = open_dataset(cfg.data.val_dataset_dir or cfg.data.dataset_dir, TRAIN_FIELDS)
    return ValSource(torch.utils.data.Subset(ds, plan.val_indices.tolist()), cfg.train.val_batch_size)


def training_votes(cfg: TrainJobConfig, plan: Stage1Plan) -> PixelVotes:
    """Per-pixel counts of every training label map (the majority-map baseline)."""
    ds = open_dataset(cfg.data.dataset_dir, (Field.SEGMENTATION,))
    votes = PixelVotes()
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, plan.train_indices.tolist()), batch_size=64)
    for batch in loader:
        votes.update(batch[Field.SEGMENTATION])
    return votes


def run_stage1_worker(cfg: TrainJobConfig, plan: Stage1Plan, ctx: RunContext, data: TrainData, val: ValSource,
                      *, resume_from: Path | None, votes: Callable[[], PixelVotes] | None = None,
                      collect_votes: bool = False, progress: bool = True) -> dict[str, Any] | None:
    """Train on ``data``, then (rank 0) the final held-out pass and the output files; rank 0 returns the report."""
    task = Stage1Task(cfg, val_batches=val.batches, collect_votes=collect_votes and ctx.is_main)
    hooks = [kill_worker_hook(cfg.faults.kill_worker_at_step, plan.output_dir, ctx.rank)]
    model, result = fit(task, data, ctx, cfg.train, cfg.optim, config_yaml=plan.config_yaml, seed=cfg.seed,
                        resume_from=resume_from, hooks=hooks, progress=progress,
                        meta={"model_size": cfg.model.size, "dataset": plan.dataset})
    report = None
    if ctx.is_main:
        majority = (votes() if votes is not None else task.votes or PixelVotes()).majority()
        model.eval()
        ev = task.evaluate(model, ctx.device, val.batches(), majority_map=majority, collect=cfg.train.predictions,
                           figure_samples=cfg.train.figure_samples)
        out = plan.output_dir
        model_dir = out / MODEL_DIR
        task.save_model(model, model_dir)
        atomic_write_text(model_dir / CONFIG_FILE, plan.config_yaml)
        files = {"model": str(model_dir), "report": str(out / rep.REPORT_JSON)}
        if ev.predictions is not None:
            files["predictions"] = str(rep.write_predictions(out, plan.dataset, ev))
        figure = rep.write_figure(out, ev)
        if figure is not None:
            files["figure"] = str(figure)
        train_count = len(plan.train_indices) if plan.train_indices is not None else None
        report = {
            "stage": "stage1", "output_dir": str(out), "dataset": plan.dataset, "source": cfg.data.source,
            "runner": cfg.runner, "workers": ctx.world_size, "model_size": cfg.model.size,
            "input_size": cfg.crop.input_size, "crop_mode": cfg.crop.mode, "steps": result.step,
            "total_steps": result.total_steps, "steps_per_epoch": result.steps_per_epoch, "epochs": result.epochs,
            "global_batch": cfg.train.batch_size * cfg.train.accumulate * ctx.world_size,
            "split": {**plan.split.describe(), "train_samples": train_count, "val_samples": ev.metrics["samples"]},
            "val": ev.metrics, "history": result.history, "resumed_from_steps": result.resumes,
            "train_seconds": result.seconds, "images_per_s": result.images_per_s, "checkpoint": result.checkpoint,
            "files": files,
        }
        rep.write_report(out, report)
    ctx.barrier()
    return report


def train_stage1(cfg: TrainJobConfig, *, progress: bool = True,
                 on_validation: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """``runner=local``: train Stage I in this process with plain torch (no Ray); returns report.json's content.

    ``on_validation(metrics)``: called after each validation with the epoch's metrics (``val_*``
    keys), e.g. a sweep's scheduler; it may raise to stop the run.
    """
    plan = plan_stage1(cfg)
    out = plan.output_dir
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG_FILE, plan.config_yaml)
    ctx = LocalContext(out, resolve_device(cfg.train.device), cfg.train.keep_checkpoints, on_validation=on_validation)
    ds = open_dataset(cfg.data.dataset_dir, TRAIN_FIELDS)
    data = LoaderData(ds, plan.train_indices, cfg.train.batch_size, rank=ctx.rank, world=ctx.world_size,
                      seed=cfg.seed, num_workers=cfg.data.num_workers)
    with torch_threads(cfg.train.threads):
        report = run_stage1_worker(cfg, plan, ctx, data, dataset_val_source(cfg, plan),
                                   resume_from=plan.resume_from, votes=lambda: training_votes(cfg, plan),
                                   progress=progress)
    return report or {}


def resolve_model_dir(path: str | Path) -> Path:
    """A model directory from a run's output_dir, its ``model/``, or a checkpoint directory."""
    p = Path(path)
    found = find_model_dir(p)
    if found is not None:
        return found
    latest = latest_checkpoint(checkpoints_root(p))
    if latest is not None:
        return latest
    raise AssetError(f"{p}: no Stage I model here (expected model.json + model.safetensors in it, in {MODEL_DIR}/ "
                     "or in checkpoints/step_N/); train one with `sfray train`")


def load_stage1_model(path: str | Path, device: torch.device | str = "cpu", *, frozen: bool = True,
                      ) -> tuple[MultiTaskModel, TrainJobConfig | None]:
    """A trained Stage I model (eval mode; ``frozen``: no gradients) and the config it was trained with."""
    d = resolve_model_dir(path)
    model = load_model(d, device=device)
    if frozen:
        model.requires_grad_(False)
    cfg = None
    if (d / CONFIG_FILE).is_file():
        cfg = config_from_yaml_text(TrainJobConfig, (d / CONFIG_FILE).read_text())
    return model, cfg
