"""Config schema of Stage I training (``sfray train`` / ``jobs/train_stage1.py``).

The sections are the ones a trainer reads: ``model``, ``data`` (a dataset directory or a live
generation stream, and the held-out split), ``crop`` and ``augment`` (what the network sees),
``loss`` / ``ssl`` (the weighted terms), ``optim`` (two learning rates, cosine with a floor),
``train`` (the generic loop: steps, checkpoints, resume, validation), ``ray`` (Train workers) and
``faults`` (testing only). Stage II reuses ``optim``, ``train`` and ``ray``. Every preset and
the paper-vs-release differences are described in docs/training.md. Name-valued keys whose names
live in a registry above this package (``model.size``) are checked when the trainer starts,
before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from sfray.config import registries as reg
from sfray.errors import ConfigError


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"bad value for config key '{key}': {msg}")


def _prob(value: float, key: str) -> None:
    _check(0.0 <= value <= 1.0, key, f"a probability in [0, 1], got {value}")


def _pair(value: list[float], key: str, low: float = float("-inf")) -> None:
    _check(len(value) == 2 and low <= value[0] <= value[1], key, f"[low, high] with {low} <= low <= high, got {value}")


@dataclass
class ModelSection:
    size: str = "tiny"  # a name of sfray.models.MODEL_SIZES: tiny | paper | release
    init_from: Optional[str] = None  # start from this checkpoint's weights (same size), not a resume


@dataclass
class StreamSection:
    """``data.source=stream``: samples come from a generation pipeline beside the trainer."""

    generate_config: Optional[str] = None  # a configs/generate/*.yaml: what the generator makes
    overrides: list[str] = field(default_factory=list)  # dotlist overrides for that config
    samples_per_epoch: int = 512  # fresh sample ids per epoch (epoch e uses a new id range)
    val_samples: int = 64  # held-out samples, made once from ids starting at val_id_offset
    val_id_offset: int = 1_000_000_000
    actors: int = 1  # generator actors
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0

    def validate(self, enabled: bool) -> None:
        _check(not enabled or bool(self.generate_config), "data.stream.generate_config",
               "data.source=stream needs a generation config, e.g. configs/generate/quickstart.yaml")
        _check(self.samples_per_epoch >= 1, "data.stream.samples_per_epoch", "must be >= 1")
        _check(self.val_samples >= 1, "data.stream.val_samples", "must be >= 1")
        _check(self.val_id_offset >= 0, "data.stream.val_id_offset", "must be >= 0")
        _check(self.actors >= 1, "data.stream.actors", "must be >= 1")
        _check(self.cpus_per_actor > 0 and self.gpus_per_actor >= 0, "data.stream.cpus_per_actor",
               "cpus_per_actor > 0 and gpus_per_actor >= 0")


@dataclass
class DataSection:
    """Where training samples come from and which ones are held out (docs/training.md, split)."""

    source: str = "dataset"  # dataset | stream
    dataset_dir: Optional[str] = None  # an sfray dataset directory (data.source=dataset)
    val_dataset_dir: Optional[str] = None  # held out: all of this dataset, and all of dataset_dir trains
    val_fraction: float = 0.1  # held-out share of sample ids (hash of the id, see docs/training.md)
    split_salt: int = 0  # changes which ids are held out, deterministically
    max_val_samples: int = 0  # cap on the held-out samples scored (0 = all)
    num_workers: int = 1  # decoding processes of the local runner's DataLoader
    stream: StreamSection = field(default_factory=StreamSection)

    def validate(self) -> None:
        reg.DATA_SOURCES.check(self.source)
        _check(self.source != "dataset" or bool(self.dataset_dir), "data.dataset_dir",
               "data.source=dataset needs a dataset directory, e.g. data.dataset_dir=outputs/quickstart")
        _check(0.0 < self.val_fraction < 1.0, "data.val_fraction", "must be in (0, 1)")
        _check(not self.val_dataset_dir or self.source == "dataset", "data.val_dataset_dir",
               "a separate held-out dataset needs data.source=dataset")
        _check(self.max_val_samples >= 0, "data.max_val_samples", "must be >= 0")
        _check(self.num_workers >= 0, "data.num_workers", "must be >= 0")
        self.stream.validate(self.source == "stream")


@dataclass
class CropSection:
    """The face crop that becomes the model input (docs/training.md, crop)."""

    mode: str = "full"  # full: the whole image | landmarks: a square around the landmarks
    input_size: int = 256  # model input side, pixels
    scale: float = 1.5  # landmarks mode: crop side = scale x the landmarks' bounding-box side

    def validate(self) -> None:
        reg.CROP_MODES.check(self.mode)
        _check(32 <= self.input_size <= 1024 and self.input_size % 16 == 0, "crop.input_size",
               "a multiple of 16 in 32..1024")
        _check(0.5 <= self.scale <= 8.0, "crop.scale", "must be in [0.5, 8]")


@dataclass
class AugmentSection:
    """Training augmentations, label-consistent (docs/training.md, augmentations)."""

    enabled: bool = True
    flip_prob: float = 0.5
    rotation_deg: float = 15.0  # uniform in [-r, r]
    scale_range: list[float] = field(default_factory=lambda: [0.9, 1.1])
    shift: float = 0.05  # uniform in [-s, s] x crop side, per axis
    perspective: float = 0.05  # corner jitter, fraction of the crop side
    perspective_prob: float = 0.3
    blur_prob: float = 0.2
    blur_sigma: list[float] = field(default_factory=lambda: [0.3, 1.5])
    erase_prob: float = 0.2
    noise_prob: float = 0.2
    noise_std: float = 0.03  # images in [0, 1]
    color_prob: float = 0.8
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    gamma_prob: float = 0.0
    gamma_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    grayscale_prob: float = 0.0

    def validate(self) -> None:
        for name in ("flip_prob", "perspective_prob", "blur_prob", "erase_prob", "noise_prob",
                     "color_prob", "gamma_prob", "grayscale_prob"):
            _prob(getattr(self, name), f"augment.{name}")
        _check(0.0 <= self.rotation_deg <= 180.0, "augment.rotation_deg", "must be in [0, 180]")
        _pair(self.scale_range, "augment.scale_range", low=1e-3)
        _pair(self.blur_sigma, "augment.blur_sigma", low=1e-3)
        _pair(self.gamma_range, "augment.gamma_range", low=1e-3)
        for name in ("shift", "perspective", "noise_std", "brightness", "contrast", "saturation"):
            _check(0.0 <= getattr(self, name) <= 1.0, f"augment.{name}", "must be in [0, 1]")


@dataclass
class LossSection:
    """Task weights (lambda) and the keypoint loss form (docs/training.md, losses)."""

    segmentation: float = 1.0
    depth: float = 1.0
    keypoints: float = 1.0
    ssl: float = 0.0
    seg_dice: float = 0.0  # weight of a soft Dice term beside the cross-entropy (0: cross-entropy only)
    keypoint_form: str = "both"  # heatmap | coord | both
    keypoint_coord: str = "squared"  # squared (mean squared error) | euclidean (sum of point distances)
    heatmap_sigma: float = 1.5  # Gaussian sigma of the heatmap targets, in heatmap cells

    def validate(self) -> None:
        for name in ("segmentation", "depth", "keypoints", "ssl", "seg_dice"):
            value = getattr(self, name)
            _check(value >= 0.0, f"loss.{name}", f"a loss weight must be >= 0, got {value}")
        _check(self.segmentation + self.depth + self.keypoints > 0, "loss",
               "at least one of loss.segmentation, loss.depth, loss.keypoints must be > 0")
        reg.KEYPOINT_FORMS.check(self.keypoint_form)
        reg.KEYPOINT_COORD_METRICS.check(self.keypoint_coord)
        _check(self.heatmap_sigma > 0, "loss.heatmap_sigma", "must be > 0")


@dataclass
class SslSection:
    """The equivariance loss: a random affine applied to the image and to its features."""

    rotation_deg: float = 30.0  # uniform in [-r, r]
    translation: float = 0.1  # uniform in [-t, t] x input side, per axis
    scale_range: list[float] = field(default_factory=lambda: [1.0, 1.0])
    metric: str = "l2"  # l2 (squared) | l1
    reduction: str = "mean"  # mean (over valid elements) | sum (the release)
    mask_borders: bool = True  # ignore pixels the warp filled from outside the image
    detach_target: bool = True  # no gradient through the warped features of the original image

    def validate(self) -> None:
        _check(0.0 <= self.rotation_deg <= 180.0, "ssl.rotation_deg", "must be in [0, 180]")
        _check(0.0 <= self.translation <= 1.0, "ssl.translation", "must be in [0, 1]")
        _pair(self.scale_range, "ssl.scale_range", low=1e-3)
        reg.SSL_METRICS.check(self.metric)
        reg.SSL_REDUCTIONS.check(self.reduction)


@dataclass
class OptimSection:
    """AdamW with one learning rate for the encoder and one for the heads, cosine to a floor."""

    lr_heads: float = 1e-3
    lr_encoder: float = 1e-4
    min_lr: float = 1e-6  # cosine floor (an absolute learning rate, for both groups)
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0  # linear warm-up from 0 over this many optimizer steps
    schedule: str = "cosine"  # cosine | constant
    schedule_unit: str = "step"  # step (smooth) | epoch (the release: one value per epoch)
    grad_clip: float = 0.0  # max global gradient norm (0 = off)

    def validate(self) -> None:
        _check(self.lr_heads > 0 and self.lr_encoder >= 0, "optim.lr_heads", "lr_heads > 0, lr_encoder >= 0")
        _check(self.min_lr >= 0, "optim.min_lr", "must be >= 0")
        _check(self.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optim.betas", "two numbers in [0, 1)")
        _check(self.warmup_steps >= 0, "optim.warmup_steps", "must be >= 0")
        reg.LR_SCHEDULES.check(self.schedule)
        reg.SCHEDULE_UNITS.check(self.schedule_unit)
        _check(self.grad_clip >= 0, "optim.grad_clip", "must be >= 0")


@dataclass
class TrainSection:
    """The generic loop (shared with Stage II): length, precision, checkpoints, validation."""

    epochs: int = 10
    max_steps: int = -1  # stop after this many optimizer steps (-1: epochs decide)
    batch_size: int = 16  # per worker
    accumulate: int = 1  # micro-batches per optimizer step
    amp: str = "auto"  # auto (bf16 on a GPU, off on a CPU) | off | bf16 | fp16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch intra-op threads (0: torch's default; under Ray: ray.cpus_per_worker)
    checkpoint_every: int = 500  # optimizer steps between checkpoints (0: only at the end)
    keep_checkpoints: int = 2
    resume: str = "auto"  # auto: continue output_dir's run | never: refuse if one exists | a checkpoint dir
    validate_every: int = 1  # epochs between validations (the last epoch always validates)
    val_batch_size: int = 32
    figure_samples: int = 8  # validation samples drawn into predictions.png (0: none)
    predictions: bool = True  # write predictions.npz for the held-out split

    def validate(self) -> None:
        _check(self.epochs >= 1, "train.epochs", "must be >= 1")
        _check(self.max_steps == -1 or self.max_steps >= 1, "train.max_steps", "-1 or >= 1")
        _check(self.batch_size >= 1, "train.batch_size", "must be >= 1")
        _check(self.accumulate >= 1, "train.accumulate", "must be >= 1")
        reg.AMP_MODES.check(self.amp)
        _check(self.threads >= 0, "train.threads", "must be >= 0 (0: torch's default)")
        _check(self.checkpoint_every >= 0, "train.checkpoint_every", "must be >= 0")
        _check(self.keep_checkpoints >= 1, "train.keep_checkpoints", "must be >= 1")
        _check(bool(self.resume), "train.resume", "auto | never | a checkpoint directory")
        _check(self.validate_every >= 1, "train.validate_every", "must be >= 1")
        _check(self.val_batch_size >= 1, "train.val_batch_size", "must be >= 1")
        _check(self.figure_samples >= 0, "train.figure_samples", "must be >= 0")


@dataclass
class TrainRaySection:
    """Ray Train: how many workers, on what, how many restarts."""

    address: Optional[str] = None  # None: a private local Ray | auto | HOST:PORT
    num_cpus: Optional[int] = None  # logical CPUs of a local Ray (default: enough for the job)
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    max_failures: int = 0  # worker-group restarts from the last checkpoint (-1: unlimited)
    storage_path: Optional[str] = None  # Ray Train's run storage (default output_dir/ray)

    def validate(self) -> None:
        _check(self.num_workers >= 1, "ray.num_workers", "must be >= 1")
        _check(self.cpus_per_worker > 0, "ray.cpus_per_worker", "must be > 0")
        _check(self.max_failures >= -1, "ray.max_failures", "-1 (unlimited) or >= 0")


@dataclass
class FaultsSection:
    """Testing only: injected failures, each fires once per output_dir (a marker file)."""

    kill_worker_at_step: int = -1  # the rank-0 worker exits hard when it reaches this step

    def validate(self) -> None:
        _check(self.kill_worker_at_step >= -1, "faults.kill_worker_at_step", "-1 (off) or a step")


#: Keys that must not change when a run resumes (docs/training.md, resume).
RESUME_KEYS = ("model.size", "crop.mode", "crop.input_size", "crop.scale", "data.source",
               "data.val_fraction", "data.split_salt", "train.batch_size", "train.accumulate")


@dataclass
class TrainJobConfig:
    """``sfray train``: Stage I, the multi-task model on synthetic data."""

    output_dir: str = "outputs/stage1"
    seed: int = 0
    runner: str = "ray"  # ray: Ray Train TorchTrainer | local: this process, plain torch
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    crop: CropSection = field(default_factory=CropSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    loss: LossSection = field(default_factory=LossSection)
    ssl: SslSection = field(default_factory=SslSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    ray: TrainRaySection = field(default_factory=TrainRaySection)
    faults: FaultsSection = field(default_factory=FaultsSection)

    def validate(self) -> None:
        reg.TRAIN_RUNNERS.check(self.runner)
        _check(self.runner == "ray" or self.data.source == "dataset", "runner",
               "data.source=stream needs runner=ray (the generator actors run on Ray)")
        for section in (self.data, self.crop, self.augment, self.loss, self.ssl, self.optim, self.train,
                        self.ray, self.faults):
            section.validate()
