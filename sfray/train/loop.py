"""The generic training loop: any :class:`~sfray.train.task.TrainTask`, any run context.

Per optimizer step: ``train.accumulate`` micro-batches (DDP gradient sync only on the last),
AMP on a GPU (bf16, or fp16 with a gradient scaler; never on the CPU), optional gradient
clipping, the learning-rate schedule of ``sfray.train.optim``. Checkpoints every
``train.checkpoint_every`` steps and at the end; at an epoch's last step the checkpoint waits for
that epoch's validation, so a checkpoint never precedes a validation it skipped. A resumed run
continues at the saved step: the epoch in progress resumes after the batches it had consumed, the
step counter and the epoch history carry on (docs/training.md, resume).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sfray.config.train import OptimSection, TrainSection
from sfray.errors import ConfigError
from sfray.progress import Progress
from sfray.train.checkpoint import read_state, write_checkpoint_files
from sfray.train.context import RunContext
from sfray.train.optim import LearningRate, build_optimizer
from sfray.train.task import TrainData, TrainTask

LOSS = "loss"


@dataclass
class LoopState:
    """What a checkpoint must remember besides weights and optimizer moments."""

    step: int = 0  # optimizer steps done
    samples: int = 0  # training samples consumed (all workers)
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per finished epoch
    resumes: list[int] = field(default_factory=list)  # steps this run was resumed from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitResult:
    step: int
    total_steps: int
    steps_per_epoch: int
    epochs: int
    history: list[dict[str, Any]]
    resumes: list[int]
    checkpoint: str | None
    seconds: float
    images_per_s: float


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None: mixed precision only on a GPU."""
    if device.type != "cuda" or setting == "off":
        return None
    if setting == "fp16":
        return torch.float16
    if setting == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def plan_steps(data: TrainData, cfg: TrainSection) -> tuple[int, int]:
    """(steps per epoch, total steps) for this data and config."""
    per_epoch = data.batches_per_epoch // cfg.accumulate
    if per_epoch < 1:
        raise ConfigError(f"train.batch_size={cfg.batch_size} x train.accumulate={cfg.accumulate} (per worker) "
                          f"is more than one epoch of training data ({data.batches_per_epoch} batches per worker); "
                          "lower the batch size or use more samples")
    total = cfg.epochs * per_epoch
    if cfg.max_steps > 0:
        total = min(total, cfg.max_steps)
    return per_epoch, total


def fit(task: TrainTask, data: TrainData, ctx: RunContext, train_cfg: TrainSection, optim_cfg: OptimSection,
        *, config_yaml: str, seed: int, resume_from: Path | None = None,
        hooks: Sequence[Callable[[int], None]] = (), meta: dict[str, Any] | None = None,
        progress: bool = True) -> tuple[nn.Module, FitResult]:
    """Train ``task`` on ``data``; returns the unwrapped model and a summary (see module docstring)."""
    start = time.monotonic()
    device = ctx.device
    torch.manual_seed(seed)
    model = task.build_model()
    state = LoopState()
    opt_state = scaler_state = None
    if resume_from is not None:
        task.load_model(model, resume_from)
        saved = read_state(resume_from)
        state = LoopState(**saved["loop"])
        state.resumes.append(state.step)
        opt_state, scaler_state = saved["optimizer"], saved.get("scaler")
        task.load_state_dict(saved.get("task", {}))
    torch.manual_seed(seed + 7919 * (ctx.rank + 1) + state.step)  # augmentation RNG of this rank
    net = ctx.wrap_model(model, bool(getattr(task, "find_unused_parameters", False)))
    optimizer = build_optimizer(task.param_groups(model), optim_cfg)
    if opt_state is not None:
        optimizer.load_state_dict(opt_state)
    dtype = amp_dtype(train_cfg.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    if scaler_state:
        scaler.load_state_dict(scaler_state)
    per_epoch, total = plan_steps(data, train_cfg)
    epochs = math.ceil(total / per_epoch)
    schedule = LearningRate(optim_cfg, total, per_epoch)
    global_batch = train_cfg.batch_size * train_cfg.accumulate * ctx.world_size
    base_meta = {"task": task.name, "world_size": ctx.world_size, "global_batch": global_batch,
                 "steps_per_epoch": per_epoch, "total_steps": total, **(meta or {})}

    def checkpoint(metrics: dict[str, Any]) -> Path | None:
        def write(d: Path) -> None:
            task.save_model(model, d)
            st = {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "loop": state.to_dict(),
                  "task": task.state_dict()}
            write_checkpoint_files(d, state=st, config_yaml=config_yaml,
                                   meta={**base_meta, "step": state.step, "epoch": state.step / per_epoch})
        return ctx.save_checkpoint(state.step, write, metrics)

    bar = Progress(total - state.step, f"train {task.name}") if progress and ctx.is_main else None
    run_start, run_step0 = time.monotonic(), state.step
    last_ckpt: Path | None = resume_from
    last_ckpt_step = state.step if resume_from is not None else -1
    fresh = resume_from is None
    generator = torch.Generator()
    net.train()
    first_epoch = state.step // per_epoch
    for epoch in range(first_epoch, epochs):
        skip = max(state.step - epoch * per_epoch, 0) * train_cfg.accumulate
        epoch_loss, epoch_steps, epoch_t0, epoch_samples = 0.0, 0, time.monotonic(), 0
        batches = data.epoch(epoch, skip)
        micro = 0
        terms: dict[str, float] = {}
        for raw in batches:
            generator.manual_seed(seed * 1_000_003 + state.step * 1009 + micro * 17 + ctx.rank)
            batch = task.prepare(raw, train=True, device=device, generator=generator)
            if fresh:
                task.on_train_start(model, batch, ctx)
                fresh = False
            last_micro = micro == train_cfg.accumulate - 1
            sync = contextlib.nullcontext() if last_micro or ctx.world_size == 1 else net.no_sync()
            autocast = torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()
            with sync:
                with autocast:
                    losses = task.training_step(net, batch, generator)
                scaler.scale(losses[LOSS] / train_cfg.accumulate).backward()
            for k, v in losses.items():
                terms[k] = terms.get(k, 0.0) + float(v.detach()) / train_cfg.accumulate
            micro += 1
            if not last_micro:
                continue
            micro = 0
            schedule.apply(optimizer, state.step)
            if optim_cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(net.parameters(), optim_cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.samples += global_batch
            epoch_samples += global_batch
            epoch_loss += terms[LOSS]
            epoch_steps += 1
            last_terms, terms = terms, {}
            for hook in hooks:
                hook(state.step)
            end_of_epoch = state.step == (epoch + 1) * per_epoch or state.step >= total
            if bar is not None:
                rate = (state.samples - run_step0 * global_batch) / max(time.monotonic() - run_start, 1e-9)
                bar.update(state.step - run_step0, f"step {state.step}/{total}, epoch {epoch + 1}/{epochs}, "
                           f"loss {last_terms[LOSS]:.4f}, {rate:.1f} img/s")
            every = train_cfg.checkpoint_every
            if every and state.step % every == 0 and not end_of_epoch:
                last_ckpt, last_ckpt_step = checkpoint({"step": state.step}), state.step
            if end_of_epoch:
                break
        if state.step <= epoch * per_epoch and epoch_steps == 0:
            raise RuntimeError(f"epoch {epoch} produced no training batch on rank {ctx.rank}")
        seconds = time.monotonic() - epoch_t0
        entry: dict[str, Any] = {"epoch": epoch, "step": state.step, "train_loss": epoch_loss / max(epoch_steps, 1),
                                 "steps": epoch_steps, "images_per_s": epoch_samples / max(seconds, 1e-9),
                                 "train_terms": {k: round(v, 6) for k, v in last_terms.items()} if epoch_steps else {}}
        if ctx.is_main and (epoch == epochs - 1 or (epoch + 1) % train_cfg.validate_every == 0):
            net.eval()
            with torch.no_grad():
                entry["val"] = task.validate(model, ctx)
            net.train()
        state.history.append(entry)
        ctx.report({"epoch": epoch, "step": state.step, "train_loss": entry["train_loss"],
                    **{f"val_{k}": v for k, v in entry.get("val", {}).items() if isinstance(v, (int, float))}})
        every = train_cfg.checkpoint_every
        if (every and state.step % every == 0) or state.step >= total:
            last_ckpt, last_ckpt_step = checkpoint({"step": state.step}), state.step
        if state.step >= total:
            break
    if last_ckpt_step != state.step:
        last_ckpt = checkpoint({"step": state.step})
    if bar is not None:
        bar.close(f"step {state.step}/{total}")
    elapsed = time.monotonic() - run_start
    result = FitResult(step=state.step, total_steps=total, steps_per_epoch=per_epoch, epochs=epochs,
                       history=state.history, resumes=state.resumes,
                       checkpoint=str(last_ckpt) if last_ckpt else None, seconds=time.monotonic() - start,
                       images_per_s=(state.step - run_step0) * global_batch / max(elapsed, 1e-9))
    return model, result
