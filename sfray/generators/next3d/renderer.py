"""Rays, stratified + importance sampling and MipRayMarcher2 volume rendering (docs/next3d.md §2.12-2.14).

Randomness (stratified jitter, importance-sampling u) is drawn per sample from optional
``torch.Generator`` objects so that a sample's render depends only on its own seed. Marching runs in
float32 even under autocast: the transmittance product is too sensitive for 16-bit floats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from sfray.generators.next3d.layers import random_uniform
from sfray.generators.next3d.triplane import sample_from_planes

Rng = list[torch.Generator] | None


def ray_sampler(cam2world: torch.Tensor, intrinsics: torch.Tensor, resolution: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera rays through pixel centres, row-major: origins and unit directions (B, R², 3).

    cam2world (B, 4, 4) OpenCV axes; intrinsics (B, 3, 3) normalised by image size.
    """
    b = cam2world.shape[0]
    dev, dt = cam2world.device, cam2world.dtype
    idx = (torch.arange(resolution, device=dev, dtype=dt) + 0.5) / resolution
    y, x = torch.meshgrid(idx, idx, indexing="ij")  # y = row, x = column
    x, y = x.reshape(1, -1), y.reshape(1, -1)
    fx, fy = intrinsics[:, 0, 0, None], intrinsics[:, 1, 1, None]
    cx, cy, sk = intrinsics[:, 0, 2, None], intrinsics[:, 1, 2, None], intrinsics[:, 0, 1, None]
    x_lift = (x - cx + cy * sk / fy - sk * y / fy) / fx
    y_lift = (y - cy) / fy
    pts = torch.stack([x_lift, y_lift, torch.ones_like(x_lift), torch.ones_like(x_lift)], dim=-1)
    world = (pts @ cam2world.transpose(1, 2))[..., :3]
    origins = cam2world[:, None, :3, 3].expand(b, resolution * resolution, 3)
    dirs = F.normalize(world - origins, dim=-1)
    return origins.contiguous(), dirs


def sample_stratified(b: int, m: int, ray_start: float, ray_end: float, depth_resolution: int,
                      device: torch.device, rng: Rng = None, jitter: torch.Tensor | None = None) -> torch.Tensor:
    """(B, M, D, 1) depths: linspace(start, end, D) + U[0,1)·(end-start)/(D-1), independently per sample.

    ``jitter`` (B, M, D, 1): the U[0,1) draws, when drawn beforehand (:func:`draw_uniforms`)."""
    base = torch.linspace(ray_start, ray_end, depth_resolution, device=device).reshape(1, 1, -1, 1)
    delta = (ray_end - ray_start) / (depth_resolution - 1)
    if jitter is None:
        jitter = random_uniform((b, m, depth_resolution, 1), rng, device)
    return base + jitter * delta


def draw_uniforms(b: int, m: int, opts: dict[str, Any], rng: Rng, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All random numbers one render uses, in the order it would draw them: the stratified jitter
    (B, M, D, 1) and the importance-sampling u (B, M, N) (None without importance samples).

    Drawing them first keeps the render a pure function of tensors (CUDA graphs, torch.compile)
    while giving the same values as drawing during the render."""
    jitter = random_uniform((b, m, int(opts["depth_resolution"]), 1), rng, device)
    n_imp = int(opts.get("depth_resolution_importance", 0) or 0)
    u = random_uniform((b, m, n_imp), rng, device) if n_imp > 0 else None
    return jitter, u


def march(colors: torch.Tensor, densities: torch.Tensor, depths: torch.Tensor, clamp_mode: str = "softplus",
          white_back: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MipRayMarcher2 on sorted samples (B, M, S, C|1|1) -> feature (B, M, C), depth (B, M, 1), weights (B, M, S-1, 1).

    Midpoint quadrature: alpha_k = 1 - exp(-softplus(sigma_mid - 1)·delta_k), w_k = alpha_k·Π_{j<k}(1-alpha_j+1e-10).
    Depth is the weight-normalised mean (inf where no weight), clamped to the batch's sample range;
    features are mapped by 2x - 1.
    """
    colors, densities, depths = colors.float(), densities.float(), depths.float()
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
    dens_mid = (densities[:, :, :-1] + densities[:, :, 1:]) / 2
    depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    if clamp_mode != "softplus":
        raise ValueError(f"clamp_mode {clamp_mode!r} is not used by Next3D (softplus only)")
    dens_mid = F.softplus(dens_mid - 1)
    alpha = 1 - torch.exp(-dens_mid * deltas)
    shifted = torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], dim=-2)
    weights = alpha * torch.cumprod(shifted, dim=-2)[:, :, :-1]
    rgb = (weights * colors_mid).sum(dim=-2)
    total = weights.sum(dim=2)
    depth = (weights * depths_mid).sum(dim=-2) / total
    depth = torch.nan_to_num(depth, float("inf"))
    depth = torch.clamp(depth, torch.min(depths), torch.max(depths))
    if white_back:
        rgb = rgb + 1 - total
    return rgb * 2 - 1, depth, weights


def sample_pdf(bins: torch.Tensor, weights: torch.Tensor, n: int, rng: Rng, batch: int,
               eps: float = 1e-5, u: torch.Tensor | None = None) -> torch.Tensor:
    """Inverse-CDF samples (N_rays, n) of the piecewise-constant pdf ``weights`` over ``bins`` (N_rays, W+2).

    ``u`` (B, N_rays/B, n): the U[0,1) draws, when drawn beforehand."""
    n_rays, n_bins = weights.shape
    weights = weights + eps
    pdf = weights / weights.sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)], dim=-1)
    if u is None:
        u = random_uniform((batch, n_rays // batch, n), rng, weights.device)
    u = u.reshape(n_rays, n).contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below = (inds - 1).clamp(min=0)
    above = inds.clamp(max=n_bins)
    idx = torch.stack([below, above], dim=-1).reshape(n_rays, 2 * n)
    cdf_g = torch.gather(cdf, 1, idx).reshape(n_rays, n, 2)
    bins_g = torch.gather(bins, 1, idx).reshape(n_rays, n, 2)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom = torch.where(denom < eps, torch.ones_like(denom), denom)
    return bins_g[..., 0] + (u - cdf_g[..., 0]) / denom * (bins_g[..., 1] - bins_g[..., 0])


def sample_importance(depths: torch.Tensor, weights: torch.Tensor, n: int, rng: Rng = None,
                      u: torch.Tensor | None = None) -> torch.Tensor:
    """Fine depths (B, M, n, 1) from coarse depths (B, M, D, 1) and march weights (B, M, D-1, 1)."""
    b, m, d, _ = depths.shape
    z = depths.reshape(b * m, d)
    w = weights.reshape(b * m, 1, -1).float()
    w = F.max_pool1d(w, 2, 1, padding=1)
    w = F.avg_pool1d(w, 2, 1).squeeze(1) + 0.01
    mids = 0.5 * (z[:, :-1] + z[:, 1:])
    fine = sample_pdf(mids, w[:, 1:-1], n, rng, b, u=u)
    return fine.detach().reshape(b, m, n, 1)


def unify_samples(d1: torch.Tensor, c1: torch.Tensor, s1: torch.Tensor, d2: torch.Tensor, c2: torch.Tensor,
                  s2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate coarse and fine samples along the ray and sort them by depth."""
    d = torch.cat([d1, d2], dim=-2)
    c = torch.cat([c1, c2], dim=-2)
    s = torch.cat([s1, s2], dim=-2)
    _, order = torch.sort(d, dim=-2)
    return (torch.gather(d, -2, order), torch.gather(c, -2, order.expand(-1, -1, -1, c.shape[-1])),
            torch.gather(s, -2, order))


def render_planes(planes: torch.Tensor, decoder: Callable, plane_axes: torch.Tensor, origins: torch.Tensor,
                  dirs: torch.Tensor, opts: dict[str, Any], rng: Rng = None,
                  uniforms: tuple[torch.Tensor, torch.Tensor | None] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ImportanceRenderer: coarse pass, importance pass, final march.

    planes (B, 3, C, H, W); origins/dirs (B, M, 3). Returns features (B, M, C'), depth (B, M, 1)
    (distance along the unit ray) and accumulated opacity (B, M, 1). ``uniforms``: the random
    numbers from :func:`draw_uniforms` (else drawn here from ``rng``).
    """
    jitter, u = uniforms if uniforms is not None else (None, None)
    b, m, _ = origins.shape
    box_warp = float(opts.get("box_warp", 1.0))
    clamp_mode, white_back = opts.get("clamp_mode", "softplus"), bool(opts.get("white_back", False))
    if opts.get("disparity_space_sampling", False) or opts.get("ray_start") == "auto":
        raise ValueError("disparity-space / auto ray ranges are not used by Next3D")

    def run(depths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = depths.shape[2]
        pts = (origins.unsqueeze(-2) + depths * dirs.unsqueeze(-2)).reshape(b, -1, 3)
        out = decoder(sample_from_planes(plane_axes, planes, pts.to(planes.dtype), box_warp))
        sigma = out["sigma"]
        noise = float(opts.get("density_noise", 0) or 0)
        if noise > 0:
            sigma = sigma + torch.randn_like(sigma) * noise
        return out["rgb"].reshape(b, m, n, -1), sigma.reshape(b, m, n, 1)

    depths_c = sample_stratified(b, m, float(opts["ray_start"]), float(opts["ray_end"]),
                                 int(opts["depth_resolution"]), origins.device, rng, jitter)
    colors_c, dens_c = run(depths_c)
    n_imp = int(opts.get("depth_resolution_importance", 0) or 0)
    if n_imp > 0:
        _, _, weights = march(colors_c, dens_c, depths_c, clamp_mode, white_back)
        depths_f = sample_importance(depths_c, weights, n_imp, rng, u)
        colors_f, dens_f = run(depths_f)
        depths_a, colors_a, dens_a = unify_samples(depths_c, colors_c, dens_c, depths_f, colors_f, dens_f)
    else:
        depths_a, colors_a, dens_a = depths_c, colors_c, dens_c
    rgb, depth, weights = march(colors_a, dens_a, depths_a, clamp_mode, white_back)
    return rgb, depth, weights.sum(dim=2)


class ImportanceRenderer(torch.nn.Module):
    """Holds the tri-plane axis matrices (a plain tensor in the released pickle: a non-persistent buffer)."""

    def __init__(self, plane_axes: torch.Tensor):
        super().__init__()
        self.register_buffer("plane_axes", plane_axes.clone(), persistent=False)

    def forward(self, planes: torch.Tensor, decoder: Callable, origins: torch.Tensor, dirs: torch.Tensor,
                opts: dict[str, Any], rng: Rng = None,
                uniforms: tuple[torch.Tensor, torch.Tensor | None] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return render_planes(planes, decoder, self.plane_axes, origins, dirs, opts, rng, uniforms)
