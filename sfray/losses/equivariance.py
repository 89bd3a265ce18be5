"""Self-supervised equivariance: features of a warped image should be the warped features.

For a random affine eps per image (rotation, scale about the centre, translation; ``ssl.*``),
the loss compares ``E(eps(x))`` with ``eps(E(x))``: :func:`equivariance_inputs` draws eps and
warps the images, the model encodes them beside the originals, :func:`equivariance_loss` warps the
original features with the same matrix (f_s has the image's resolution) and compares. With
``ssl.mask_borders`` only pixels whose source lies inside the image count: the zero padding of
the warped image has no counterpart in the warped features. ``reduction=mean`` averages over the
valid elements of each image; ``reduction=sum`` sums them (the authors' release, whose magnitude
then dominates the other terms). Either way images are averaged over the batch.
"""

from __future__ import annotations

import torch

from sfray.config.train import SslSection
from sfray.geometry.warp import inside_mask, similarity_about, warp


def random_affine(batch: int, hw: tuple[int, int], cfg: SslSection, generator: torch.Generator | None = None,
                  device=None) -> torch.Tensor:
    """(B, 3, 3) random similarities about the image centre, in pixel coordinates."""
    h, w = hw

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(batch, generator=generator)

    angle = uniform(-cfg.rotation_deg, cfg.rotation_deg)
    scale = uniform(*cfg.scale_range)
    shift = torch.stack([uniform(-cfg.translation, cfg.translation) * w,
                         uniform(-cfg.translation, cfg.translation) * h], dim=-1)
    center = torch.tensor([[w / 2.0, h / 2.0]]).expand(batch, 2)
    return similarity_about(center, angle, scale, shift).to(device)


def equivariance_inputs(image: torch.Tensor, cfg: SslSection,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(warped images, the (B, 3, 3) matrices eps) for images (B, 3, H, W)."""
    b, _, h, w = image.shape
    m = random_affine(b, (h, w), cfg, generator, image.device)
    return warp(image, m, (h, w)), m


def equivariance_loss(warped_features: torch.Tensor, features: torch.Tensor, m: torch.Tensor,
                      cfg: SslSection) -> torch.Tensor:
    """``|| E(eps(x)) - eps(E(x)) ||`` from both feature maps (B, C, H, W) and eps (B, 3, 3)."""
    b, _, h, w = features.shape
    source = features.detach() if cfg.detach_target else features
    target = warp(source.float(), m, (h, w))
    diff = warped_features.float() - target
    err = diff.abs() if cfg.metric == "l1" else diff * diff
    if cfg.mask_borders:
        valid = inside_mask((h, w), m, (h, w)).unsqueeze(1).expand_as(err).float()
    else:
        valid = torch.ones_like(err)
    num = (err * valid).reshape(b, -1).sum(1)
    if cfg.reduction == "sum":
        return num.mean()
    den = valid.reshape(b, -1).sum(1).clamp_min(1.0)
    return (num / den).mean()
