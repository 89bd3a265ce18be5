"""Config schemas (OmegaConf structured configs). YAML files in ``configs/`` hold only deltas.

Sections are grouped by the component that reads them; each section validates its own ranges in
``validate()`` so a bad value fails at load time with the key named. Name-valued fields are
checked against their registries (``sfray.config.registries``), which hold the valid names; the
packages that implement the names attach their builders to the same registries.

The generator has one section per kind (``generator.procedural``, ``generator.next3d``), so a
key of one kind under the other is an unknown key, rejected by name at load time. Knobs that
exist only to test sfray (misalignment, fault injection) live in ``faults`` (docs/architecture.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from sfray.config import registries as reg
from sfray.conventions import DEFAULT_CAMERA_PIVOT, DEFAULT_CAMERA_RADIUS, VISIBILITY_TOLERANCE
from sfray.errors import ConfigError
from sfray.io.paths import unsafe_output_reason

#: Upper bounds that stop a typo (``num_samples=1e14``) before anything is allocated; far above
#: any real run (10^8 records at 512x512 would fill ~50 TB), docs/reliability.md.
MAX_SAMPLES = 10**8
MAX_BATCH = 4096
MAX_PREVIEW = 1024


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"bad value for config key '{key}': {msg}")


def _check_range(key: str, rng: list[float]) -> None:
    _check(len(rng) == 2 and rng[0] <= rng[1], key, f"expected [low, high] with low <= high, got {rng}")


@dataclass
class HeadConfig:
    """Which head model drives generation: the embedded procedural head or a user's FLAME files."""

    kind: str = "procedural"  # registries.HEAD_KINDS
    path: Optional[str] = None  # FLAME generic_model.pkl (2020 or 2023 layout)
    landmark_embedding: Optional[str] = None  # DECA landmark_embedding.npy or RingNet static .pkl
    dynamic_embedding: Optional[str] = None  # RingNet flame_dynamic_embedding.npy
    template_obj: Optional[str] = None  # head_template.obj (UVs)
    label_map: Optional[str] = None  # UV label map image (colour table: SEG_CLASSES)
    masks: Optional[str] = None  # FLAME_masks.pkl (vertex regions)
    n_shape: int = 100
    n_expression: int = 50
    dtype: str = "float32"  # registries.HEAD_DTYPES

    def validate(self) -> None:
        reg.HEAD_KINDS.check(self.kind)
        _check(self.kind != "flame" or bool(self.path), "head.path",
               "head.kind=flame needs head.path=generic_model.pkl")
        _check(0 < self.n_shape <= 300, "head.n_shape", "must be in 1..300")
        _check(0 < self.n_expression <= 100, "head.n_expression", "must be in 1..100")
        reg.HEAD_DTYPES.check(self.dtype)


@dataclass
class CameraConfig:
    """Camera distribution. ``preset`` picks the paper's or the release's ranges (docs/synthforge.md)."""

    preset: str = "release"  # registries.CAMERA_PRESETS
    yaw_range: list[float] = field(default_factory=lambda: [-0.8, 0.8])  # radians
    pitch_range: list[float] = field(default_factory=lambda: [-0.8, 0.8])  # radians
    fov_range: list[float] = field(default_factory=lambda: [18.0, 24.0])  # EG3D "fov" degrees
    radius: float = DEFAULT_CAMERA_RADIUS
    pivot: list[float] = field(default_factory=lambda: list(DEFAULT_CAMERA_PIVOT))
    # the camera label the generator's mapping network is conditioned on: frontal (at cond_fov) or
    # render (each sample's own camera, the SynthForge release); registries.CONDITIONING_CAMERAS
    conditioning: str = "frontal"
    cond_fov: float = 18.837  # the frontal conditioning camera's EG3D "fov"

    def validate(self) -> None:
        reg.CAMERA_PRESETS.check(self.preset)
        reg.CONDITIONING_CAMERAS.check(self.conditioning)
        for k in ("yaw_range", "pitch_range", "fov_range"):
            _check_range(f"camera.{k}", getattr(self, k))
        _check(0 < self.fov_range[0] and self.fov_range[1] < 120, "camera.fov_range", "degrees in (0, 120)")
        _check(self.radius > 0, "camera.radius", "must be > 0")
        _check(len(self.pivot) == 3, "camera.pivot", "three numbers")


@dataclass
class SamplingConfig:
    """How identities, expressions, poses and latents are drawn (``sfray.sampling`` registry)."""

    strategy: str = "gaussian"  # registries.SAMPLING_STRATEGIES
    shape_scale: float = 1.0  # multiplies beta's std (gaussian) or the release's U(-2, 2) (uniform)
    expression_scale: float = 1.0
    jaw_open_range: list[float] = field(default_factory=lambda: [0.0, 0.0])  # radians about x
    eye_range: list[float] = field(default_factory=lambda: [0.0, 0.0])  # radians, yaw and pitch
    neck_range: list[float] = field(default_factory=lambda: [0.0, 0.0])  # radians
    truncation_psi: float = 0.7
    truncation_cutoff: int = 14
    candidate_pool: int = 8  # diverse: candidates per kept sample
    guide: Optional[str] = None  # loss_resample / loss_propose: the guide file of drawn rows (docs/sweeps.md)

    def validate(self) -> None:
        reg.SAMPLING_STRATEGIES.check(self.strategy)
        for k in ("jaw_open_range", "eye_range", "neck_range"):
            _check_range(f"sampling.{k}", getattr(self, k))
        _check(self.shape_scale >= 0, "sampling.shape_scale", "must be >= 0")
        _check(self.expression_scale >= 0, "sampling.expression_scale", "must be >= 0")
        _check(0.0 <= self.truncation_psi <= 1.0, "sampling.truncation_psi", "must be in [0, 1]")
        _check(self.candidate_pool >= 1, "sampling.candidate_pool", "must be >= 1")
        _check(self.strategy not in reg.GUIDED_STRATEGIES or bool(self.guide), "sampling.guide",
               f"strategy '{self.strategy}' reads its rows from a guide file that `sfray sweep` writes")


@dataclass
class ProceduralGeneratorConfig:
    """``generator.procedural``: the embedded renderer (no licensed asset needed)."""

    hair_cap_prob: float = 0.5  # share of samples that get a hair cap over the scalp
    background: list[str] = field(default_factory=lambda: ["solid", "gradient", "noise"])  # BACKGROUNDS

    def validate(self) -> None:
        _check(0.0 <= self.hair_cap_prob <= 1.0, "generator.procedural.hair_cap_prob", "must be in [0, 1]")
        _check(bool(self.background), "generator.procedural.background", "needs at least one kind")
        for kind in self.background:
            reg.BACKGROUNDS.check(kind)


@dataclass
class Next3DGeneratorConfig:
    """``generator.next3d``: our Next3D implementation and its checkpoint (docs/next3d.md)."""

    checkpoint: Optional[str] = None  # official next3d_*.pkl, sfray .safetensors, or random-small
    precision: str = "fp32"  # registries.PRECISIONS: fp32 (TF32 off) | tf32 | bf16 | fp16
    neural_rendering_resolution: int = 128
    noise_mode: str = "const"
    # numerics and speed (docs/next3d.md): texture rasterization pytorch3d (as the released weights
    # were trained) | exact (registries.RASTER_COMPAT); compile / cuda_graphs are opt-in and CUDA only
    raster_compat: str = "pytorch3d"
    compile: bool = False
    cuda_graphs: bool = False

    def validate(self, required: bool) -> None:
        _check(not required or bool(self.checkpoint), "generator.next3d.checkpoint",
               "generator.kind=next3d needs a checkpoint path")
        reg.PRECISIONS.check(self.precision)
        reg.RASTER_COMPAT.check(self.raster_compat)
        _check(self.neural_rendering_resolution >= 16, "generator.next3d.neural_rendering_resolution",
               "must be >= 16")


@dataclass
class GeneratorConfig:
    """The image generator: ``kind`` picks a section; only that section's values are used."""

    kind: str = "procedural"  # registries.GENERATOR_KINDS
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    procedural: ProceduralGeneratorConfig = field(default_factory=ProceduralGeneratorConfig)
    next3d: Next3DGeneratorConfig = field(default_factory=Next3DGeneratorConfig)

    def validate(self) -> None:
        reg.GENERATOR_KINDS.check(self.kind)
        _check(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(self.device)) is not None, "generator.device",
               f"{self.device!r} is not one of auto, cpu, cuda, cuda:N, mps")
        self.procedural.validate()
        self.next3d.validate(required=self.kind == "next3d")


@dataclass
class AlignLossConfig:
    """Weights and robust scales of the alignment losses (``sfray align`` and per-sample refinement).

    Each term's residuals are divided by its scale (where the robust loss turns from quadratic to
    linear/flat) and averaged; the weighted sum of the terms is minimised.
    """

    depth: float = 1.0  # mesh z-buffer vs generator depth on the shared foreground
    silhouette: float = 1.0  # mesh contour vs generator mask boundary (signed distance, pixels)
    chamfer: float = 1.0  # mapped mesh surface vs generator surface points (both directions)
    landmark: float = 1.0  # projected landmarks vs detector / generator ground truth
    depth_scale: float = 0.004  # world units
    silhouette_scale: float = 0.5  # pixels at the fitting resolution
    chamfer_scale: float = 0.004  # world units
    landmark_scale: float = 2.0  # pixels at the fitting resolution
    robust: str = "cauchy"  # registries.ROBUST_LOSSES (cauchy redescends: hair, other unmodelled geometry)

    def validate(self, key: str) -> None:
        for name in ("depth", "silhouette", "chamfer", "landmark"):
            _check(getattr(self, name) >= 0, f"{key}.{name}", "weight must be >= 0")
        for name in ("depth_scale", "silhouette_scale", "chamfer_scale", "landmark_scale"):
            _check(getattr(self, name) > 0, f"{key}.{name}", "scale must be > 0")
        reg.ROBUST_LOSSES.check(self.robust, key=f"{key}.robust")
        _check(self.depth + self.silhouette + self.chamfer + self.landmark > 0, key,
               "at least one loss weight must be > 0")


@dataclass
class RefineConfig:
    """Per-sample refinement (off by default): a small bounded residual map fitted in the actor."""

    enabled: bool = False
    model: str = "rigid"  # registries.ALIGN_MODELS
    steps: int = 4  # Gauss-Newton steps (each re-rasterizes the mesh once)
    resolution: int = 64  # raster resolution of the refinement losses
    max_rotation_deg: float = 3.0  # bound on the residual's rotation
    max_translation: float = 0.05  # world units, bound on the residual's translation
    max_scale_change: float = 0.05  # bound on |scale - 1| (similarity) or on |linear - I| (affine)
    loss: AlignLossConfig = field(default_factory=AlignLossConfig)

    def validate(self) -> None:
        reg.ALIGN_MODELS.check(self.model, key="annotate.refine.model")
        _check(1 <= self.steps <= 100, "annotate.refine.steps", "must be in 1..100")
        _check(16 <= self.resolution <= 1024, "annotate.refine.resolution", "must be in 16..1024")
        _check(0 < self.max_rotation_deg <= 45, "annotate.refine.max_rotation_deg", "must be in (0, 45]")
        _check(self.max_translation > 0, "annotate.refine.max_translation", "must be > 0")
        _check(0 < self.max_scale_change < 1, "annotate.refine.max_scale_change", "must be in (0, 1)")
        self.loss.validate("annotate.refine.loss")


@dataclass
class AnnotateConfig:
    """Annotation from the mesh: rasterizer backend and the alignment map (head space -> world)."""

    raster_backend: str = "torch"  # registries.RASTER_BACKENDS
    alignment_map: Optional[str] = None  # fixMapMLP01.pth or sfray .safetensors; identity if unset
    # world units: a landmark is visible when its 3x3 pixel block shows the mesh within this depth of
    # it (0.02 world = 8 mm of head-model space, docs/conventions.md)
    visibility_tolerance: float = VISIBILITY_TOLERANCE
    refine: RefineConfig = field(default_factory=RefineConfig)  # per-sample refinement (docs/alignment.md)
    # jaw contour row: camera = from the head yaw as this sample's camera sees it (head pose + camera
    # azimuth); head = the head model's own choice from its joint rotation (FLAME's convention)
    contour: str = "camera"  # registries.CONTOUR_MODES

    def validate(self) -> None:
        reg.RASTER_BACKENDS.check(self.raster_backend)
        reg.CONTOUR_MODES.check(self.contour)
        _check(self.visibility_tolerance >= 0, "annotate.visibility_tolerance", "must be >= 0")
        self.refine.validate()


@dataclass
class QualityConfig:
    """Per-sample quality figures and what to do with samples that fail them."""

    policy: str = "keep"  # registries.QUALITY_POLICIES
    min_mask_iou: float = 0.0  # mesh mask vs generator mask
    max_depth_residual: float = 1e9  # world units, median |mesh z - generator z| on shared foreground
    max_detector_px: float = 1e9  # mean landmark distance to the detector, pixels at 512
    detector: Optional[str] = None  # dotted path to a callable (uint8 images -> (B, 68, 2) or None)
    # the authors' rule as a preset, the alignment residual, faceless samples (docs/alignment.md)
    # None | registries.QUALITY_PRESETS (authors: detector within 11 px at 512; strict: face_depth)
    preset: Optional[str] = None
    max_alignment_residual: float = 1e9  # pixels at 512: landmark shift of the per-sample refinement
    max_landmark_depth: float = 1e9  # world units: median |landmark z - generator depth there|
    # world units: median |mesh z - generator z| on the face region both cover, hair and scalp left out
    max_face_depth: float = 1e9
    fail_no_face: bool = True  # a configured detector finding no face fails the sample
    enabled: bool = True  # compute the quality figures at all (off: no figures, status ok)

    def validate(self) -> None:
        reg.QUALITY_POLICIES.check(self.policy)
        _check(0.0 <= self.min_mask_iou <= 1.0, "quality.min_mask_iou", "must be in [0, 1]")
        _check(self.max_depth_residual > 0, "quality.max_depth_residual", "must be > 0")
        _check(self.max_detector_px > 0, "quality.max_detector_px", "must be > 0")
        _check(self.max_alignment_residual > 0, "quality.max_alignment_residual", "must be > 0")
        _check(self.max_landmark_depth > 0, "quality.max_landmark_depth", "must be > 0")
        _check(self.max_face_depth > 0, "quality.max_face_depth", "must be > 0")
        if self.preset is not None:
            reg.QUALITY_PRESETS.check(self.preset)
        _check(self.preset != "authors" or bool(self.detector), "quality.detector",
               "quality.preset=authors needs a landmark detector (a dotted path, see docs/alignment.md)")


@dataclass
class GenerateSection:
    """What to generate and how it is stored."""

    num_samples: int = 64
    resolution: int = 512
    batch_size: int = 8
    samples_per_shard: int = 256
    image_format: str = "png"  # registries.IMAGE_FORMATS
    image_quality: int = 95
    array_codec: str = "zlib"  # registries.ARRAY_CODECS: segmentation, depth and other arrays
    preview_samples: int = 16
    # what a rerun re-reads of the committed records before resuming (registries.RESUME_CHECKS):
    # records = every byte against its checksum; shards = headers and shard metadata only (faster)
    resume_check: str = "records"

    def validate(self) -> None:
        _check(1 <= self.num_samples <= MAX_SAMPLES, "generate.num_samples", f"must be in 1..{MAX_SAMPLES:,}")
        _check(32 <= self.resolution <= 2048, "generate.resolution", "must be in 32..2048")
        _check(1 <= self.batch_size <= MAX_BATCH, "generate.batch_size", f"must be in 1..{MAX_BATCH}")
        _check(1 <= self.samples_per_shard <= MAX_SAMPLES, "generate.samples_per_shard",
               f"must be in 1..{MAX_SAMPLES:,}")
        reg.IMAGE_FORMATS.check(self.image_format)
        _check(1 <= self.image_quality <= 100, "generate.image_quality", "must be in 1..100")
        reg.ARRAY_CODECS.check(self.array_codec)
        _check(0 <= self.preview_samples <= MAX_PREVIEW, "generate.preview_samples", f"must be in 0..{MAX_PREVIEW}")
        reg.RESUME_CHECKS.check(self.resume_check)


@dataclass
class RayConfig:
    """Cluster knobs; the library config above stays cluster-agnostic."""

    address: Optional[str] = None  # None: start a local Ray; "auto": join the running cluster
    num_cpus: Optional[int] = None  # local Ray only
    actors_min: int = 1
    actors_max: int = 2
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0
    # a lost worker (actor or node) ends one pass of the actor pool; the job then resumes from the
    # committed shards in a fresh pass, at most this many passes in all
    max_attempts: int = 3
    # generation: CPU tasks that encode records while the generator actors make the next samples;
    # None = the cluster's CPUs the actors leave free (at least 1); 0 = the actors encode (one stage)
    encode_workers: Optional[int] = None
    # generation: the object store Ray Data may fill with in-flight samples, MiB; None = half of it
    object_store_budget_mb: Optional[int] = None

    def validate(self) -> None:
        _check(1 <= self.actors_min <= self.actors_max, "ray.actors_min",
               "need 1 <= actors_min <= actors_max")
        _check(self.encode_workers is None or self.encode_workers >= 0, "ray.encode_workers",
               "must be >= 0 (0: encode in the generator actors) or null (auto)")
        _check(self.object_store_budget_mb is None or self.object_store_budget_mb >= 64,
               "ray.object_store_budget_mb", "must be >= 64 (MiB) or null (half of the object store)")
        _check(self.gpus_per_actor >= 0, "ray.gpus_per_actor", "must be >= 0")
        _check(self.max_attempts >= 1, "ray.max_attempts", "must be >= 1")


@dataclass
class FaultsConfig:
    """Testing only: knobs that break a run on purpose, to prove sfray recovers (off by default).

    Never set them for a real dataset. ``misalign`` changes the rendered images (the procedural
    renderer draws the head through this similarity, so ``sfray align`` has a known answer); the
    two ``fail_*`` knobs kill processes (``sfray.generation.faults``) and change no sample.
    """

    # [rx, ry, rz (degrees), tx, ty, tz (world units), scale]
    misalign: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    fail_actor_after_batches: int = -1  # a generation worker dies once after this many calls
    fail_driver_after_shards: int = -1  # the driver SIGKILLs itself once this many shards are logged

    def validate(self) -> None:
        _check(len(self.misalign) == 7 and self.misalign[6] > 0, "faults.misalign",
               "[rx, ry, rz, tx, ty, tz, scale>0]")


@dataclass
class GenerateJobConfig:
    """``sfray generate`` / ``jobs/generate.py``."""

    output_dir: str = "outputs/quickstart"
    seed: int = 0
    generate: GenerateSection = field(default_factory=GenerateSection)
    head: HeadConfig = field(default_factory=HeadConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)  # testing only

    def validate(self) -> None:
        reason = unsafe_output_reason(self.output_dir)
        _check(reason is None, "output_dir", f"{self.output_dir!r} {reason}; name a dataset directory")
        _check(0 <= self.seed < 2**63, "seed", "must be in 0..2^63-1")
        for section in (self.generate, self.head, self.generator, self.sampling, self.camera,
                        self.annotate, self.quality, self.ray, self.faults):
            section.validate()


@dataclass
class AlignSection:
    """``sfray align``: fit the global alignment map on freshly generated samples (docs/alignment.md)."""

    num_samples: int = 24  # samples the map is fitted on
    num_holdout: int = 12  # held-out samples for the before/after report
    holdout_offset: int = 1_000_000  # held-out sample ids start here (disjoint from fitting ids)
    resolution: int = 128  # raster resolution of the fitting losses
    model: str = "affine"  # registries.ALIGN_MODELS: affine (12 dof, like the authors' MLP) | similarity | rigid
    iterations: int = 12  # outer iterations (re-rasterize, re-match), each one Gauss-Newton step
    tolerance: float = 1e-6  # stop when the update changes the map by less than this
    anneal: float = 8.0  # start with the robust scales x this, halved every iteration down to x1
    landmarks: str = "auto"  # registries.LANDMARK_SOURCES (ground_truth: generator extras)
    max_points: int = 800  # surface points per sample for the depth and Chamfer terms
    init: Optional[str] = None  # start from this map file (default identity)
    map_file: str = "alignment_map.safetensors"  # written into output_dir
    loss: AlignLossConfig = field(default_factory=AlignLossConfig)

    def validate(self) -> None:
        _check(self.num_samples >= 1, "align.num_samples", "must be >= 1")
        _check(self.num_holdout >= 1, "align.num_holdout", "must be >= 1")
        _check(self.holdout_offset >= self.num_samples, "align.holdout_offset",
               "must be >= align.num_samples")
        _check(32 <= self.resolution <= 1024, "align.resolution", "must be in 32..1024")
        reg.ALIGN_MODELS.check(self.model)
        _check(1 <= self.iterations <= 1000, "align.iterations", "must be in 1..1000")
        _check(self.tolerance >= 0, "align.tolerance", "must be >= 0")
        _check(self.anneal >= 1, "align.anneal", "must be >= 1")
        reg.LANDMARK_SOURCES.check(self.landmarks)
        _check(self.max_points >= 16, "align.max_points", "must be >= 16")
        _check(bool(self.map_file) and "/" not in self.map_file, "align.map_file",
               "a file name inside output_dir")
        self.loss.validate("align.loss")


@dataclass
class AlignJobConfig(GenerateJobConfig):
    """``sfray align``: the generation sections (to build the same generator) plus ``align``."""

    output_dir: str = "outputs/align"
    align: AlignSection = field(default_factory=AlignSection)

    def validate(self) -> None:
        super().validate()
        self.align.validate()
        _check(self.align.landmarks != "detector" or bool(self.quality.detector), "quality.detector",
               "align.landmarks=detector needs quality.detector (a dotted path to a landmark detector)")
