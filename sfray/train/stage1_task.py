"""Stage I as a :class:`~sfray.train.task.TrainTask`: the multi-task model, its losses and metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sfray.config.train import TrainJobConfig
from sfray.conventions import Field
from sfray.losses import MultiTaskLoss
from sfray.losses.equivariance import equivariance_inputs
from sfray.models import MODEL_SIZES, build_model
from sfray.models.hourglass import KeypointHead
from sfray.models.io import check_size, load_weights, read_model_meta, save_model
from sfray.models.multitask import MultiTaskModel
from sfray.train.augment import Photometric, prepare_batch
from sfray.train.evaluation import PixelVotes, evaluate_stage1


class Stage1Task:
    """Train ``MultiTaskModel`` of ``cfg.model.size`` with the weighted multi-task loss.

    ``val_batches``: a callable returning an iterable of raw held-out batches (rank 0 calls it at
    each validation). ``collect_votes``: count the raw training labels per pixel (the majority-map
    baseline of a stream, which has no training set on disk to read afterwards).
    """

    name = "stage1"

    def __init__(self, cfg: TrainJobConfig, val_batches=None, collect_votes: bool = False):
        MODEL_SIZES.check(cfg.model.size)
        self.cfg = cfg
        self.val_batches = val_batches
        self.loss = MultiTaskLoss(cfg.loss, cfg.ssl, KeypointHead.stride)
        self.val_loss = MultiTaskLoss(dataclasses.replace(cfg.loss, ssl=0.0), cfg.ssl, KeypointHead.stride)
        self.photometric = Photometric(cfg.augment)
        self.votes = PixelVotes() if collect_votes else None

    # ---- model ------------------------------------------------------------------------------
    def build_model(self) -> MultiTaskModel:
        model = build_model(self.cfg.model.size)
        if self.cfg.model.init_from:
            self.load_model(model, Path(self.cfg.model.init_from))
        return model

    @property
    def find_unused_parameters(self) -> bool:
        """A head whose loss weight is 0 gets no gradient; DDP must be told."""
        c = self.cfg.loss
        return min(c.segmentation, c.depth, c.keypoints) == 0

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        o = self.cfg.optim
        return [{"name": "encoder", "params": model.encoder_parameters(), "lr": o.lr_encoder},
                {"name": "heads", "params": model.head_parameters(), "lr": o.lr_heads}]

    def save_model(self, model: nn.Module, directory: Path) -> None:
        save_model(model, directory)

    def load_model(self, model: nn.Module, directory: Path) -> None:
        meta = read_model_meta(directory)
        check_size(meta, self.cfg.model.size, str(directory))
        load_weights(model, directory)

    def state_dict(self) -> dict[str, Any]:
        return {"votes": self.votes.counts} if self.votes is not None and self.votes.counts is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.votes is not None and state.get("votes") is not None:
            self.votes.counts = state["votes"]

    # ---- steps ------------------------------------------------------------------------------
    def prepare(self, batch: dict[str, Any], *, train: bool, device: torch.device,
                generator: torch.Generator | None) -> dict[str, Any]:
        if train and self.votes is not None:
            self.votes.update(batch[Field.SEGMENTATION])
        aug = self.cfg.augment if train else None
        return prepare_batch(batch, self.cfg.crop, device, aug, self.photometric if train else None, generator)

    def on_train_start(self, model: nn.Module, batch: dict[str, Any], ctx: Any) -> None:
        """Depth head range from the first global batch: foreground mean and spread of z."""
        if self.cfg.model.init_from:
            return  # the loaded weights carry their own
        depth, mask = batch[Field.DEPTH].double(), batch[Field.MASK]
        sums = torch.stack([depth[mask].sum(), (depth[mask] ** 2).sum(), mask.sum().double()])
        sums = ctx.all_reduce_sum(sums)
        if float(sums[2]) < 1:
            return
        mean = float(sums[0] / sums[2])
        std = float(max(sums[1] / sums[2] - mean * mean, 0.0)) ** 0.5
        model.set_depth_normalisation(mean, std if std > 1e-6 else 1.0)

    def training_step(self, model: nn.Module, batch: dict[str, Any],
                      generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        image = batch[Field.IMAGE]
        ssl_matrix = None
        if self.cfg.loss.ssl > 0:
            warped, ssl_matrix = equivariance_inputs(image, self.cfg.ssl, generator)
            out = model(image, warped)
        else:
            out = model(image)
        inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        return self.loss(out, batch, depth_scale=inner.depth_scale, ssl_matrix=ssl_matrix)

    def _val_loss(self, model: nn.Module):
        return lambda out, batch: self.val_loss(out, batch, depth_scale=model.depth_scale)

    def validate(self, model: nn.Module, ctx: Any) -> dict[str, Any]:
        if self.val_batches is None:
            return {}
        ev = evaluate_stage1(model, self.val_batches(), self.cfg.crop, ctx.device, loss_fn=self._val_loss(model))
        keep = ("samples", "nme", "seg_mean_f1", "depth_mae", "losses")
        return {k: ev.metrics[k] for k in keep if k in ev.metrics}

    def evaluate(self, model: nn.Module, device: torch.device, batches: Iterable, *, majority_map=None,
                 collect: bool = True, figure_samples: int = 0):
        """The final held-out pass: metrics, baselines, predictions (see ``sfray.train.evaluation``)."""
        return evaluate_stage1(model, batches, self.cfg.crop, device, loss_fn=self._val_loss(model),
                               majority_map=majority_map, collect=collect, figure_samples=figure_samples)
