"""``Next3DGenerator``: our Next3D network behind the ``sfray.generators.base.Generator`` protocol.

Specs -> head model (shape, expression, pose) -> v = concat(vertices, landmarks) -> mapping with
truncation (conditioning camera) -> synthesis (rendering camera) -> :class:`GeneratorOutput`.
Per-sample randomness (ray jitter, importance sampling, 'random' noise) comes from generators
seeded by ``specs.seed``, so a sample renders the same in any batch on the same hardware.

Outputs for the annotator: ``depth`` is camera-space z (the volume-rendered distance along each
ray times the cosine to the optical axis) and ``mask`` the accumulated opacity, both at the neural
rendering resolution R (64 in the release): upsample them to the image with
``F.interpolate(x[:, None], size=(H, W), mode='bilinear', align_corners=False)``; both grids have
pixel centres at (i + 0.5)/R, so this keeps them aligned. ``extras['ray_depth']`` is the raw
distance along the ray, ``extras['image_raw']`` the (B, 3, R, R) raw RGB in [-1, 1].

Speed and numerics (``perf.py``, docs/next3d.md): ``precision`` fp32 (TF32 off) | tf32 | bf16 |
fp16 (autocast); the fast paths default per device; ``compile`` and ``cuda_graphs`` are opt-in and
apply on CUDA only (ignored with a log line on CPU); :meth:`Next3DGenerator.fit_batch_size` picks
the largest batch that fits in free GPU memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sfray.conventions import DepthSource, Extra
from sfray.errors import ConfigError
from sfray.generators.base import GeneratorOutput, SampleSpecs
from sfray.generators.next3d.config import Next3DConfig
from sfray.generators.next3d.generator import Next3DTriPlane, Topology
from sfray.generators.next3d.layers import seeded_generators
from sfray.generators.next3d.perf import (
    PRECISIONS,
    FastPaths,
    apply_fast_paths,
    batch_from_footprint,
    check_precision,
    compile_networks,
    default_fast_paths,
    log,
)
from sfray.generators.next3d.renderer import ray_sampler
from sfray.generators.next3d.texture_raster import DEFAULT_RASTER_COMPAT
from sfray.generators.next3d.world import mesh_to_world

RANDOM_SMALL = "random-small"
#: UV label-map classes inside Next3D's face-and-eye mask (used when a head has no DECA mask).
FACE_EYE_CLASSES = ("face", "forehead", "eye_region", "right_eye_region", "left_eye_region", "right_eyeball",
                    "left_eyeball", "left_eyebrow", "right_eyebrow", "eye_region+forehead", "lower_lip",
                    "upper_lip", "inner_mouth", "nose")


def topology_from_head(head: Any, uv_resolution: int) -> Topology:
    """Faces, UVs and a face/eye UV mask from a head model's assets (for untrained small networks)."""
    from sfray.conventions import SEG_ID

    assets = getattr(head, "assets", head)
    faces = np.asarray(_to_numpy(assets.faces), dtype=np.int64)
    uv = np.asarray(_to_numpy(assets.uv_coords), dtype=np.float32)
    uv_faces = np.asarray(_to_numpy(assets.uv_faces), dtype=np.int64)
    label = getattr(assets, "uv_label_map", None)
    mask = None
    if label is not None:
        ids = [SEG_ID[n] for n in FACE_EYE_CLASSES]
        full = np.isin(_to_numpy(label), ids).astype(np.float32)
        idx = (np.arange(uv_resolution) + 0.5) * full.shape[0] / uv_resolution  # nearest resize
        mask = full[idx.astype(int)][:, ((np.arange(uv_resolution) + 0.5) * full.shape[1] / uv_resolution).astype(int)]
    return Topology(faces=faces, uv_coords=uv, uv_faces=uv_faces, uv_face_mask=mask)


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _head_num_vertices(head: Any) -> int:
    assets = getattr(head, "assets", None)
    if assets is not None and hasattr(assets, "num_vertices"):
        return int(assets.num_vertices)
    return int(getattr(head, "num_vertices"))


class Next3DGenerator:
    """The Generator protocol over :class:`Next3DTriPlane` (see module docstring)."""

    def __init__(self, model: Next3DTriPlane, head: Any, *, identity: str, device: torch.device | str = "cpu",
                 resolution: int | None = None, truncation_psi: float = 0.7, truncation_cutoff: int | None = 14,
                 noise_mode: str = "const", precision: str = "fp32", neural_rendering_resolution: int | None = None,
                 raster_compat: str = DEFAULT_RASTER_COMPAT, fast_paths: FastPaths | None = None,
                 compile: bool = False, cuda_graphs: bool = False):
        check_precision(precision)
        nv = _head_num_vertices(head)
        if nv != model.cfg.num_vertices:
            raise ConfigError(
                f"head.kind: the Next3D network rasterizes a {model.cfg.num_vertices}-vertex mesh (its checkpoint's "
                f"topology) but the head model has {nv} vertices; use head.kind=flame with the FLAME 2020 model")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False).set_raster_compat(raster_compat)
        self.head = head
        self.identity = identity
        self.resolution = int(resolution or model.cfg.img_resolution)
        self.latent_dim = model.cfg.z_dim
        self.truncation_psi, self.truncation_cutoff = float(truncation_psi), truncation_cutoff
        self.noise_mode, self.precision = noise_mode, precision
        self.neural_rendering_resolution = int(neural_rendering_resolution or model.neural_rendering_resolution)
        self.model.allow_tf32 = PRECISIONS.get(precision)[1]
        self.fast_paths = fast_paths or default_fast_paths(self.device)
        apply_fast_paths(self.model, self.fast_paths)
        on_cuda = self.device.type == "cuda"
        for key, wanted in (("compile", compile), ("cuda_graphs", cuda_graphs)):
            if wanted and not on_cuda:
                log.info("generator.%s=true applies to CUDA devices only; running eagerly on %s", key, self.device)
        self.compiled = bool(compile and on_cuda)
        if self.compiled:
            compile_networks(self.model)
        self.cuda_graphs = bool(cuda_graphs and on_cuda)
        if self.cuda_graphs:
            self.model.enable_cuda_graphs()

    @contextlib.contextmanager
    def _cudnn_autotune(self) -> Iterator[None]:
        """cuDNN picks the fastest algorithm per shape (fixed batch shapes repeat) inside generate."""
        saved = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = saved or self.device.type == "cuda"
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = saved

    @torch.no_grad()
    def generate(self, specs: SampleSpecs) -> GeneratorOutput:
        with self._cudnn_autotune():
            return self._generate(specs)

    def fit_batch_size(self, configured: int, *, limit: int = 256, fraction: float = 0.85) -> int:
        """The largest batch (<= ``limit``) whose footprint fits in ``fraction`` of free GPU memory.

        The footprint is measured: peak memory of one generate at batch 1 and 2 gives the fixed and
        per-sample parts. On CPU the configured batch is returned unchanged.
        """
        if self.device.type != "cuda":
            return int(configured)
        peaks = []
        for b in (1, 2):
            specs = self._probe_specs(b)
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.generate(specs)
            torch.cuda.synchronize(self.device)
            peaks.append(torch.cuda.max_memory_allocated(self.device) - base)
        per_sample = max(peaks[1] - peaks[0], 1)
        fixed = max(peaks[0] - per_sample, 0)
        torch.cuda.empty_cache()
        free, _total = torch.cuda.mem_get_info(self.device)
        return batch_from_footprint(free, fixed, per_sample, fraction=fraction, limit=limit)

    def _probe_specs(self, b: int) -> SampleSpecs:
        """Neutral specs (zero latent/shape/expression/pose, frontal camera) for memory probes."""
        from sfray.geometry.camera import frontal_camera_label

        cam = frontal_camera_label().reshape(1, -1).repeat(b, 1).to(self.device)
        zeros = lambda n: torch.zeros(b, n, device=self.device)  # noqa: E731
        return SampleSpecs(sample_id=torch.arange(b), seed=torch.arange(b), latent=zeros(self.latent_dim),
                           shape=zeros(int(getattr(self.head, "n_shape", 1))),
                           expression=zeros(int(getattr(self.head, "n_expression", 1))), pose=zeros(15),
                           camera=cam, cond_camera=cam.clone())

    def _generate(self, specs: SampleSpecs) -> GeneratorOutput:
        specs = specs.to(self.device)
        b = len(specs)
        if specs.latent.shape[-1] != self.latent_dim:
            raise ConfigError(f"sample specs carry {specs.latent.shape[-1]}-dim latents but the Next3D network "
                              f"({self.identity}) takes z_dim={self.latent_dim}")
        head_out = self.head(specs.shape, specs.expression, specs.pose)
        verts, lms = head_out.vertices.float(), head_out.landmarks.float()
        v = torch.cat([verts, lms], dim=1)
        rng = seeded_generators(specs.seed, self.device)
        dtype = PRECISIONS.get(self.precision)[0]
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            ws = self.model.mapping(specs.latent.float(), specs.cond_camera.float(), self.truncation_psi,
                                    self.truncation_cutoff)
            out = self.model.synthesis(ws, specs.camera.float(), v, self.noise_mode, rng,
                                       self.neural_rendering_resolution)
        image = out["image"].float()
        if image.shape[-1] != self.resolution:
            image = F.interpolate(image, size=(self.resolution, self.resolution), mode="bilinear",
                                  align_corners=False, antialias=True)
        image_u8 = (image * 127.5 + 128).clamp(0, 255).to(torch.uint8)
        ray_depth = out["image_depth"][:, 0].float()
        depth = ray_depth * self._optical_axis_cosine(specs.camera.float(), ray_depth.shape[-1])
        shift = tuple(float(x) for x in self.model.orth_shift.reshape(3).tolist())
        scale = float(self.model.orth_scale.reshape(-1)[0])
        m2w = mesh_to_world(b, "network", orth_scale=scale, orth_shift=shift, device=self.device)
        extras = {
            Extra.IMAGE_RAW: out["image_raw"].float(), Extra.RAY_DEPTH: ray_depth,
            Extra.MESH_TO_WORLD_SYNTHFORGE: mesh_to_world(b, "synthforge", orth_scale=scale, orth_shift=shift,
                                                      device=self.device),
        }
        return GeneratorOutput(
            image=image_u8, depth=depth, mask=out["image_weight"][:, 0].float().clamp(0, 1),
            head_vertices=verts, head_landmarks=lms, head_landmarks_fixed=head_out.landmarks_fixed.float(),
            mesh_to_world=m2w, camera=specs.camera.float(), extras=extras, depth_source=DepthSource.VOLUME)

    @staticmethod
    def _optical_axis_cosine(camera: torch.Tensor, res: int) -> torch.Tensor:
        """(B, R, R) cosine between each pixel's ray and the camera's +z axis (ray distance -> z)."""
        cam2world = camera[:, :16].reshape(-1, 4, 4)
        _, dirs = ray_sampler(cam2world, camera[:, 16:25].reshape(-1, 3, 3), res)
        forward = F.normalize(cam2world[:, :3, 2], dim=-1)
        return (dirs * forward[:, None]).sum(-1).reshape(-1, res, res)


def build_next3d_generator(cfg: Any, head: Any, device: torch.device | str = "cpu") -> Next3DGenerator:
    """From a GenerateJobConfig: ``generator.next3d.checkpoint`` = an official .pkl, an sfray .safetensors, or
    ``random-small`` (an untrained scaled-down network on the head's own topology, for CPU tests)."""
    from sfray.generators.next3d.checkpoint import load_next3d

    gc, sc = cfg.generator.next3d, cfg.sampling
    nrr: int | None = int(gc.neural_rendering_resolution)
    if gc.checkpoint == RANDOM_SMALL:
        nv = _head_num_vertices(head)
        topo = topology_from_head(head, Next3DConfig.small().uv_resolution)
        small = Next3DConfig.small(nv, len(topo.faces), len(topo.uv_coords))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(getattr(cfg, "seed", 0)))
            model = Next3DTriPlane(small, topo)
        identity, nrr = "next3d-random-small", None  # the small network keeps its own ray resolution
    else:
        model, ckpt = load_next3d(gc.checkpoint, device)
        identity = ckpt.identity
    return Next3DGenerator(
        model, head, identity=identity, device=device, resolution=cfg.generate.resolution,
        truncation_psi=sc.truncation_psi, truncation_cutoff=sc.truncation_cutoff, noise_mode=gc.noise_mode,
        precision=gc.precision, neural_rendering_resolution=nrr,
        raster_compat=gc.raster_compat, compile=gc.compile, cuda_graphs=gc.cuda_graphs)
