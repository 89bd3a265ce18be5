"""Ray Train glue for any sfray training task: the TorchTrainer wrapper, its context, its data.

``run_torch_trainer(worker_fn, config, ...)`` runs ``worker_fn(config)`` on ``ray.num_workers``
Train workers (DDP: gloo on CPUs, NCCL on GPUs, set up by Ray's TorchConfig) with
``FailureConfig(max_failures=ray.max_failures)``. Checkpoints go to Ray Train's storage at
``OUTPUT/checkpoints/step_N`` (``storage_path=OUTPUT``, run name ``checkpoints``, one directory
name per step), the same place and layout the plain-torch runner uses, so both runners resume
each other's runs and a restarted worker group finds its checkpoint through
``ray.train.get_checkpoint()``. Inside a worker, :class:`RayContext` is the
``sfray.train.context.RunContext`` the generic loop talks to and :class:`RayShardData` turns the
worker's dataset shard into the loop's ``TrainData``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ray
import ray.train
import torch
from ray.train import Checkpoint, CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer, get_device, prepare_model

from sfray.config.train import TrainRaySection
from sfray.errors import SfrayError
from sfray.train.checkpoint import (
    CHECKPOINTS_DIR,
    checkpoints_root,
    latest_checkpoint,
    read_meta,
    step_dir_name,
)
from sfray.train.context import RunContext

#: Name of the dataset every worker reads its shard of.
TRAIN_DATASET = "train"


class RayContext(RunContext):
    """RunContext inside a Ray Train worker: Ray's ranks, device, DDP wrapping and reporting."""

    def __init__(self, output_dir: str | Path, keep_checkpoints: int):
        super().__init__(output_dir, get_device(), keep_checkpoints)
        self._ctx = ray.train.get_context()

    @property
    def rank(self) -> int:
        return self._ctx.get_world_rank()

    @property
    def world_size(self) -> int:
        return self._ctx.get_world_size()

    def wrap_model(self, model: torch.nn.Module, find_unused_parameters: bool = False) -> torch.nn.Module:
        kwargs = {"find_unused_parameters": True} if find_unused_parameters and self.world_size > 1 else None
        return prepare_model(model, parallel_strategy_kwargs=kwargs)

    def resume_candidate(self) -> Path | None:
        """The newest complete checkpoint: the one Ray registered, or a later one already persisted
        under ``OUTPUT/checkpoints`` that the controller had not registered when a worker died (its
        report returns once the files are stored, the registration follows asynchronously)."""
        ckpt = ray.train.get_checkpoint()
        found = [Path(ckpt.path)] if ckpt is not None else []
        on_disk = latest_checkpoint(checkpoints_root(self.output_dir))
        found += [on_disk] if on_disk is not None else []
        return max(found, key=lambda p: int(read_meta(p)["step"])) if found else None

    def save_checkpoint(self, step: int, write: Callable[[Path], None], metrics: dict[str, Any]) -> Path | None:
        name = step_dir_name(step)
        if not self.is_main:
            ray.train.report(metrics, checkpoint=None, checkpoint_dir_name=name)
            return None
        tmp = Path(tempfile.mkdtemp(prefix=f"sfray-{name}-"))
        try:
            write(tmp)
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(str(tmp)), checkpoint_dir_name=name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return checkpoints_root(self.output_dir) / name

    def report(self, metrics: dict[str, Any]) -> None:
        ray.train.report(metrics)


class RayShardData:
    """``TrainData`` over this worker's dataset shard.

    ``repeat=True`` (a dataset on disk): each epoch iterates the shard anew, shuffled within a
    local buffer. ``repeat=False`` (a stream that already holds every epoch's fresh samples back
    to back, starting at epoch ``first_epoch``): epochs are consecutive runs of
    ``batches_per_epoch`` batches of one long iterator; skipping means consuming.
    """

    def __init__(self, shard: Any, batch_size: int, batches_per_epoch: int, *, repeat: bool = True,
                 first_epoch: int = 0, shuffle_buffer: int = 0, seed: int = 0):
        self.shard, self.batch_size, self.batches_per_epoch = shard, batch_size, batches_per_epoch
        self.repeat, self.first_epoch = repeat, first_epoch
        self.shuffle_buffer, self.seed = shuffle_buffer, seed
        self._stream: Iterator[dict[str, Any]] | None = None
        self._position = 0  # batches consumed from the stream

    def _batches(self, seed: int | None) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"batch_size": self.batch_size, "drop_last": True, "device": "cpu"}
        if self.shuffle_buffer > 0:
            kwargs.update(local_shuffle_buffer_size=self.shuffle_buffer, local_shuffle_seed=seed)
        return iter(self.shard.iter_torch_batches(**kwargs))

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[dict[str, Any]]:
        if self.repeat:
            it = self._batches(self.seed * 1000 + epoch)
            for _ in range(skip):
                next(it, None)
            return it
        if self._stream is None:
            self._stream = self._batches(self.seed)
        start = (epoch - self.first_epoch) * self.batches_per_epoch
        while self._position < start + skip and next(self._stream, None) is not None:
            self._position += 1
        return self._until(start + self.batches_per_epoch)

    def _until(self, end: int) -> Iterator[dict[str, Any]]:
        assert self._stream is not None
        while self._position < end:
            batch = next(self._stream, None)
            if batch is None:
                return
            self._position += 1
            yield batch


def run_torch_trainer(worker_fn: Callable[[dict[str, Any]], None], config: dict[str, Any], *,
                      ray_cfg: TrainRaySection, output_dir: str | Path, keep_checkpoints: int,
                      datasets: dict[str, Any] | None = None) -> ray.train.Result:
    """Run ``worker_fn`` under a TorchTrainer; checkpoints land in ``output_dir/checkpoints``."""
    out = Path(output_dir).resolve()
    storage = Path(ray_cfg.storage_path).resolve() if ray_cfg.storage_path else out
    trainer = TorchTrainer(
        worker_fn,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=ray_cfg.num_workers, use_gpu=ray_cfg.use_gpu,
                                     resources_per_worker={"CPU": ray_cfg.cpus_per_worker,
                                                           **({"GPU": 1} if ray_cfg.use_gpu else {})}),
        run_config=RunConfig(name=CHECKPOINTS_DIR, storage_path=str(storage),
                             failure_config=FailureConfig(max_failures=ray_cfg.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=keep_checkpoints)),
        datasets=datasets,
        dataset_config=DataConfig(datasets_to_split="all"),
    )
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as exc:
        raise SfrayError(f"training failed in a Ray Train worker: {_last_line(exc)}") from exc
    if result.error is not None:
        raise SfrayError(f"training failed in a Ray Train worker: {_last_line(result.error)}")
    return result


def _last_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__
