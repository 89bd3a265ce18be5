"""Where a training loop runs: ranks, device, collectives, and where checkpoints go.

The generic loop (``sfray.train.loop``) talks only to a :class:`RunContext`. :class:`LocalContext`
is this process, alone or inside a ``torch.distributed`` group someone else initialised
(``torchrun``, a test's gloo group); it publishes checkpoints under ``OUTPUT/checkpoints``
itself. The Ray Train context (``sfray.distributed.train``) hands them to Ray Train instead, which
stores them under the same names. Every rank calls :meth:`save_checkpoint` and :meth:`report`
the same number of times, because under Ray they are barriers.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from sfray.train.checkpoint import checkpoints_root, new_tmp_dir, publish


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """``train.threads`` for the duration of one in-process run (0: leave torch's setting), restored
    afterwards: the pipeline and the sweep run several jobs in one process, each with its own."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class RunContext:
    """Base: a single process on ``device``; subclasses add ranks and reporting."""

    def __init__(self, output_dir: str | Path, device: torch.device, keep_checkpoints: int = 2):
        self.output_dir = Path(output_dir)
        self.device = device
        self.keep = keep_checkpoints

    # ---- ranks and collectives -------------------------------------------------------------
    @property
    def rank(self) -> int:
        return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0

    @property
    def world_size(self) -> int:
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def wrap_model(self, model: nn.Module, find_unused_parameters: bool = False) -> nn.Module:
        """Move to the device; DistributedDataParallel when there are several ranks."""
        model = model.to(self.device)
        if self.world_size == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                   find_unused_parameters=find_unused_parameters)

    # ---- checkpoints and reports -----------------------------------------------------------
    def resume_candidate(self) -> Path | None:
        """A checkpoint handed over by the runtime (Ray Train after a restart), if any."""
        return None

    def save_checkpoint(self, step: int, write: Callable[[Path], None], metrics: dict[str, Any]) -> Path | None:
        """Rank 0 writes a checkpoint through ``write(dir)``; all ranks call this. Returns its final path."""
        root = checkpoints_root(self.output_dir)
        final = None
        if self.is_main:
            tmp = new_tmp_dir(root, step)
            try:
                write(tmp)
                final = publish(tmp, root, step, self.keep)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        self.barrier()
        return final

    def report(self, metrics: dict[str, Any]) -> None:
        """Epoch-end metrics (all ranks call it; rank 0's are kept)."""
        self.barrier()


class LocalContext(RunContext):
    """This process (and, if initialised, its torch.distributed group).

    ``on_validation``: rank 0 hands each report that carries validation metrics to it (a sweep).
    """

    def __init__(self, output_dir: str | Path, device: torch.device, keep_checkpoints: int = 2,
                 on_validation: Callable[[dict[str, Any]], None] | None = None):
        super().__init__(output_dir, device, keep_checkpoints)
        self.on_validation = on_validation

    def report(self, metrics: dict[str, Any]) -> None:
        super().report(metrics)
        if self.on_validation is not None and self.is_main and any(k.startswith("val_") for k in metrics):
            self.on_validation(metrics)
