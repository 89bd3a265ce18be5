"""Architecture configuration of our Next3D implementation: the released size and a tiny CPU size.

Everything the released constructor fixes internally (4 sub-generators at 256², 32 texture channels,
mouth crop 64², decoder 64 hidden, SR 128 -> 512) is a field here, so one code path builds both the
full network (parameter names/shapes equal to ``g_ema_params.txt``) and a scaled-down network that
runs the same forward pass in a fraction of a second on a CPU (docs/next3d.md §1.3, §2, §5.5).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from sfray.conventions import CAMERA_LABEL_DIM
from sfray.errors import ConfigError


def default_rendering_kwargs() -> dict[str, Any]:
    """docs/next3d.md §1.4 (the inference-relevant entries; a checkpoint's own dict replaces this)."""
    return {
        "image_resolution": 512,
        "depth_resolution": 48,
        "depth_resolution_importance": 48,
        "ray_start": 2.25,
        "ray_end": 3.3,
        "box_warp": 1.0,
        "avg_camera_radius": 2.7,
        "avg_camera_pivot": [0.0, 0.0, 0.2],
        "disparity_space_sampling": False,
        "clamp_mode": "softplus",
        "white_back": False,
        "density_noise": 0.0,
        "superresolution_module": "training_avatar_texture.superresolution.SuperresolutionHybrid8XDC",
        "superresolution_noise_mode": "none",
        "sr_antialias": True,
        "c_gen_conditioning_zero": False,
        "c_scale": 1.0,
    }


@dataclass
class Next3DConfig:
    """Sizes of every sub-network. ``full()`` is the released FFHQ-512 generator."""

    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = CAMERA_LABEL_DIM
    mapping_layers: int = 2
    channel_base: int = 32768
    channel_max: int = 512
    plane_resolution: int = 256  # texture, static tri-plane, blending net and rasterized views
    plane_channels: int = 32  # per tri-plane (static backbone outputs 3x this)
    mouth_in_size: int = 64  # mouth crop is resized to this before the mouth StyleUNet
    mouth_encoder_blocks: int = 4  # final size = mouth_in_size / 2**blocks
    blend_encoder_blocks: int = 3  # neural-blending StyleUNet, input = plane_resolution
    decoder_hidden: int = 64
    decoder_features: int = 32  # decoder output channels besides sigma (= SR input channels)
    sr_channels: tuple[int, int] = (256, 128)
    sr_input_resolution: int = 128
    sr_conv_clamp: float | None = 256.0
    img_resolution: int = 512
    img_channels: int = 3
    neural_rendering_resolution: int = 64
    uv_resolution: int = 256  # size of the UV face/eye mask
    num_vertices: int = 5023
    num_faces: int = 9976
    num_uv: int = 5118
    num_dense_faces: int = 122990
    num_landmarks: int = 68
    rendering: dict[str, Any] = field(default_factory=default_rendering_kwargs)

    # ---------------------------------------------------------------- presets
    @staticmethod
    def full() -> Next3DConfig:
        """The released ``next3d_ffhq_512.pkl`` architecture (docs/next3d.md §1.3)."""
        return Next3DConfig()

    @staticmethod
    def small(num_vertices: int = 5023, num_faces: int = 9976, num_uv: int = 5118) -> Next3DConfig:
        """A scaled-down network with every stage of the full one (CPU tests, quickstart).

        Plane 64² keeps the released ratios: mouth crop = plane/4, two encoder blocks in both
        StyleUNets so fused and plain decoder blocks both run, SR 16 -> 32 -> 64.
        """
        rendering = default_rendering_kwargs()
        rendering.update(image_resolution=64, depth_resolution=8, depth_resolution_importance=8)
        return Next3DConfig(
            z_dim=32, w_dim=32, mapping_layers=2, channel_base=512, channel_max=32,
            plane_resolution=64, plane_channels=8, mouth_in_size=16, mouth_encoder_blocks=2,
            blend_encoder_blocks=2, decoder_hidden=16, decoder_features=8, sr_channels=(16, 8),
            sr_input_resolution=16, img_resolution=64, neural_rendering_resolution=8,
            uv_resolution=64, num_vertices=num_vertices, num_faces=num_faces, num_uv=num_uv,
            num_dense_faces=0, rendering=rendering,
        )

    # ---------------------------------------------------------------- derived sizes
    def channels(self, res: int) -> int:
        """Feature channels of a 256²-family synthesis network at resolution ``res``."""
        return min(self.channel_base // res, self.channel_max)

    @property
    def synthesis_num_ws(self) -> int:
        """ws per synthesis network: 2 per resolution 4..plane_resolution (14 at 256)."""
        return 2 * int(math.log2(self.plane_resolution)) - 2

    @property
    def num_ws(self) -> int:
        """Broadcast of the one used mapping: static/mouth/blend/SR half + texture half (28)."""
        return 2 * self.synthesis_num_ws

    @property
    def mouth_final_size(self) -> int:
        return self.mouth_in_size >> self.mouth_encoder_blocks

    @property
    def blend_final_size(self) -> int:
        return self.plane_resolution >> self.blend_encoder_blocks

    def validate(self) -> None:
        """Reject sizes the architecture cannot build (power-of-two resolutions etc.)."""
        def pow2(name: str, v: int, low: int) -> None:
            if v < low or v & (v - 1):
                raise ConfigError(f"next3d config: {name}={v} must be a power of two >= {low}")

        pow2("plane_resolution", self.plane_resolution, 8)
        pow2("mouth_in_size", self.mouth_in_size, 8)
        pow2("img_resolution", self.img_resolution, 16)
        pow2("sr_input_resolution", self.sr_input_resolution, 4)
        if self.sr_input_resolution * 4 != self.img_resolution:
            raise ConfigError("next3d config: the 8XDC super-resolution needs img_resolution = 4 * sr_input_resolution")
        if self.mouth_final_size < 4 or self.blend_final_size < 4:
            raise ConfigError("next3d config: too many StyleUNet encoder blocks for the input size (final size < 4)")
        if self.mouth_in_size > self.plane_resolution:
            raise ConfigError("next3d config: mouth_in_size must not exceed plane_resolution")
        if self.decoder_features < 3:
            raise ConfigError("next3d config: decoder_features must be >= 3 (the first 3 are RGB)")

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sr_channels"] = list(self.sr_channels)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Next3DConfig:
        known = {f.name for f in fields(Next3DConfig)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"next3d config: unknown keys {unknown}")
        cfg = Next3DConfig(**{k: v for k, v in d.items() if k != "rendering"})
        cfg = replace(cfg, sr_channels=tuple(cfg.sr_channels),
                      rendering={**default_rendering_kwargs(), **d.get("rendering", {})})
        cfg.validate()
        return cfg

    def is_released_architecture(self) -> bool:
        """True when every size equals the released generator's (rendering kwargs not compared)."""
        a, b = self.to_dict(), Next3DConfig.full().to_dict()
        skip = {"rendering", "neural_rendering_resolution"}
        return all(a[k] == b[k] for k in a if k not in skip)
