"""Stage II label-finetuning nets φ_L: small conv nets from a frozen Stage I model's outputs to a
benchmark's labels (docs/training.md, Stage II).

Per task, one :class:`LabelNet` (a few 3x3 conv + GroupNorm + ReLU layers and a 1x1 output):

* parsing: Stage I's 20 synthetic class probabilities -> the benchmark's C class scores. With a
  class prior (``seg_prior``, the direct mapping's synthetic -> benchmark table) the net's output
  is added to the log of the direct mapping's probabilities and its last layer starts at zero, so
  finetuning starts from the direct mapping and learns a correction: on a few hundred images,
  nets trained from scratch first learn the large classes and lose the small ones;
* landmarks: Stage I's 68 keypoint heatmaps (1/4 resolution) -> K heatmaps of the benchmark's
  layout (68 for 300W, 106 for LaPa), decoded by soft-argmax into input pixels;
* depth: Stage I's depth (normalised by its own shift and scale) -> the benchmark's depth units.

With ``use_features`` each net also sees the shared features f_s (average-pooled to 1/4 for
landmarks): the paper's "SB+LF w/ f_s" variant. A count of 0 leaves that task's net out.
:class:`LabelFinetuneModel` bundles the nets and is saved like Stage I models (safetensors +
JSON spec), so a finetuned model loads by path alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sfray.conventions import Field
from sfray.errors import AssetError
from sfray.models.hourglass import KeypointHead, soft_argmax
from sfray.models.io import load_model_weights, read_model_json, write_model_files
from sfray.models.multitask import FEATURES, HEATMAPS
from sfray.models.unet import group_norm

LABELNET_WEIGHTS = "labelnet.safetensors"
LABELNET_JSON = "labelnet.json"
LABELNET_FORMAT = "sfray-labelnet"


@dataclass(frozen=True)
class LabelNetSpec:
    """Everything that decides the φ_L architecture (saved next to the weights)."""

    num_classes: int = 0  # benchmark classes (0: no parsing net)
    num_landmarks: int = 0  # benchmark landmark count (0: no landmark net)
    depth: bool = False  # a depth net
    use_features: bool = False  # feed f_s beside Stage I's predictions
    feature_channels: int = 64  # channels of Stage I's f_s
    stage1_classes: int = 20  # Stage I's segmentation classes
    stage1_landmarks: int = 68  # Stage I's keypoint heatmaps
    hidden: int = 32  # channels of the hidden conv layers
    layers: int = 3  # conv layers per net (the last is the 1x1 output)
    beta: float = 20.0  # soft-argmax inverse temperature of the landmark net
    # parsing input and prior; the defaults are the format's first meaning (models saved before
    # these keys existed read raw scores and have no prior)
    seg_probabilities: bool = False  # feed Stage I's class probabilities (softmax) instead of raw scores
    seg_prior: tuple[int, ...] = ()  # synthetic class -> benchmark class (empty: no prior)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seg_prior", tuple(int(c) for c in self.seg_prior))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Floor of the prior's probabilities before the log: a class the direct mapping never predicts
#: (e.g. hair) starts at log(1e-3) rather than -inf, so the net can still learn it.
PRIOR_FLOOR = 1e-3


def merge_class_probabilities(probs: torch.Tensor, table: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, S, H, W) source-class probabilities -> (B, num_classes, H, W): each target class sums the
    probabilities of the source classes ``table`` sends to it (the direct mapping)."""
    out = probs.new_zeros((probs.shape[0], num_classes) + tuple(probs.shape[2:]))
    return out.index_add_(1, table.to(probs.device), probs)


class LabelNet(nn.Sequential):
    """``layers - 1`` x (3x3 conv, GroupNorm, ReLU), then a 1x1 conv to ``cout`` channels."""

    def __init__(self, cin: int, cout: int, hidden: int, layers: int):
        mods: list[nn.Module] = []
        c = cin
        for _ in range(max(layers - 1, 0)):
            mods += [nn.Conv2d(c, hidden, 3, padding=1, bias=False), group_norm(hidden), nn.ReLU(inplace=True)]
            c = hidden
        mods.append(nn.Conv2d(c, cout, 1))
        super().__init__(*mods)


class LabelFinetuneModel(nn.Module):
    """The φ_L nets of one Stage II run: ``forward(stage1_outputs) -> benchmark predictions``."""

    def __init__(self, spec: LabelNetSpec):
        super().__init__()
        self.spec = spec
        f = spec.feature_channels if spec.use_features else 0
        self.seg = LabelNet(spec.stage1_classes + f, spec.num_classes, spec.hidden, spec.layers) \
            if spec.num_classes else None
        if self.seg is not None and spec.seg_prior:
            if len(spec.seg_prior) != spec.stage1_classes or max(spec.seg_prior) >= spec.num_classes:
                raise ValueError(f"seg_prior must send each of {spec.stage1_classes} synthetic classes to one "
                                 f"of {spec.num_classes}, got {list(spec.seg_prior)}")
            nn.init.zeros_(self.seg[-1].weight)
            nn.init.zeros_(self.seg[-1].bias)
        self.register_buffer("seg_prior_table", torch.tensor(spec.seg_prior, dtype=torch.int64), persistent=False)
        self.landmarks = LabelNet(spec.stage1_landmarks + f, spec.num_landmarks, spec.hidden, spec.layers) \
            if spec.num_landmarks else None
        self.depth = LabelNet(1 + f, 1, spec.hidden, spec.layers) if spec.depth else None
        # Stage I's depth normalisation, copied at build time (its depth enters the net unit-free)
        self.register_buffer("stage1_depth_shift", torch.zeros(()))
        self.register_buffer("stage1_depth_scale", torch.ones(()))

    def set_stage1_depth(self, shift: float, scale: float) -> None:
        self.stage1_depth_shift.fill_(float(shift))
        self.stage1_depth_scale.fill_(max(float(scale), 1e-6))

    def _with_features(self, x: torch.Tensor, s1: dict[str, Any]) -> torch.Tensor:
        if not self.spec.use_features:
            return x
        feats = s1[FEATURES].float()
        if feats.shape[-2:] != x.shape[-2:]:
            feats = F.adaptive_avg_pool2d(feats, x.shape[-2:])
        return torch.cat([x, feats], dim=1)

    def forward(self, s1: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Stage I outputs (``sfray.models.multitask``) -> ``segmentation`` (B, C, H, W) logits,
        ``landmarks_2d`` (B, K, 2) input pixels, ``depth`` (B, H, W), for the nets present."""
        out: dict[str, torch.Tensor] = {}
        if self.seg is not None:
            scores = s1[Field.SEGMENTATION].float()
            probs = scores.softmax(dim=1) if self.spec.seg_probabilities or self.spec.seg_prior else None
            logits = self.seg(self._with_features(probs if self.spec.seg_probabilities else scores, s1))
            if self.spec.seg_prior:
                prior = merge_class_probabilities(probs, self.seg_prior_table, self.spec.num_classes)
                logits = logits + prior.clamp_min(PRIOR_FLOOR).log()
            out[Field.SEGMENTATION] = logits
        if self.landmarks is not None:
            heat = self.landmarks(self._with_features(s1[HEATMAPS][-1].float(), s1))
            out[Field.LANDMARKS_2D] = soft_argmax(heat, self.spec.beta, KeypointHead.stride)
        if self.depth is not None:
            d = (s1[Field.DEPTH].float() - self.stage1_depth_shift) / self.stage1_depth_scale
            out[Field.DEPTH] = self.depth(self._with_features(d[:, None], s1))[:, 0]
        return out


def save_labelnet(model: LabelFinetuneModel, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Weights (safetensors) and spec (JSON) into ``directory``, each file atomically."""
    meta = {"format": LABELNET_FORMAT, "version": 1, "spec": model.spec.to_dict(), **(extra or {})}
    return write_model_files(model, directory, LABELNET_WEIGHTS, LABELNET_JSON, meta)


def read_labelnet_meta(directory: str | Path) -> dict[str, Any]:
    return read_model_json(directory, LABELNET_WEIGHTS, LABELNET_JSON, LABELNET_FORMAT, "a Stage II model directory",
                           "pass a `sfray finetune` output_dir or its model/")


def load_labelnet_weights(model: LabelFinetuneModel, directory: str | Path) -> None:
    load_model_weights(model, Path(directory) / LABELNET_WEIGHTS, "the Stage II spec")


def load_labelnet(directory: str | Path, device: torch.device | str = "cpu") -> LabelFinetuneModel:
    """Rebuild a finetuned φ_L model from its directory, in eval mode."""
    meta = read_labelnet_meta(directory)
    try:
        spec = LabelNetSpec(**meta["spec"])
    except (KeyError, TypeError) as exc:
        raise AssetError(f"{Path(directory) / LABELNET_JSON}: spec unreadable ({exc})") from exc
    model = LabelFinetuneModel(spec)
    load_labelnet_weights(model, directory)
    return model.to(device).eval()
