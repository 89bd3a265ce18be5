"""Stage II end to end without Ray: plan (every check, nothing written), finetune, score, report.

``run_finetune(cfg)`` is the plain-torch runner (``runner=local``); the Ray Train runner
(``sfray.distributed.finetune``) calls the same :func:`plan_finetune` on the driver and
:func:`run_stage2_worker` in each worker. Training reads the benchmark's train split through
``BenchmarkDataset`` (the protocol crops), validation scores the first evaluation split with
``score_model``. Outputs in ``output_dir``: ``config.yaml``, ``checkpoints/``, ``model/`` (the
φ_L nets, loadable by path with ``sfray.models.labelnet.load_labelnet``), and the evaluation
files of ``sfray.evaluate.job`` (``report.json``, ``report.md``, ``qualitative.png``,
``predictions/{direct,finetuned}/``). Rerunning a finished config returns its report.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from sfray.benchmarks.base import TASK_DEPTH, TASK_LANDMARKS, TASK_PARSING, BenchmarkReader
from sfray.benchmarks.torch_dataset import BenchmarkDataset
from sfray.config.finetune import FinetuneJobConfig
from sfray.config.loader import to_yaml
from sfray.devices import resolve_device
from sfray.errors import ConfigError
from sfray.evaluate.job import (
    completed_report,
    load_frozen_stage1,
    open_stage2_benchmark,
    write_stage2_report,
)
from sfray.evaluate.methods import DIRECT_METHOD, direct_predictor, finetuned_method, finetuned_predictor
from sfray.evaluate.run import score_model
from sfray.io.atomic import atomic_write_text
from sfray.models.io import MODEL_DIR, find_model_dir
from sfray.models.labelnet import LabelNetSpec
from sfray.models.multitask import MultiTaskModel
from sfray.train.checkpoint import CONFIG_FILE, check_resume_compatible, read_meta
from sfray.train.context import LocalContext, RunContext, torch_threads
from sfray.train.data import LoaderData
from sfray.train.loop import fit
from sfray.train.stage1 import _choose_resume
from sfray.train.stage2_task import Stage2Task, labelnet_spec
from sfray.train.task import TrainData

#: Keys that must not change when a Stage II run resumes.
RESUME_KEYS = ("model.use_features", "model.hidden", "model.layers", "model.parsing_prior", "benchmark.name",
               "crop.input_size", "train.batch_size", "train.accumulate")


@dataclass
class Stage2Plan:
    """Everything decided before the first write."""

    output_dir: Path
    config_yaml: str
    stage1_dir: str = ""  # the Stage I model directory (absolute)
    tasks: tuple[str, ...] = ()
    eval_splits: tuple[str, ...] = ()
    val_split: str | None = None  # scored at each validation while training (None: no validation)
    train_indices: np.ndarray | None = None
    spec: LabelNetSpec | None = None
    resume_from: Path | None = None
    world_size: int = 1
    done: dict[str, Any] | None = None  # the report of a finished run of this exact config


def _build_lapa_like(cfg: FinetuneJobConfig) -> None:
    """``benchmark.build_from``: render the LaPa-like set at ``benchmark.root`` if it is not there yet."""
    b = cfg.benchmark
    if b.build_from is None or Path(b.root).exists():
        return
    from sfray.benchmarks.lapa_like import make_lapa_like

    make_lapa_like(b.build_from, b.root, dict(b.build_counts), progress=True)


#: ``benchmark.val_split`` values that are not split names.
VAL_AUTO, VAL_NONE = "auto", "none"
#: The split ``benchmark.val_split=auto`` looks for.
VAL_SPLIT = "val"


def resolve_val_split(cfg: FinetuneJobConfig, reader: BenchmarkReader, tasks: tuple[str, ...]) -> str | None:
    """The split validated while training: a named one must exist with usable images; ``auto`` takes
    the benchmark's ``val`` split when it has some, else none (a test split is never picked by itself:
    it would be watched while training)."""
    want = cfg.benchmark.val_split
    if want == VAL_NONE:
        return None
    name = VAL_SPLIT if want == VAL_AUTO else want
    usable = name in reader.scan().splits and any(t in e.usable for e in reader.entries(name) for t in tasks)
    if usable:
        return name
    if want == VAL_AUTO:
        return None
    raise ConfigError(f"bad value for config key 'benchmark.val_split': {reader.name} has no split '{want}' with "
                      f"usable {'/'.join(tasks)} images (splits: {' | '.join(reader.scan().splits)}; "
                      "or benchmark.val_split=none)")


def stage1_fingerprint(model: MultiTaskModel) -> str:
    """SHA-256 of every Stage I tensor's bytes: equal before and after finetuning, or it was touched."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def plan_finetune(cfg: FinetuneJobConfig, *, progress: bool = False) -> tuple[Stage2Plan, BenchmarkReader | None]:
    """Check config, Stage I model, benchmark and resume point; write nothing (but a requested LaPa-like set)."""
    out = Path(cfg.output_dir)
    plan = Stage2Plan(out, to_yaml(cfg), world_size=cfg.ray.num_workers if cfg.runner == "ray" else 1)
    plan.done = completed_report(out, plan.config_yaml)
    if plan.done is not None:
        return plan, None
    stage1 = load_frozen_stage1(cfg.model.stage1, cfg.model.stage1_size, cfg.crop.input_size)
    plan.stage1_dir = str(find_model_dir(cfg.model.stage1).resolve())
    _build_lapa_like(cfg)
    reader, tasks, plan.eval_splits = open_stage2_benchmark(cfg.benchmark, need_train=True, progress=progress)
    weights = {TASK_PARSING: cfg.loss.parsing, TASK_LANDMARKS: cfg.loss.landmarks, TASK_DEPTH: cfg.loss.depth}
    plan.tasks = tuple(t for t in tasks if weights[t] > 0)
    if not plan.tasks:
        raise ConfigError(f"config key 'loss': every task of {reader.name} ({', '.join(tasks)}) has weight 0")
    n_train = len(BenchmarkDataset(reader, cfg.benchmark.train_split, size=cfg.crop.input_size, tasks=plan.tasks))
    if cfg.benchmark.max_train_samples:
        n_train = min(n_train, cfg.benchmark.max_train_samples)
    plan.train_indices = np.arange(n_train)
    plan.val_split = resolve_val_split(cfg, reader, plan.tasks)
    plan.spec = labelnet_spec(
        cfg, stage1, num_classes=reader.schema.num_classes if TASK_PARSING in plan.tasks and reader.schema else 0,
        num_landmarks=int(reader.num_landmarks or 0) if TASK_LANDMARKS in plan.tasks else 0,
        depth=TASK_DEPTH in plan.tasks, schema_name=reader.schema.name if reader.schema else None)
    plan.resume_from = _choose_resume(cfg, out)
    if plan.resume_from is not None:
        saved = read_meta(plan.resume_from)
        current = OmegaConf.to_container(OmegaConf.create(plan.config_yaml))
        check_resume_compatible(plan.resume_from, current, RESUME_KEYS,
                                {"ray.num_workers (world size)": (saved.get("world_size"), plan.world_size)})
    return plan, reader


def _validator(reader: BenchmarkReader, split: str, stage1: MultiTaskModel, cfg: FinetuneJobConfig,
               tasks: tuple[str, ...], device: torch.device):
    def validate(model: torch.nn.Module) -> dict[str, Any]:
        s = score_model(reader, split, finetuned_predictor(stage1, model, device), size=cfg.crop.input_size,
                        batch_size=cfg.evaluate.batch_size, tasks=tasks, norm=cfg.evaluate.norm,
                        threshold=cfg.evaluate.threshold)
        out: dict[str, Any] = {"split": split}
        if s.parsing:
            out["mean_f1"] = s.parsing["mean_f1"]
        if s.landmarks:
            out["nme"] = s.landmarks["nme"]
        if s.depth:
            out["si_rmse"] = s.depth["si_rmse"]
        return out
    return validate


def run_stage2_worker(cfg: FinetuneJobConfig, plan: Stage2Plan, ctx: RunContext, data: TrainData,
                      reader: BenchmarkReader, *, resume_from: Path | None, progress: bool = True
                      ) -> dict[str, Any] | None:
    """Finetune on ``data``; then rank 0 scores both methods and writes every output; returns the report."""
    stage1 = load_frozen_stage1(plan.stage1_dir, None, cfg.crop.input_size, ctx.device)
    before = stage1_fingerprint(stage1)
    validate = _validator(reader, plan.val_split, stage1, cfg, plan.tasks, ctx.device) if plan.val_split else None
    task = Stage2Task(cfg, stage1, plan.spec, validate, extra_meta={"config": plan.config_yaml,
                                                                     "stage1": plan.stage1_dir,
                                                                     "benchmark": reader.name})
    model, result = fit(task, data, ctx, cfg.train, cfg.optim, config_yaml=plan.config_yaml, seed=cfg.seed,
                        resume_from=resume_from, progress=progress,
                        meta={"stage1": plan.stage1_dir, "benchmark": reader.name})
    report = None
    if ctx.is_main:
        model.eval()
        out = plan.output_dir
        task.save_model(model, out / MODEL_DIR)
        atomic_write_text(out / MODEL_DIR / CONFIG_FILE, plan.config_yaml)
        unchanged = stage1_fingerprint(stage1) == before
        methods = [(*DIRECT_METHOD, direct_predictor(stage1, reader, ctx.device)),
                   (*finetuned_method(cfg.model.use_features), finetuned_predictor(stage1, model, ctx.device))]
        training = {"runner": cfg.runner, "workers": ctx.world_size, "train_split": cfg.benchmark.train_split,
                    "val_split": plan.val_split,
                    "train_images": int(len(plan.train_indices)), "tasks": list(plan.tasks),
                    "steps": result.step, "total_steps": result.total_steps, "epochs": result.epochs,
                    "history": result.history, "resumed_from_steps": result.resumes,
                    "train_seconds": result.seconds, "images_per_s": result.images_per_s,
                    "checkpoint": result.checkpoint, "stage1_unchanged": unchanged, "labelnet": plan.spec.to_dict()}
        notes = (f"Stage I model: `{plan.stage1_dir}` (frozen; weights unchanged by finetuning: {unchanged}).",
                 f"Finetuned on {len(plan.train_indices)} `{cfg.benchmark.train_split}` images for {result.step} "
                 f"steps (validated on {f'`{plan.val_split}`' if plan.val_split else 'no split'} while training); "
                 f"scored on {', '.join(plan.eval_splits)} at {cfg.crop.input_size}² protocol crops, "
                 "predictions mapped back to the original images.")
        report = write_stage2_report(out, reader, plan.tasks, plan.eval_splits, methods, size=cfg.crop.input_size,
                                     eval_cfg=cfg.evaluate, title=f"{reader.name}: Stage II label finetuning",
                                     extra={"config": plan.config_yaml, "stage": "stage2", "stage1": plan.stage1_dir,
                                            "model": str(out / MODEL_DIR), "training": training},
                                     notes=notes, progress=progress)
    ctx.barrier()
    return report


def train_dataset(cfg: FinetuneJobConfig, reader: BenchmarkReader, plan: Stage2Plan) -> BenchmarkDataset:
    return BenchmarkDataset(reader, cfg.benchmark.train_split, size=cfg.crop.input_size, tasks=plan.tasks,
                            float_image=True)


def run_finetune(cfg: FinetuneJobConfig, *, progress: bool = True) -> dict[str, Any]:
    """``runner=local``: Stage II in this process with plain torch; returns report.json's content."""
    plan, reader = plan_finetune(cfg, progress=progress)
    if plan.done is not None:
        return plan.done
    assert reader is not None
    out = plan.output_dir
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG_FILE, plan.config_yaml)
    ctx = LocalContext(out, resolve_device(cfg.train.device), cfg.train.keep_checkpoints)
    data = LoaderData(train_dataset(cfg, reader, plan), plan.train_indices, cfg.train.batch_size, rank=ctx.rank,
                      world=ctx.world_size, seed=cfg.seed, num_workers=0)
    with torch_threads(cfg.train.threads):
        report = run_stage2_worker(cfg, plan, ctx, data, reader, resume_from=plan.resume_from, progress=progress)
    return report or {}
