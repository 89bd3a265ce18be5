"""Stage II as a :class:`~sfray.train.task.TrainTask`: φ_L nets on top of a frozen Stage I model.

The Stage I model is held by the task, not by the trained module: it never reaches the optimizer,
DDP or the checkpoints, runs in eval mode under ``torch.no_grad`` and has ``requires_grad`` off,
so no gradient can reach it (tests/train/test_stage2.py checks its weights stay bit-identical).
Losses, each over the pixels / points with ground truth: parsing cross-entropy (crop pixels from
outside the image and ignored ids left out), landmarks the mean point distance in units of the
crop side, depth a masked L1 in the benchmark's units (docs/training.md, Stage II).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sfray.benchmarks.schemas import DIRECT_MAPPINGS
from sfray.config.finetune import FinetuneJobConfig
from sfray.conventions import IGNORE_LABEL, Field
from sfray.losses.dense import soft_dice
from sfray.models.labelnet import LabelFinetuneModel, LabelNetSpec, load_labelnet_weights, save_labelnet
from sfray.models.multitask import MultiTaskModel

LOSS = "loss"
_TENSORS = (Field.IMAGE, Field.SEGMENTATION, Field.LANDMARKS_2D, Field.LANDMARKS_VISIBLE, Field.DEPTH, Field.MASK)


def labelnet_spec(cfg: FinetuneJobConfig, stage1: MultiTaskModel, num_classes: int, num_landmarks: int,
                  depth: bool, schema_name: str | None = None) -> LabelNetSpec:
    """The φ_L spec for this run: one net per task trained (counts 0 leave a net out); the parsing
    net starts at the direct mapping of ``schema_name`` when ``model.parsing_prior`` and one exists."""
    s = stage1.spec
    prior = DIRECT_MAPPINGS.get(schema_name) if cfg.model.parsing_prior and num_classes else None
    return LabelNetSpec(num_classes=num_classes, num_landmarks=num_landmarks, depth=depth,
                        use_features=cfg.model.use_features, feature_channels=s.features,
                        stage1_classes=s.num_classes, stage1_landmarks=s.num_landmarks,
                        hidden=cfg.model.hidden, layers=cfg.model.layers, beta=s.kp_beta,
                        seg_probabilities=True, seg_prior=tuple(prior) if prior is not None else ())


class Stage2Task:
    """Train the φ_L nets of ``spec`` against a benchmark's labels (see the module docstring).

    ``validate_fn(model) -> metrics`` scores the held-out split (rank 0, at each validation).
    """

    name = "stage2"
    #: a batch may lack one task's ground truth (e.g. images without landmarks): DDP must be told
    find_unused_parameters = True

    def __init__(self, cfg: FinetuneJobConfig, stage1: MultiTaskModel, spec: LabelNetSpec,
                 validate_fn: Callable[[nn.Module], dict[str, Any]] | None = None, extra_meta: dict | None = None):
        self.cfg, self.spec, self.validate_fn = cfg, spec, validate_fn
        self.stage1 = stage1.eval().requires_grad_(False)
        self.extra_meta = extra_meta or {}

    # ---- model ------------------------------------------------------------------------------
    def build_model(self) -> LabelFinetuneModel:
        model = LabelFinetuneModel(self.spec)
        model.set_stage1_depth(float(self.stage1.depth_shift), float(self.stage1.depth_scale))
        return model

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        return [{"name": "labelnet", "params": list(model.parameters()), "lr": self.cfg.optim.lr_heads}]

    def save_model(self, model: nn.Module, directory: Path) -> None:
        save_labelnet(model, directory, extra=self.extra_meta)

    def load_model(self, model: nn.Module, directory: Path) -> None:
        load_labelnet_weights(model, directory)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    # ---- steps ------------------------------------------------------------------------------
    def prepare(self, batch: dict[str, Any], *, train: bool, device: torch.device,
                generator: torch.Generator | None) -> dict[str, Any]:
        out = {k: batch[k].to(device, non_blocking=True) for k in _TENSORS if k in batch}
        img = out[Field.IMAGE]
        out[Field.IMAGE] = img.float() / 255.0 if img.dtype == torch.uint8 else img.float()
        if self.stage1.depth_shift.device != device:
            self.stage1.to(device)
        return out

    def on_train_start(self, model: nn.Module, batch: dict[str, Any], ctx: Any) -> None:
        pass

    def stage1_outputs(self, image: torch.Tensor) -> dict[str, Any]:
        """The frozen model's outputs: no graph is recorded, so nothing can flow back into it."""
        with torch.no_grad():
            return self.stage1(image)

    def losses(self, out: dict[str, torch.Tensor], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        w = self.cfg.loss
        terms: dict[str, torch.Tensor] = {}
        # zero-valued but attached to every output: a batch without any ground truth still back-propagates
        total = sum(o.float().sum() * 0.0 for o in out.values())
        if Field.SEGMENTATION in out and Field.SEGMENTATION in batch:
            target = batch[Field.SEGMENTATION]
            if bool((target != IGNORE_LABEL).any()):
                terms["parsing"] = F.cross_entropy(out[Field.SEGMENTATION], target, ignore_index=IGNORE_LABEL)
                total = total + w.parsing * terms["parsing"]
                if w.parsing_dice > 0:
                    terms["parsing_dice"] = soft_dice(out[Field.SEGMENTATION], target)
                    total = total + w.parsing * w.parsing_dice * terms["parsing_dice"]
        if Field.LANDMARKS_2D in out and Field.LANDMARKS_VISIBLE in batch:
            vis = batch[Field.LANDMARKS_VISIBLE]
            if bool(vis.any()):
                side = float(batch[Field.IMAGE].shape[-1])
                dist = (out[Field.LANDMARKS_2D] - batch[Field.LANDMARKS_2D]).norm(dim=-1) / side
                terms["landmarks"] = dist[vis].mean()
                total = total + w.landmarks * terms["landmarks"]
        if Field.DEPTH in out and Field.MASK in batch:
            mask = batch[Field.MASK]
            if bool(mask.any()):
                terms["depth"] = (out[Field.DEPTH] - batch[Field.DEPTH]).abs()[mask].mean()
                total = total + w.depth * terms["depth"]
        return {LOSS: total, **terms}

    def training_step(self, model: nn.Module, batch: dict[str, Any],
                      generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        return self.losses(model(self.stage1_outputs(batch[Field.IMAGE])), batch)

    def validate(self, model: nn.Module, ctx: Any) -> dict[str, Any]:
        return self.validate_fn(model) if self.validate_fn is not None else {}
