"""Stage I's multi-task model: a UNet encoder, UNet segmentation and depth heads, a keypoint head.

``MultiTaskModel(spec)(image)`` takes images in [0, 1] (the model scales them to [-1, 1]) and
returns the shared features f_s (``FEATURES``), segmentation logits, metric depth, the keypoint
heatmaps of every stack and the soft-argmax landmarks in input pixels. Named sizes live in
:data:`MODEL_SIZES` (``model.size``); docs/training.md lists them and how ``paper`` and
``release`` differ. Depth is predicted as ``depth_shift + depth_scale * raw``; the two buffers
are set once from the training data (foreground mean and spread of z), so a freshly initialised
head starts at the right metric range and the weights file carries them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from sfray.conventions import NUM_LANDMARKS, NUM_SEG_CLASSES, Field
from sfray.models.hourglass import KeypointHead, soft_argmax
from sfray.models.unet import UNet
from sfray.registry import Registry

#: Output keys besides the Field names (segmentation logits, depth, landmarks_2d).
FEATURES = "features"  # (B, C_f, H, W) the encoder's f_s
HEATMAPS = "heatmaps"  # list of (B, K, H/4, W/4), one per hourglass stack
FEATURES_WARPED = "features_warped"  # f_s of the extra images given to forward (equivariance loss)


@dataclass(frozen=True)
class ModelSpec:
    """Everything that decides the architecture (saved next to the weights)."""

    name: str
    encoder_base: int = 64  # encoder UNet channels at full resolution
    encoder_depth: int = 4  # encoder UNet levels
    features: int = 64  # channels of f_s
    head_base: int = 64  # segmentation / depth UNet channels at full resolution
    head_depth: int = 4
    kp_channels: int = 256  # hourglass width
    kp_stacks: int = 2
    kp_depth: int = 4  # hourglass levels (at 1/4 resolution)
    kp_add_coord: bool = False  # CoordConv channels into the keypoint head
    kp_beta: float = 20.0  # soft-argmax inverse temperature
    num_classes: int = NUM_SEG_CLASSES
    num_landmarks: int = NUM_LANDMARKS

    @property
    def min_input_multiple(self) -> int:
        """Input sides must be multiples of this (the deepest pooling of any branch)."""
        return max(2**self.encoder_depth, 2**self.head_depth, KeypointHead.stride * 2**self.kp_depth)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


MODEL_SIZES: Registry[ModelSpec] = Registry("model.size", "model size")
MODEL_SIZES.add("tiny", ModelSpec("tiny", encoder_base=8, encoder_depth=3, features=16, head_base=8,
                                  head_depth=3, kp_channels=32, kp_stacks=2, kp_depth=3))
MODEL_SIZES.add("paper", ModelSpec("paper"))
MODEL_SIZES.add("release", ModelSpec("release", kp_add_coord=True))


class MultiTaskModel(nn.Module):
    """Encoder + heads; see the module docstring for inputs and outputs."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.encoder = UNet(3, spec.features, spec.encoder_base, spec.encoder_depth)
        self.seg_head = UNet(spec.features, spec.num_classes, spec.head_base, spec.head_depth)
        self.depth_head = UNet(spec.features, 1, spec.head_base, spec.head_depth)
        self.kp_head = KeypointHead(spec.features, spec.kp_channels, spec.num_landmarks, spec.kp_stacks,
                                    spec.kp_depth, spec.kp_add_coord)
        self.register_buffer("depth_shift", torch.zeros(()))
        self.register_buffer("depth_scale", torch.ones(()))

    def set_depth_normalisation(self, shift: float, scale: float) -> None:
        self.depth_shift.fill_(float(shift))
        self.depth_scale.fill_(max(float(scale), 1e-6))

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] -> features f_s (B, C_f, H, W)."""
        return self.encoder(image * 2.0 - 1.0)

    def heads(self, features: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        heatmaps = self.kp_head(features)
        raw_depth = self.depth_head(features)[:, 0]
        return {
            Field.SEGMENTATION: self.seg_head(features),
            Field.DEPTH: self.depth_shift + self.depth_scale * raw_depth.float(),
            HEATMAPS: heatmaps,
            Field.LANDMARKS_2D: soft_argmax(heatmaps[-1], self.spec.kp_beta, KeypointHead.stride),
        }

    def forward(self, image: torch.Tensor, extra: torch.Tensor | None = None,
                ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Predictions for ``image``; with ``extra`` (same shape) also its features, in one encoder pass."""
        if extra is None:
            features = self.encode(image)
            return {FEATURES: features, **self.heads(features)}
        both = self.encode(torch.cat([image, extra]))
        features, warped = both[: image.shape[0]], both[image.shape[0]:]
        return {FEATURES: features, FEATURES_WARPED: warped, **self.heads(features)}

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        enc = {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in enc]


def build_model(size: str | ModelSpec) -> MultiTaskModel:
    """A freshly initialised model of a registered size (or an explicit spec)."""
    spec = size if isinstance(size, ModelSpec) else MODEL_SIZES.get(size)
    return MultiTaskModel(spec)
