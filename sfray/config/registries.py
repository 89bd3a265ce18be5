"""The valid names of every name-valued config key, declared once (docs/architecture.md).

The schema (this package) validates names against these registries; the package that implements
a name attaches its builder to the same registry (``@GENERATOR_KINDS.register("procedural")`` in
``sfray.generators.factory``), so a name is written in exactly one place and the config layer
never imports upward. Registries without builders are plain enumerations (``quality.policy``).
A plugin adds a new name by registering it before the config is loaded.
"""

from __future__ import annotations

from typing import Any

from sfray.conventions import BENCHMARK_TASKS
from sfray.registry import Registry

#: ``head.kind``: builders ``(HeadConfig) -> HeadAssets-backed HeadModel`` (sfray.head.factory).
HEAD_KINDS: Registry[Any] = Registry("head.kind", "head model", ("procedural", "flame"))
#: ``head.dtype``: values are torch dtypes (sfray.head.layer).
HEAD_DTYPES: Registry[Any] = Registry("head.dtype", "head dtype", ("float32", "float64"))
#: ``generator.kind``: builders ``(cfg, head, device) -> Generator`` (sfray.generators.factory).
GENERATOR_KINDS: Registry[Any] = Registry("generator.kind", "generator", ("procedural", "next3d"))
#: ``generator.next3d.precision``: (autocast dtype or None, TF32 allowed) (sfray.generators.next3d.perf).
PRECISIONS: Registry[Any] = Registry("generator.next3d.precision", "precision", ("fp32", "tf32", "bf16", "fp16"))
#: ``generator.next3d.raster_compat``: texture rasterization arithmetic (docs/next3d.md).
RASTER_COMPAT: Registry[Any] = Registry("generator.next3d.raster_compat", "texture rasterization mode",
                                        ("pytorch3d", "exact"))
#: ``generator.procedural.background``: painters (sfray.generators.procedural.background).
BACKGROUNDS: Registry[Any] = Registry("generator.procedural.background", "background kind",
                                      ("solid", "gradient", "noise"))
#: ``sampling.strategy``: draw functions (sfray.sampling.strategies).
SAMPLING_STRATEGIES: Registry[Any] = Registry("sampling.strategy", "sampling strategy",
                                              ("gaussian", "uniform", "truncated", "sobol", "diverse",
                                               "loss_resample", "loss_propose"))
#: Strategies whose rows come from a guide file made from a trained model's losses (docs/sweeps.md).
GUIDED_STRATEGIES = ("loss_resample", "loss_propose")
#: ``camera.preset``: pinned ranges (sfray.geometry.camera_sampling); ``custom`` uses the config's.
CAMERA_PRESETS: Registry[Any] = Registry("camera.preset", "camera preset", ("paper", "release", "custom"))
#: ``camera.conditioning``: the camera label Next3D's mapping network is conditioned on
#: (frontal: Next3D's scripts, one identity across views; render: the sample's own camera, as the
#: SynthForge release does; docs/synthforge.md).
CONDITIONING_CAMERAS: Registry[Any] = Registry("camera.conditioning", "conditioning camera", ("frontal", "render"))
#: ``annotate.raster_backend``: rasterize functions (sfray.geometry.raster_backends).
RASTER_BACKENDS: Registry[Any] = Registry("annotate.raster_backend", "raster backend", ("torch", "pytorch3d"))
#: ``annotate.contour``: camera (follows the sample's camera) | head (the head model's own choice).
CONTOUR_MODES: Registry[Any] = Registry("annotate.contour", "contour mode", ("camera", "head"))
#: ``align.model`` and ``annotate.refine.model``: values are parameter counts (sfray.align.model).
ALIGN_MODELS: Registry[Any] = Registry("align.model", "alignment model", ("affine", "similarity", "rigid"))
#: ``align.loss.robust`` and ``annotate.refine.loss.robust``.
ROBUST_LOSSES: Registry[Any] = Registry("align.loss.robust", "robust loss", ("l2", "huber", "cauchy"))
#: ``align.landmarks``: where the landmark term's targets come from.
LANDMARK_SOURCES: Registry[Any] = Registry("align.landmarks", "landmark source",
                                           ("auto", "detector", "ground_truth", "none"))
#: ``quality.policy``.
QUALITY_POLICIES: Registry[Any] = Registry("quality.policy", "quality policy", ("keep", "flag", "drop"))
#: ``quality.preset`` (null for none): authors (the release's detector rule), strict (drop samples
#: whose face region disagrees in depth with the generator's; docs/alignment.md).
QUALITY_PRESETS: Registry[Any] = Registry("quality.preset", "quality preset", ("authors", "strict"))
#: ``generate.image_format``: encoders (sfray.data.record); ``webp_lossless`` and ``zstd`` (raw
#: pixels, zstd-compressed) make records of format version 2 (docs/dataset.md, "Codecs").
IMAGE_FORMATS: Registry[Any] = Registry("generate.image_format", "image format",
                                        ("png", "jpeg", "webp", "webp_lossless", "zstd"))
#: ``generate.array_codec``: how label maps, depth and the other arrays are compressed (sfray.data.record):
#: zlib = PNG label maps + zlib arrays (format version 1), zstd = zstd-compressed raw arrays (version 2).
ARRAY_CODECS: Registry[Any] = Registry("generate.array_codec", "array codec", ("zlib", "zstd"))
#: ``generate.resume_check``: what a rerun re-reads of the committed records before it resumes
#: (records: every byte against its checksum; shards: headers and shard metadata only).
RESUME_CHECKS: Registry[Any] = Registry("generate.resume_check", "resume check", ("records", "shards"))

# ---- training, finetuning and evaluation (sfray.config.train, sfray.config.finetune) ----------
#: ``runner`` of sfray train / finetune: ray (Ray Train) | local (this process, plain torch).
TRAIN_RUNNERS: Registry[Any] = Registry("runner", "runner", ("ray", "local"))
#: ``data.source``: a written dataset, or a live generation streamed into training.
DATA_SOURCES: Registry[Any] = Registry("data.source", "data source", ("dataset", "stream"))
#: ``crop.mode``: the whole image, or a square around the landmarks.
CROP_MODES: Registry[Any] = Registry("crop.mode", "crop mode", ("full", "landmarks"))
#: ``loss.keypoint_form``: which keypoint terms train (docs/training.md, losses).
KEYPOINT_FORMS: Registry[Any] = Registry("loss.keypoint_form", "keypoint loss form", ("heatmap", "coord", "both"))
#: ``loss.keypoint_coord``: the coordinate term's distance.
KEYPOINT_COORD_METRICS: Registry[Any] = Registry("loss.keypoint_coord", "keypoint distance", ("squared", "euclidean"))
#: ``ssl.metric`` and ``ssl.reduction``: the equivariance term's error and how it is summed.
SSL_METRICS: Registry[Any] = Registry("ssl.metric", "equivariance error", ("l2", "l1"))
SSL_REDUCTIONS: Registry[Any] = Registry("ssl.reduction", "equivariance reduction", ("mean", "sum"))
#: ``optim.schedule`` and ``optim.schedule_unit``: the learning-rate curve and how often it moves.
LR_SCHEDULES: Registry[Any] = Registry("optim.schedule", "learning-rate schedule", ("cosine", "constant"))
SCHEDULE_UNITS: Registry[Any] = Registry("optim.schedule_unit", "schedule unit", ("step", "epoch"))
#: ``train.amp``: mixed precision (auto: bf16 on a GPU, off on a CPU).
AMP_MODES: Registry[Any] = Registry("train.amp", "mixed-precision mode", ("auto", "off", "bf16", "fp16"))
#: ``benchmark.tasks``: what a Stage II run may train (the benchmark readers' task names).
FINETUNE_TASKS: Registry[Any] = Registry("benchmark.tasks", "task", BENCHMARK_TASKS)
#: ``benchmark.check``: decode every file when scanning, or read headers only.
BENCHMARK_CHECKS: Registry[Any] = Registry("benchmark.check", "benchmark check", ("full", "quick"))
#: ``evaluate.norm``: the NME normaliser (inter_pupil: 68 points only; docs/evaluation.md).
NME_NORMS: Registry[Any] = Registry("evaluate.norm", "NME normaliser", ("inter_ocular", "inter_pupil"))

ALL: tuple[Registry[Any], ...] = (
    HEAD_KINDS, HEAD_DTYPES, GENERATOR_KINDS, PRECISIONS, RASTER_COMPAT, BACKGROUNDS, SAMPLING_STRATEGIES,
    CAMERA_PRESETS, CONDITIONING_CAMERAS, RASTER_BACKENDS, CONTOUR_MODES, ALIGN_MODELS, ROBUST_LOSSES,
    LANDMARK_SOURCES, QUALITY_POLICIES, QUALITY_PRESETS, IMAGE_FORMATS, ARRAY_CODECS, RESUME_CHECKS,
    TRAIN_RUNNERS, DATA_SOURCES, CROP_MODES, KEYPOINT_FORMS, KEYPOINT_COORD_METRICS, SSL_METRICS, SSL_REDUCTIONS,
    LR_SCHEDULES, SCHEDULE_UNITS, AMP_MODES, FINETUNE_TASKS, BENCHMARK_CHECKS, NME_NORMS,
)
