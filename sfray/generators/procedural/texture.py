"""A per-sample UV albedo texture painted from the head's region label map, plus eye colours.

Each region gets a colour derived from one random skin tone (lips redder, brows and scalp hair
coloured, ears and nose a little flushed, eyelids a little darker), region borders are softened
by a small blur (a lip does not end in a hard line), and low-frequency blotches plus fine grain
break up the flatness. Irises are not in the label map: they are painted per pixel from each
eyeball vertex's rest-pose direction (:class:`EyeModel`), so they turn with the eye joints.

Colours are linear-ish RGB in [0, 1]; everything random comes from the caller's generators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sfray.conventions import NUM_SEG_CLASSES, SEG_ID
from sfray.generators.procedural.randomness import choice, uniform
from sfray.geometry.uv_labels import fill_unlabelled

#: Two ends of the skin-tone line (light, deep) and hair / iris colour families.
_SKIN_LIGHT = torch.tensor([0.96, 0.80, 0.69])
_SKIN_DEEP = torch.tensor([0.30, 0.19, 0.13])
_HAIR = torch.tensor([
    [0.05, 0.04, 0.035], [0.16, 0.10, 0.06], [0.32, 0.20, 0.11], [0.55, 0.40, 0.24],
    [0.80, 0.66, 0.42], [0.50, 0.22, 0.10], [0.55, 0.54, 0.52], [0.10, 0.08, 0.07],
])
_IRIS = torch.tensor([
    [0.25, 0.13, 0.06], [0.12, 0.07, 0.04], [0.40, 0.30, 0.13], [0.27, 0.42, 0.24],
    [0.28, 0.45, 0.62], [0.42, 0.50, 0.55],
])
#: Eye geometry, radians from the eyeball's forward axis: iris and pupil half-angles.
IRIS_ANGLE = 0.5
PUPIL_ANGLE = 0.17


@dataclass
class Appearance:
    """One sample's colours (each (3,)) and whether it wears the hair cap."""

    skin: torch.Tensor
    lips: torch.Tensor
    hair: torch.Tensor
    brow: torch.Tensor
    iris: torch.Tensor
    hair_cap: bool
    pupil_scale: float


def random_appearance(gen: torch.Generator, hair_cap_prob: float) -> Appearance:
    """Draw skin tone, lip/hair/iris colours and the hair-cap decision from one stream."""
    t = float(uniform(gen)) ** 0.9
    skin = (_SKIN_LIGHT * (1.0 - t) + _SKIN_DEEP * t) * (1.0 + uniform(gen, -0.05, 0.05, (3,)))
    skin = skin * torch.tensor([1.0, 1.0 + float(uniform(gen, -0.03, 0.03)), 1.0])  # yellow/pink shift
    lip_tint = torch.tensor([0.78, 0.36, 0.38]) * (1.0 + uniform(gen, -0.12, 0.12, (3,)))
    lips = skin * (0.55 + 0.1 * t) + lip_tint * (0.45 - 0.1 * t) * (1.0 - 0.45 * t)
    hair = _HAIR[choice(gen, len(_HAIR))] * (1.0 + uniform(gen, -0.12, 0.12, (3,)))
    brow = hair * 0.8 if float(hair.mean()) < 0.5 else hair * 0.55
    iris = _IRIS[choice(gen, len(_IRIS))] * (1.0 + uniform(gen, -0.15, 0.15, (3,)))
    cap = bool(float(uniform(gen)) < hair_cap_prob)
    return Appearance(skin=skin.clamp(0, 1), lips=lips.clamp(0, 1), hair=hair.clamp(0, 1),
                      brow=brow.clamp(0, 1), iris=iris.clamp(0, 1), hair_cap=cap,
                      pupil_scale=float(uniform(gen, 0.8, 1.25)))


def region_palette(app: Appearance) -> torch.Tensor:
    """(NUM_SEG_CLASSES, 3) albedo per region id for one appearance."""
    s = app.skin
    pal = s.reshape(1, 3).repeat(NUM_SEG_CLASSES, 1)

    def put(name: str, color: torch.Tensor) -> None:
        pal[SEG_ID[name]] = color

    flush = torch.tensor([1.0, 0.93, 0.91])
    put("forehead", s * torch.tensor([1.01, 1.0, 0.99]))
    put("eye_region", s * 0.97)
    put("right_eye_region", s * torch.tensor([0.93, 0.88, 0.88]))
    put("left_eye_region", s * torch.tensor([0.93, 0.88, 0.88]))
    put("neck", s * 0.94)
    put("neck_back", s * 0.92)
    put("right_eyeball", torch.tensor([0.90, 0.87, 0.84]))
    put("left_eyeball", torch.tensor([0.90, 0.87, 0.84]))
    put("right_eyebrow", 0.25 * s + 0.75 * app.brow)
    put("left_eyebrow", 0.25 * s + 0.75 * app.brow)
    put("left_ear", s * flush)
    put("right_ear", s * flush)
    put("nose", s * torch.tensor([1.0, 0.96, 0.95]))
    put("upper_lip", app.lips * 0.92)
    put("lower_lip", app.lips)
    put("inner_mouth", torch.tensor([0.30, 0.08, 0.08]) + 0.1 * s)
    put("scalp", app.hair if app.hair_cap else s * 0.98)
    return pal.clamp(0.0, 1.0)


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W) with replicate padding."""
    r = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-r, r + 1, dtype=img.dtype, device=img.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    c = img.shape[0]
    out = F.pad(img[None], (r, r, 0, 0), mode="replicate")
    out = F.conv2d(out, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    out = F.pad(out, (0, 0, r, r), mode="replicate")
    out = F.conv2d(out, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return out[0]


class TexturePainter:
    """Paints (3, T, T) albedo textures over a fixed UV label map (downsampled to T, nearest)."""

    def __init__(self, uv_label_map: np.ndarray, size: int = 512):
        filled = fill_unlabelled(uv_label_map)
        h, w = filled.shape
        rows = np.minimum(((np.arange(size) + 0.5) * h / size).astype(np.int64), h - 1)
        cols = np.minimum(((np.arange(size) + 0.5) * w / size).astype(np.int64), w - 1)
        self.labels = torch.as_tensor(filled[rows][:, cols].astype(np.int64))  # (T, T)
        self.size = size
        # Blurring is linear, so blur(sum_k colour_k * mask_k) = sum_k colour_k * blur(mask_k):
        # the soft region masks are computed once and a texture is one small matmul.
        self.present = torch.unique(self.labels)  # (K,)
        onehot = (self.labels[None] == self.present[:, None, None]).float()  # (K, T, T)
        self.soft = _blur(onehot, sigma=max(0.8, size / 400.0)).reshape(len(self.present), -1)
        brows = (self.labels == SEG_ID["left_eyebrow"]) | (self.labels == SEG_ID["right_eyebrow"])
        self.brows = brows.float()
        # a wider blur of the scalp gives the hair cap a soft, jittered hairline instead of a helmet edge
        self.scalp_soft = _blur((self.labels == SEG_ID["scalp"]).float()[None], sigma=max(1.0, size / 150.0))[0]

    def paint(self, app: Appearance, gen: torch.Generator) -> torch.Tensor:
        """(3, T, T) float32 albedo for one sample (CPU; ``gen`` drives the noise)."""
        t = self.size
        bald = Appearance(**{**app.__dict__, "hair_cap": False})
        albedo = (region_palette(bald)[self.present].T @ self.soft).reshape(3, t, t)
        # low-frequency blotches (shared by channels, slightly redder in the red channel)
        blotch = F.interpolate(torch.randn((1, 1, 12, 12), generator=gen), size=(t, t), mode="bicubic",
                               align_corners=False)[0]
        albedo = albedo * (1.0 + 0.05 * blotch * torch.tensor([1.2, 1.0, 0.9]).view(3, 1, 1))
        # streaks run along t (from the crown downwards on a head-like UV layout)
        streak = F.interpolate(torch.randn((1, 1, max(4, t // 16), t), generator=gen), size=(t, t),
                               mode="bilinear", align_corners=False)[0]
        jitter = F.interpolate(torch.randn((1, 1, max(4, t // 10), max(4, t // 10)), generator=gen),
                               size=(t, t), mode="bilinear", align_corners=False)[0, 0]
        if app.hair_cap:
            cover = ((self.scalp_soft + 0.12 * jitter - 0.5) * 3.0 + 0.5).clamp(0.0, 1.0)
            hair = app.hair.view(3, 1, 1) * (1.0 + 0.35 * streak)
            albedo = albedo * (1.0 - cover) + hair * cover
        else:  # stubble on a bald scalp
            albedo = albedo * (1.0 + 0.08 * self.scalp_soft * streak)
        brow_streak = F.interpolate(torch.randn((1, 1, t, max(4, t // 24)), generator=gen), size=(t, t),
                                    mode="bilinear", align_corners=False)[0]  # brow hairs run along u
        albedo = albedo * (1.0 + 0.2 * self.brows * brow_streak)
        grain = torch.randn((1, t, t), generator=gen)
        return (albedo * (1.0 + 0.025 * grain)).clamp(0.0, 1.0)


class EyeModel:
    """Rest-pose directions of eyeball vertices, to paint iris and pupil per pixel.

    ``direction`` (V, 3) is the unit vector from the fitted eyeball centre to each eyeball
    vertex at rest (zero for other vertices); the angle to the forward axis (+z, the face's
    viewing direction) decides sclera / iris / pupil. Interpolating the direction (not the
    angle) keeps the iris round on coarse eyeball meshes.
    """

    def __init__(self, rest_vertices: np.ndarray, faces: np.ndarray, face_region: np.ndarray):
        v = np.asarray(rest_vertices, dtype=np.float64)
        direction = np.zeros_like(v)
        eye_vertex = np.zeros(len(v), dtype=bool)
        for name in ("left_eyeball", "right_eyeball"):
            idx = np.unique(np.asarray(faces)[np.asarray(face_region) == SEG_ID[name]])
            if len(idx) < 4:
                continue
            centre = _fit_sphere_centre(v[idx])
            d = v[idx] - centre
            direction[idx] = d / np.linalg.norm(d, axis=1, keepdims=True).clip(1e-12)
            eye_vertex[idx] = True
        self.direction = torch.as_tensor(direction, dtype=torch.float32)
        self.available = bool(eye_vertex.any())

    @staticmethod
    def colorize(direction: torch.Tensor, sclera: torch.Tensor, iris: torch.Tensor,
                 pupil_scale: float) -> torch.Tensor:
        """Eye albedo (N, 3) from interpolated rest directions (N, 3), the sclera albedo (N, 3)
        underneath, the iris colour (3,) and a pupil size factor."""
        d = F.normalize(direction, dim=-1, eps=1e-12)
        angle = torch.acos(d[:, 2].clamp(-1.0, 1.0))[:, None]  # (N, 1)
        ring = ((angle - (IRIS_ANGLE - 0.09)) / 0.09).clamp(0.0, 1.0)  # dark limbal ring
        swirl = 0.82 + 0.18 * torch.cos(17.0 * torch.atan2(d[:, 1], d[:, 0]))[:, None]
        radial = 0.7 + 0.6 * (angle / IRIS_ANGLE).clamp(0.0, 1.0)
        iris_col = iris.to(d)[None] * swirl * radial * (1.0 - 0.6 * ring)
        out = torch.where(angle < IRIS_ANGLE, iris_col, sclera)
        return torch.where(angle < PUPIL_ANGLE * pupil_scale, torch.full_like(out, 0.015), out)


def _fit_sphere_centre(points: np.ndarray) -> np.ndarray:
    """Least-squares sphere centre: |p|^2 = 2 c.p + k (works for partial spheres too)."""
    a = np.concatenate([2.0 * points, np.ones((len(points), 1))], axis=1)
    b = (points ** 2).sum(axis=1)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    return sol[:3]
