"""The procedural renderer: the head mesh, textured, shaded and lit, over a random background.

It plays Next3D's role on a machine without licensed assets (docs/architecture.md): same inputs
(``SampleSpecs``), same outputs (``GeneratorOutput``: image, the generator's depth and mask, the
driving head mesh and ``mesh_to_world``). One batch goes

    specs -> head layer -> head_to_world (+ misalign) -> camera -> rasterize at ``supersample`` x
          -> per-pixel UV albedo (+ irises), normals -> Lambert + ambient + a little specular
          -> box-filter down to the output size (anti-aliasing) -> composite over the background.

Every random choice (skin, hair, light, background, noise) comes from the sample's own seed
(``randomness``), so a sample is bitwise reproducible and independent of its batch-mates.

``faults.misalign = [rx, ry, rz (deg), tx, ty, tz (world units), s]`` (testing only) renders the head through
the similarity ``p -> s R p + t`` applied in world space about the world origin, *after*
``head_to_world``; ``mesh_to_world`` still reports the plain transform. That is precisely the
residual an alignment process must remove (the map that fixes it is the similarity itself).
``extras`` carries the ground truth: ``render_to_world`` (B, 4, 4) and ``landmarks_2d_rendered``
(B, 68, 2), the landmarks as they appear in the image (jaw contour picked for the render camera,
as the default ``annotate.contour=camera`` picks it: ``sfray.head.contour``), and what the
image shows of the hair cap, which no mesh annotation contains: ``hair_coverage`` (B, H, W), the
fraction of each pixel covered by the cap's shell, and ``hair_cap`` (B,) bool, whether the sample
wears one (its scalp is then painted as hair).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sfray.config.schema import ProceduralGeneratorConfig
from sfray.conventions import NUM_SEG_CLASSES, POSE_DIM, SEG_ID, VISIBILITY_TOLERANCE, DepthSource, Extra
from sfray.generators.base import GeneratorOutput, SampleSpecs
from sfray.generators.procedural.background import make_background
from sfray.generators.procedural.hair import HairShell
from sfray.generators.procedural.randomness import Stream, stream_generator, uniform
from sfray.generators.procedural.shading import random_light, shade, stable_pow, vertex_normals
from sfray.generators.procedural.texture import EyeModel, TexturePainter, random_appearance
from sfray.geometry.camera import camera_label_to_matrices, world_to_camera
from sfray.geometry.projection import to_screen_perspective
from sfray.geometry.rasterizer import rasterize
from sfray.geometry.transform import head_to_world_matrix, similarity_matrix, transform_points
from sfray.geometry.uv_labels import face_labels, uv_to_grid
from sfray.geometry.visibility import render_visibility
from sfray.head.contour import CONTOUR_TOLERANCE_SHARE, CameraContour
from sfray.head.layer import HeadModel

IDENTITY = "procedural-v1"
#: Display gamma: albedo colours are authored in display space and shaded in linear light.
GAMMA = 2.2
#: Hair-cap shell thickness range, head-model metres.
HAIR_THICKNESS = (0.004, 0.012)
#: Camera grain added to the final image (std in [0, 1] units).
GRAIN = 0.006


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _gloss_table() -> torch.Tensor:
    g = torch.ones(NUM_SEG_CLASSES)
    for name, value in (("left_eyeball", 6.0), ("right_eyeball", 6.0), ("upper_lip", 1.8),
                        ("lower_lip", 2.2), ("inner_mouth", 1.5), ("left_eyebrow", 0.4),
                        ("right_eyebrow", 0.4)):
        g[SEG_ID[name]] = value
    return g


class ProceduralGenerator:
    """Renders the head model with sfray's rasterizer (implements ``Generator``)."""

    identity = IDENTITY
    latent_dim = 0

    def __init__(self, head: HeadModel, resolution: int = 512, cfg: ProceduralGeneratorConfig | None = None,
                 device: torch.device | str = "cpu", *, misalign: Sequence[float] | None = None,
                 supersample: int = 2, texture_size: int = 512):
        self.head = head
        self.resolution = int(resolution)
        self.cfg = cfg if cfg is not None else ProceduralGeneratorConfig()
        self.device = torch.device(device)
        self.supersample = max(1, int(supersample))
        # testing only (faults.misalign): where the head is really drawn, (4, 4) float64
        self.misalign = similarity_matrix(misalign if misalign is not None else [0, 0, 0, 0, 0, 0, 1])

        faces = _numpy(head.faces).astype(np.int64)
        uv = _numpy(head.uv_coords).astype(np.float32)
        uv_faces = _numpy(head.uv_faces).astype(np.int64)
        label_map = _numpy(head.uv_label_map).astype(np.uint8)
        region = face_labels(label_map, uv, uv_faces)  # (F,)
        self.num_vertices = int(self._rest_vertices().shape[1])
        self.shell = HairShell(faces, region, self.num_vertices)
        shell_src = self.shell.source_faces.numpy()
        self.faces = torch.as_tensor(faces)
        self.faces_all = torch.cat([self.faces, self.shell.shell_faces(self.num_vertices)])  # head, then shell
        face_uv = torch.as_tensor(uv[uv_faces])  # (F, 3, 2)
        self.face_uv_all = torch.cat([face_uv, face_uv[shell_src]])
        self.region_all = torch.as_tensor(np.concatenate([region, region[shell_src]]).astype(np.int64))
        self.eyes = EyeModel(_numpy(self._rest_vertices()[0]), faces, region)
        self.eye_dir_all = torch.cat([self.eyes.direction, torch.zeros_like(self.eyes.direction)])
        self.painter = TexturePainter(label_map, texture_size)
        self.gloss = _gloss_table()
        self.contour = CameraContour.for_head(head)  # ground-truth jaw contour as the render camera sees it
        self._moved_to: torch.device | None = None

    def _rest_vertices(self) -> torch.Tensor:
        """(1, V, 3) the head at zero shape, expression and pose (eyes looking along +z)."""
        if not hasattr(self, "_rest"):
            dev = self.head.device
            z = lambda n: torch.zeros(1, n, device=dev)  # noqa: E731
            with torch.no_grad():
                out = self.head.forward(z(self.head.n_shape), z(self.head.n_expression), z(POSE_DIM))
            self._rest = out.vertices.detach().float().cpu()
        return self._rest

    def _device_tensors(self) -> None:
        if self._moved_to != self.device:
            for name in ("faces", "faces_all", "face_uv_all", "region_all", "eye_dir_all", "gloss"):
                setattr(self, name, getattr(self, name).to(self.device))
            self._moved_to = self.device

    @torch.no_grad()
    def generate(self, specs: SampleSpecs) -> GeneratorOutput:
        """Render a batch of B specs at ``resolution`` (see the module docstring)."""
        self._device_tensors()
        specs = specs.to(self.device)
        b, res, ss = len(specs), self.resolution, self.supersample
        head_out = self.head.forward(specs.shape, specs.expression, specs.pose)
        verts = head_out.vertices.float()
        seeds = [int(s) for s in specs.seed.cpu().tolist()]
        apps = [random_appearance(stream_generator(s, Stream.APPEARANCE), self.cfg.hair_cap_prob) for s in seeds]
        thickness = torch.tensor([
            float(uniform(stream_generator(s, Stream.HAIR), *HAIR_THICKNESS)) if a.hair_cap else 0.0
            for s, a in zip(seeds, apps)], device=self.device)
        if not self.shell.available:
            thickness.zero_()

        mesh_to_world = head_to_world_matrix(b, self.device, torch.float64)
        render_to_world = self.misalign.to(self.device) @ mesh_to_world
        normals_head = vertex_normals(verts, self.faces)
        all_verts = self.shell.build(verts, normals_head, thickness)
        c2w, k = camera_label_to_matrices(specs.camera.to(torch.float64))
        cam = world_to_camera(transform_points(render_to_world, all_verts.double()), c2w)
        screen = to_screen_perspective(cam, k, res * ss)
        frags = rasterize(screen.float(), self.faces_all, (res * ss, res * ss), perspective_correct=True)
        normals_cam = vertex_normals(cam.float(), self.faces_all)

        color = torch.zeros(b, 3, res * ss, res * ss, device=self.device)
        vattr = torch.cat([normals_cam, cam.float(), self.eye_dir_all[None].expand(b, -1, -1)], dim=2)
        for i in range(b):
            color[i] = self._shade_one(i, frags, vattr[i], apps[i], seeds[i])
        cover = (frags.face_index >= 0).float()[:, None]
        drawn = self.region_all[frags.face_index.clamp_min(0)]
        scalp = (cover[:, 0] > 0) & (drawn == SEG_ID["scalp"])  # scalp skin and the cap over it
        hair_d = F.avg_pool2d(scalp.float()[:, None], ss)[:, 0] if ss > 1 else scalp.float()
        shell = (frags.face_index >= self.faces.shape[0]).float()[:, None]  # shell faces follow the head's
        hair = F.avg_pool2d(shell, ss)[:, 0] if ss > 1 else shell[:, 0]
        if ss > 1:
            color, cover_d = F.avg_pool2d(color * cover, ss), F.avg_pool2d(cover, ss)
            zsum = F.avg_pool2d(torch.where(cover > 0, frags.zbuf[:, None], torch.zeros_like(cover)), ss)
        else:
            color, cover_d, zsum = color * cover, cover, torch.where(cover > 0, frags.zbuf[:, None], 0.0)
        depth = torch.where(cover_d > 0, zsum / cover_d.clamp_min(1e-12), torch.zeros_like(zsum))[:, 0]

        image = torch.empty(b, 3, res, res, device=self.device)
        for i, s in enumerate(seeds):
            gen = stream_generator(s, Stream.BACKGROUND)
            bg = make_background(gen, list(self.cfg.background), (res, res))
            grain = GRAIN * torch.randn((1, res, res), generator=gen)
            image[i] = color[i] + (1.0 - cover_d[i]) * bg.to(self.device) + grain.to(self.device)
        image_u8 = (image.clamp(0.0, 1.0) * 255.0 + 0.5).floor().to(torch.uint8)

        # the mesh as the annotator renders it (no hair cap), drawn where the renderer drew it; the
        # transform rounded as GeneratorOutput carries it, so an aligned annotator chooses alike
        drawn = render_to_world.float().double()
        seen = render_visibility(head_out.vertices, self.faces, drawn, specs.camera, res,
                                 tolerance=CONTOUR_TOLERANCE_SHARE * VISIBILITY_TOLERANCE)
        truth = self.contour.apply(head_out.vertices, head_out.landmarks, drawn, specs.camera, seen)
        lm_cam = world_to_camera(transform_points(render_to_world, truth.double()), c2w)
        lm_pix = to_screen_perspective(lm_cam, k, res)[..., :2].float()
        return GeneratorOutput(
            image=image_u8, depth=depth.float(), mask=cover_d[:, 0].float(),
            head_vertices=head_out.vertices, head_landmarks=head_out.landmarks,
            head_landmarks_fixed=head_out.landmarks_fixed, mesh_to_world=mesh_to_world.float(),
            camera=specs.camera,
            extras={Extra.RENDER_TO_WORLD: render_to_world.float(), Extra.LANDMARKS_2D_RENDERED: lm_pix,
                    Extra.HAIR_MASK: hair_d.float(), Extra.HAIR_COVERAGE: hair, Extra.HAIR_CAP: thickness > 0},
            depth_source=DepthSource.RASTER,
        )

    def _shade_one(self, i: int, frags, vattr: torch.Tensor, app, seed: int) -> torch.Tensor:
        """(3, H, W) display-space colour of sample ``i`` (zeros where uncovered).

        ``vattr`` (V', 9) per-vertex camera-space normal, position and rest eye direction.
        """
        h, w = frags.face_index.shape[1:]
        fi = frags.face_index[i].reshape(-1)
        pix = torch.nonzero(fi >= 0).squeeze(1)
        out = torch.zeros(3, h * w, device=self.device)
        if pix.numel() == 0:
            return out.view(3, h, w)
        f = fi[pix]
        bary = frags.bary[i].reshape(-1, 3)[pix].float()[:, :, None]  # (N, 3, 1)
        corner_attr = torch.cat([vattr[self.faces_all[f]], self.face_uv_all[f]], dim=2)  # (N, 3, 11)
        attr = (bary * corner_attr).sum(1)
        nrm, pos, eye_dir, uv = attr[:, 0:3], attr[:, 3:6], attr[:, 6:9], attr[:, 9:11]
        region = self.region_all[f]

        tex = self.painter.paint(app, stream_generator(seed, Stream.TEXTURE_NOISE)).to(self.device)
        albedo = F.grid_sample(tex[None], uv_to_grid(uv)[None, None], mode="bilinear",
                               padding_mode="border", align_corners=False)[0, :, 0].T  # (N, 3)
        if self.eyes.available:
            eye = (region == SEG_ID["left_eyeball"]) | (region == SEG_ID["right_eyeball"])
            if eye.any():
                albedo[eye] = EyeModel.colorize(eye_dir[eye], albedo[eye], app.iris, app.pupil_scale)
        light = random_light(stream_generator(seed, Stream.LIGHT))
        gloss = self.gloss[region][:, None]
        if app.hair_cap:
            gloss = torch.where((region == SEG_ID["scalp"])[:, None], torch.full_like(gloss, 0.5), gloss)
        lin = shade(stable_pow(albedo.clamp(0.0, 1.0), GAMMA), nrm, pos, light, gloss)
        out[:, pix] = stable_pow(lin.clamp(0.0, 1.0), 1.0 / GAMMA).T
        return out.view(3, h, w)

    def to(self, device: torch.device | str) -> ProceduralGenerator:
        """Move the renderer (and its head model) to ``device``."""
        self.device = torch.device(device)
        self.head.to(self.device)
        return self

