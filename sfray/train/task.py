"""The task interface the generic loop trains: what to build, how to step, how to score.

A task owns everything specific to one training problem (Stage I's multi-task model and losses,
Stage II's label-finetuning heads): the model, its parameter groups, batch preparation, the loss
dict, validation metrics and the model files. The loop (``sfray.train.loop.fit``) owns the rest:
optimizer, schedule, precision, accumulation, DDP, checkpoints, resume, progress. Data comes in
through :class:`TrainData`, so the same task trains from a DataLoader or from Ray Data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class TrainData(Protocol):
    """Training batches of one worker: the same number per epoch on every worker."""

    batches_per_epoch: int

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[dict[str, Any]]:
        """Raw batches of ``epoch`` for this worker, without the first ``skip`` (a resumed epoch)."""
        ...


@runtime_checkable
class TrainTask(Protocol):
    """What the loop needs from a training problem (see the module docstring)."""

    name: str

    def build_model(self) -> nn.Module:
        """A freshly initialised trainable model (on the CPU; the loop seeds the RNG before)."""
        ...

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Optimizer groups: dicts with ``name``, ``params`` and ``lr``."""
        ...

    def prepare(self, batch: dict[str, Any], *, train: bool, device: torch.device,
                generator: torch.Generator | None) -> dict[str, Any]:
        """Raw batch -> device tensors the step consumes (crop, augmentation, ...)."""
        ...

    def on_train_start(self, model: nn.Module, batch: dict[str, Any], ctx: Any) -> None:
        """Once, on the first prepared batch of a fresh run (not on resume): data-driven init."""
        ...

    def training_step(self, model: nn.Module, batch: dict[str, Any],
                      generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Forward + losses; ``loss`` is back-propagated, the other entries are logged."""
        ...

    def validate(self, model: nn.Module, ctx: Any) -> dict[str, Any]:
        """Held-out metrics (called on rank 0 with the unwrapped model in eval mode, no grad)."""
        ...

    def save_model(self, model: nn.Module, directory: Path) -> None:
        ...

    def load_model(self, model: nn.Module, directory: Path) -> None:
        ...

    def state_dict(self) -> dict[str, Any]:
        """Extra task state saved in checkpoints (tensors and plain containers only)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ...
