"""Next3D's TriPlaneGenerator as our own nn.Module (docs/next3d.md §1.2, §2).

State-dict names, shapes and order equal the released G_ema's at ``Next3DConfig.full()``
(``g_ema_params.txt``). The stages are separate methods so callers (annotator, shape extraction)
can reach intermediate tensors: :meth:`mapping` -> :meth:`texture_planes` -> :meth:`render`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sfray.conventions import ORTH_SCALE, ORTH_SHIFT
from sfray.generators.next3d.config import Next3DConfig
from sfray.generators.next3d.perf import tf32_scope
from sfray.generators.next3d.renderer import ImportanceRenderer, draw_uniforms, ray_sampler
from sfray.generators.next3d.stylegan2 import StyleGAN2Generator
from sfray.generators.next3d.styleunet import StyleUNetGenerator
from sfray.generators.next3d.superres import SuperresolutionHybrid8XDC
from sfray.generators.next3d.texture_raster import (
    DEFAULT_RASTER_COMPAT,
    RASTER_COMPAT,
    TextureViews,
    mouth_box,
    paste_mouth,
    render_texture_views,
)
from sfray.generators.next3d.triplane import OSGDecoder, next3d_plane_axes, sample_from_planes

Rng = list[torch.Generator] | None


def _numerics(method: Any) -> Any:
    """Run a public entry point with the model's TF32 setting (``perf.tf32_scope``): off unless the
    precision mode is ``tf32``, so fp32 means fp32 on Ampere+ GPUs too; restored afterwards."""
    @functools.wraps(method)
    def run(self: Next3DTriPlane, *args: Any, **kwargs: Any) -> Any:
        with tf32_scope(self.allow_tf32):
            return method(self, *args, **kwargs)
    return run


@dataclass
class Topology:
    """Mesh topology and UVs the network rasterizes with (checkpoint buffers or a head's assets)."""

    faces: np.ndarray  # (F, 3) int64
    uv_coords: np.ndarray  # (T, 2) OBJ (s, t) in [0, 1], t = 0 at the bottom of the UV image
    uv_faces: np.ndarray  # (F, 3) int64 into uv_coords
    uv_face_mask: np.ndarray | None = None  # (U, U) float in [0, 1], row 0 = top of the UV image
    dense_faces: np.ndarray | None = None  # (Fd, 3) int64, unused by the forward pass


def uv_to_grid(uv_coords: torch.Tensor) -> torch.Tensor:
    """OBJ (s, t) (T, 2) -> (T, 3) = (2s-1, 1-2t, 1): grid-sample coordinates of the UV image plus a one."""
    s, t = uv_coords[:, 0], uv_coords[:, 1]
    return torch.stack([2 * s - 1, 1 - 2 * t, torch.ones_like(s)], dim=-1)


class Next3DTriPlane(nn.Module):
    """z, c_cond, c, v -> {'image', 'image_raw', 'image_depth', 'image_weight'} (docs/next3d.md §2.16)."""

    def __init__(self, cfg: Next3DConfig, topology: Topology | None = None):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        # texture rasterization mode and TF32 permission (docs/next3d.md); plain attributes, not state
        self.raster_compat = DEFAULT_RASTER_COMPAT
        self.allow_tf32 = False
        self.rendering_kwargs: dict[str, Any] = dict(cfg.rendering)
        self.neural_rendering_resolution = cfg.neural_rendering_resolution
        self._register_topology(cfg, topology)
        common = dict(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, img_resolution=cfg.plane_resolution,
                      channel_base=cfg.channel_base, channel_max=cfg.channel_max, mapping_layers=cfg.mapping_layers)
        pc = cfg.plane_channels
        self.renderer = ImportanceRenderer(next3d_plane_axes())
        self.texture_backbone = StyleGAN2Generator(img_channels=pc, **common)
        self.mouth_backbone = StyleUNetGenerator(img_channels=pc, in_size=cfg.mouth_in_size,
                                                 final_size=cfg.mouth_final_size, cond_channels=pc, **common)
        self.backbone = StyleGAN2Generator(img_channels=3 * pc, mapping_num_ws=cfg.num_ws, **common)
        self.superresolution = SuperresolutionHybrid8XDC(
            cfg.decoder_features, cfg.img_resolution, cfg.w_dim, tuple(cfg.sr_channels), cfg.sr_input_resolution,
            cfg.img_channels, cfg.sr_conv_clamp, bool(cfg.rendering.get("sr_antialias", True)))
        self.decoder = OSGDecoder(pc, cfg.decoder_hidden, cfg.decoder_features)
        self.neural_blending = StyleUNetGenerator(img_channels=pc, in_size=cfg.plane_resolution,
                                                  final_size=cfg.blend_final_size, cond_channels=pc, **common)

    # ------------------------------------------------------------------ buffers
    def _register_topology(self, cfg: Next3DConfig, topo: Topology | None) -> None:
        f, t, u = cfg.num_faces, cfg.num_uv, cfg.uv_resolution
        if topo is None:  # shapes only; a checkpoint fills them in
            faces = torch.zeros(f, 3, dtype=torch.int64)
            uvfaces = torch.zeros(f, 3, dtype=torch.int64)
            raw = torch.zeros(t, 2)
            dense = torch.zeros(cfg.num_dense_faces, 3, dtype=torch.int64)
            mask = torch.ones(u, u)
        else:
            faces = torch.as_tensor(np.asarray(topo.faces), dtype=torch.int64)
            uvfaces = torch.as_tensor(np.asarray(topo.uv_faces), dtype=torch.int64)
            raw = torch.as_tensor(np.asarray(topo.uv_coords), dtype=torch.float32)
            dense = (torch.zeros(cfg.num_dense_faces, 3, dtype=torch.int64) if topo.dense_faces is None
                     else torch.as_tensor(np.asarray(topo.dense_faces), dtype=torch.int64))
            mask = (torch.ones(u, u) if topo.uv_face_mask is None
                    else torch.as_tensor(np.asarray(topo.uv_face_mask), dtype=torch.float32))
            if faces.shape != (f, 3) or raw.shape != (t, 2) or mask.shape != (u, u):
                raise ValueError(f"topology {tuple(faces.shape)}/{tuple(raw.shape)}/{tuple(mask.shape)} does not "
                                 f"match the config ({f} faces, {t} UVs, {u}x{u} mask)")
        uvcoords = uv_to_grid(raw)
        self.register_buffer("dense_faces", dense[None])
        self.register_buffer("faces", faces[None])
        self.register_buffer("raw_uvcoords", raw[None])
        self.register_buffer("uvcoords", uvcoords[None])
        self.register_buffer("uvfaces", uvfaces[None])
        self.register_buffer("face_uvcoords", uvcoords[uvfaces][None])
        # plain tensor attributes in the released pickle -> non-persistent buffers here
        self.register_buffer("uv_face_mask", mask[None, None], persistent=False)
        self.register_buffer("orth_scale", torch.full((1, 1), float(ORTH_SCALE)), persistent=False)
        self.register_buffer("orth_shift", torch.tensor([ORTH_SHIFT], dtype=torch.float32), persistent=False)

    # ------------------------------------------------------------------ stages
    @_numerics
    def mapping(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        """z (B, Z), conditioning label c (B, 25) -> ws (B, num_ws, W) from ``backbone.mapping``."""
        opts = self.rendering_kwargs
        c = c[:, : self.cfg.c_dim] * float(opts.get("c_scale", 1.0))
        if opts.get("c_gen_conditioning_zero", False):
            c = torch.zeros_like(c)
        return self.backbone.mapping(z, c, truncation_psi, truncation_cutoff)

    def set_raster_compat(self, mode: str) -> Next3DTriPlane:
        """Select the texture rasterization mode: ``pytorch3d`` (released behaviour) or ``exact``."""
        RASTER_COMPAT.check(mode)
        self.raster_compat = mode
        return self

    def rasterize_views(self, textures: torch.Tensor, v: torch.Tensor) -> TextureViews:
        """Neural texture (B, C, T, T) and v (B, V+68, 3) -> the four rasterized texture views."""
        nv = self.cfg.num_vertices
        with torch.autocast(device_type=textures.device.type, enabled=False):
            return render_texture_views(
                textures.float(), self.uv_face_mask, v[:, :nv].float(), v[:, nv:].float(), self.faces[0],
                self.face_uvcoords[0], self.orth_scale, self.orth_shift[0], self.cfg.plane_resolution,
                fill_mouth=True, compat=self.raster_compat)

    # ------------------------------------------------------------------ speed options (perf.py)
    def enable_cuda_graphs(self, enabled: bool = True) -> Next3DTriPlane:
        """Replay the synthesis networks and renderer + SR as CUDA graphs (one capture per batch size).

        Needs CUDA tensors and ``noise_mode`` const/none (random noise is drawn inside the networks);
        other calls run eagerly."""
        from sfray.generators.next3d.perf import CudaGraphs

        self._graphs = CudaGraphs() if enabled else None
        return self

    def _run(self, name: str, fn: Any, *args: Any, noise_mode: str = "const") -> Any:
        """fn(*args), replayed from a CUDA graph when graphs are enabled and the call allows it."""
        graphs = getattr(self, "_graphs", None)
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if graphs is not None and noise_mode != "random" and tensors and all(t.is_cuda for t in tensors):
            return graphs(name, fn, *args)
        return fn(*args)

    def _synthesis(self, name: str, net: Any, *args: torch.Tensor, noise_mode: str, rng: Rng) -> torch.Tensor:
        if noise_mode == "random":  # per-sample noise draws: never graphed
            return net(*args, noise_mode=noise_mode, rng=rng)
        return self._run(name, lambda *a: net(*a, noise_mode=noise_mode), *args, noise_mode=noise_mode)

    @_numerics
    def texture_planes(self, ws: torch.Tensor, v: torch.Tensor, noise_mode: str = "const", rng: Rng = None
                       ) -> dict[str, Any]:
        """docs/next3d.md §2.3-2.9: ws (B, num_ws, W), v (B, V+68, 3) -> tri-planes (B, 3, C, P, P) and intermediates."""
        n = self.cfg.synthesis_num_ws
        eg3d_ws, tex_ws = ws[:, :n], ws[:, n:]
        textures = self._synthesis("texture", self.texture_backbone.synthesis, tex_ws, noise_mode=noise_mode, rng=rng)
        views = self.rasterize_views(textures, v)
        feats, alpha = views.features.to(textures.dtype), views.alpha.to(textures.dtype)
        size = self.cfg.plane_resolution
        boxes = [mouth_box(lm, size) for lm in views.landmarks_uv.detach().cpu().numpy()]

        def mouth_net(crops: torch.Tensor, mws: torch.Tensor, noise_mode: str, rng: Rng) -> torch.Tensor:
            return self._synthesis("mouth", self.mouth_backbone.synthesis, crops, mws, noise_mode=noise_mode, rng=rng)

        front = paste_mouth(feats[:, 0], boxes, mouth_net, eg3d_ws, self.cfg.mouth_in_size, noise_mode, rng)
        front = self._synthesis("blend", self.neural_blending.synthesis, front, eg3d_ws, noise_mode=noise_mode,
                                rng=rng)
        side = feats[:, 1] + feats[:, 2]
        side_alpha = (alpha[:, 1] != 0).to(alpha.dtype)  # released: alpha_R OR alpha_R (alpha_L unused)
        b, c = front.shape[:2]
        tex = torch.stack([front, side.to(front.dtype), feats[:, 3].to(front.dtype)], dim=1)
        a = torch.stack([alpha[:, 0], side_alpha, alpha[:, 3]], dim=1).to(front.dtype)
        static = self._synthesis("static", self.backbone.synthesis, eg3d_ws, noise_mode=noise_mode, rng=rng)
        static = static.reshape(b, 3, c, size, size)
        planes = tex * a + static.to(tex.dtype) * (1 - a)
        return {"planes": planes, "static": static, "textures": textures, "views": views, "mouth_boxes": boxes,
                "eg3d_ws": eg3d_ws}

    @_numerics
    def render(self, planes: torch.Tensor, eg3d_ws: torch.Tensor, c: torch.Tensor, noise_mode: str = "const",
               rng: Rng = None, neural_rendering_resolution: int | None = None) -> dict[str, torch.Tensor]:
        """docs/next3d.md §2.12-2.16: planes + camera label c (B, 25) -> images, depth and opacity."""
        res = int(neural_rendering_resolution or self.neural_rendering_resolution)
        cam2world = c[:, :16].reshape(-1, 4, 4).float()
        intrinsics = c[:, 16:25].reshape(-1, 3, 3).float()
        origins, dirs = ray_sampler(cam2world, intrinsics, res)
        sr_noise = self.rendering_kwargs.get("superresolution_noise_mode", "none")
        if sr_noise == "random":  # the SR draws per-sample noise: one eager pass with the generators
            feats, depth, weight = self.renderer(planes, self.decoder, origins, dirs, self.rendering_kwargs, rng)
            return self._assemble(feats, depth, weight, eg3d_ws, res, sr_noise, rng)
        b, m = origins.shape[:2]
        jitter, u = draw_uniforms(b, m, self.rendering_kwargs, rng, origins.device)
        args = (planes, eg3d_ws, origins, dirs, jitter) + (() if u is None else (u,))
        return self._run("render", self._render_core, *args)

    @_numerics
    def render_core(self, planes: torch.Tensor, eg3d_ws: torch.Tensor, origins: torch.Tensor, dirs: torch.Tensor,
                    jitter: torch.Tensor, u: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Volume rendering + super-resolution as a pure function of tensors (random numbers pre-drawn
        with ``renderer.draw_uniforms``; rays (B, R², 3)): the piece ``torch.compile`` and CUDA graphs take."""
        return self._render_core(planes, eg3d_ws, origins, dirs, jitter, u)

    def _render_core(self, planes: torch.Tensor, eg3d_ws: torch.Tensor, origins: torch.Tensor, dirs: torch.Tensor,
                     jitter: torch.Tensor, u: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        res = math.isqrt(origins.shape[1])
        feats, depth, weight = self.renderer(planes, self.decoder, origins, dirs, self.rendering_kwargs,
                                             uniforms=(jitter, u))
        sr_noise = self.rendering_kwargs.get("superresolution_noise_mode", "none")
        return self._assemble(feats, depth, weight, eg3d_ws, res, sr_noise, None)

    def _assemble(self, feats: torch.Tensor, depth: torch.Tensor, weight: torch.Tensor, eg3d_ws: torch.Tensor,
                  res: int, sr_noise: str, rng: Rng) -> dict[str, torch.Tensor]:
        b = feats.shape[0]
        feature_image = feats.permute(0, 2, 1).reshape(b, -1, res, res).contiguous()
        depth_image = depth.permute(0, 2, 1).reshape(b, 1, res, res)
        weight_image = weight.permute(0, 2, 1).reshape(b, 1, res, res)
        rgb = feature_image[:, :3]
        image = self.superresolution(rgb, feature_image, eg3d_ws, noise_mode=sr_noise, rng=rng)
        return {"image": image, "image_raw": rgb, "image_depth": depth_image, "image_weight": weight_image}

    @_numerics
    def synthesis(self, ws: torch.Tensor, c: torch.Tensor, v: torch.Tensor, noise_mode: str = "const",
                  rng: Rng = None, neural_rendering_resolution: int | None = None) -> dict[str, torch.Tensor]:
        tp = self.texture_planes(ws, v, noise_mode, rng)
        return self.render(tp["planes"], tp["eg3d_ws"], c, noise_mode, rng, neural_rendering_resolution)

    @_numerics
    def forward(self, z: torch.Tensor, c_cond: torch.Tensor, c: torch.Tensor, v: torch.Tensor,
                truncation_psi: float = 1.0, truncation_cutoff: int | None = None, noise_mode: str = "const",
                rng: Rng = None, neural_rendering_resolution: int | None = None) -> dict[str, torch.Tensor]:
        """z (B, Z), c_cond/c (B, 25), v (B, V+68, 3) head space -> docs/next3d.md §2.16 outputs."""
        ws = self.mapping(z, c_cond, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, c, v, noise_mode, rng, neural_rendering_resolution)

    @_numerics
    def sample_mixed(self, coords: torch.Tensor, ws: torch.Tensor, v: torch.Tensor, noise_mode: str = "const",
                     rng: Rng = None) -> dict[str, torch.Tensor]:
        """Decoder output {'rgb': (B, M, C), 'sigma': (B, M, 1)} at world points coords (B, M, 3)."""
        planes = self.texture_planes(ws, v, noise_mode, rng)["planes"]
        box_warp = float(self.rendering_kwargs.get("box_warp", 1.0))
        return self.decoder(sample_from_planes(self.renderer.plane_axes, planes, coords, box_warp))
