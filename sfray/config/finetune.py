"""Config schemas of Stage II (``sfray finetune``) and of benchmark evaluation (``sfray evaluate``).

Stage II trains small label-finetuning nets on a real benchmark's train split on top of a frozen
Stage I model, then scores the direct mapping of Stage I's predictions and the finetuned nets on
the benchmark's test splits (docs/training.md, Stage II). The ``optim``, ``train`` and ``ray``
sections are Stage I's (``sfray.config.train``); ``optim.lr_heads`` is the nets' learning rate
(there is no encoder to train: ``optim.lr_encoder`` is unused). Benchmark names and the Stage I
model size are checked against their registries when the job starts, before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from sfray.config import registries as reg
from sfray.config.train import OptimSection, TrainRaySection, TrainSection, _check


@dataclass
class FinetuneModelSection:
    """The frozen Stage I model and the shape of the φ_L nets."""

    stage1: Optional[str] = None  # a `sfray train` output_dir, its model/ or a checkpoints/step_N/
    stage1_size: Optional[str] = None  # the Stage I model size expected (a MODEL_SIZES name; None: any)
    use_features: bool = False  # feed the shared features f_s to the nets too (SB+LF w/ f_s)
    hidden: int = 32  # hidden channels of each net
    layers: int = 3  # conv layers of each net
    parsing_prior: bool = True  # start the parsing net at the direct mapping (false: from scratch, as the paper)

    def validate(self) -> None:
        _check(bool(self.stage1), "model.stage1", "the Stage I model to finetune on, e.g. "
               "model.stage1=outputs/stage1_quickstart")
        _check(self.hidden >= 1, "model.hidden", "must be >= 1")
        _check(1 <= self.layers <= 16, "model.layers", "must be in 1..16")


@dataclass
class BenchmarkSection:
    """Which real benchmark, where, and which of its splits train and score."""

    name: str = "lapa"  # a benchmark name (sfray.benchmarks.BENCHMARKS): 300w | lapa | lapa-d | celebamask-hq
    root: Optional[str] = None  # the benchmark's folder, in its original layout (docs/benchmarks-data.md)
    lapa_root: Optional[str] = None  # lapa-d only: the LaPa folder when it is not inside root
    train_split: str = "train"
    val_split: str = "auto"  # watched while training: auto (`val` if usable, else none) | none | a split name
    eval_splits: list[str] = field(default_factory=list)  # empty: the benchmark's test splits
    tasks: list[str] = field(default_factory=list)  # empty: every task the benchmark has ground truth for
    check: str = "full"  # full: decode every file when scanning | quick: headers only
    max_train_samples: int = 0  # use only the first N training images (0: all)
    # Quickstart convenience: when root does not exist yet, render a LaPa-like set there from this
    # procedural sfray dataset (`sfray benchmark make-lapa-like`), with these counts per split.
    build_from: Optional[str] = None
    build_counts: dict[str, int] = field(default_factory=lambda: {"train": 64, "val": 0, "test": 32})

    def validate(self) -> None:
        _check(bool(self.root), "benchmark.root", "the benchmark folder, e.g. benchmark.root=/data/LaPa")
        for t in self.tasks:
            reg.FINETUNE_TASKS.check(t)
        reg.BENCHMARK_CHECKS.check(self.check)
        _check(bool(self.val_split), "benchmark.val_split", "auto | none | a split name")
        _check(self.max_train_samples >= 0, "benchmark.max_train_samples", "must be >= 0")
        _check(self.build_from is None or self.name == "lapa", "benchmark.build_from",
               "builds a LaPa-like set, so it needs benchmark.name=lapa")
        _check(all(v >= 0 for v in self.build_counts.values()), "benchmark.build_counts", "counts must be >= 0")


@dataclass
class FinetuneCropSection:
    input_size: int = 256  # side of the protocol crop fed to Stage I (a multiple its size accepts)

    def validate(self) -> None:
        _check(32 <= self.input_size <= 1024 and self.input_size % 16 == 0, "crop.input_size",
               "a multiple of 16 in 32..1024")


@dataclass
class FinetuneLossSection:
    """Task weights of the joint loss (the authors' joint LaPa run: depth 0.5, parsing 1, landmarks 0.2)."""

    parsing: float = 1.0  # cross-entropy over the benchmark's classes (ignored pixels left out)
    parsing_dice: float = 0.0  # soft Dice over the benchmark's classes, added to the parsing term
    landmarks: float = 0.2  # mean point distance in units of the crop side
    depth: float = 0.5  # masked L1 in the benchmark's depth units

    def validate(self) -> None:
        for name in (*reg.FINETUNE_TASKS, "parsing_dice"):
            value = getattr(self, name)
            _check(value >= 0.0, f"loss.{name}", f"a loss weight must be >= 0, got {value}")


@dataclass
class EvalSection:
    """The scoring pass (shared by ``sfray finetune``'s final report and ``sfray evaluate``)."""

    batch_size: int = 8
    norm: str = "inter_ocular"  # NME normaliser: inter_ocular | inter_pupil (68 points only)
    threshold: float = 0.08  # FR / AUC threshold
    figure_images: int = 3  # images in qualitative.png (each as a direct-mapping and a finetuned row)
    predictions: bool = True  # write the predictions in `sfray score`'s directory format
    device: str = "auto"  # auto | cpu | cuda | cuda:N (sfray evaluate)

    def validate(self) -> None:
        _check(self.batch_size >= 1, "evaluate.batch_size", "must be >= 1")
        reg.NME_NORMS.check(self.norm)
        _check(0 < self.threshold <= 1, "evaluate.threshold", "must be in (0, 1]")
        _check(self.figure_images >= 0, "evaluate.figure_images", "must be >= 0")


def _stage2_optim() -> OptimSection:
    return OptimSection(lr_heads=1e-4, lr_encoder=0.0, min_lr=1e-6)


@dataclass
class FinetuneJobConfig:
    """``sfray finetune``: Stage II label finetuning on a real benchmark, then its report."""

    output_dir: str = "outputs/stage2"
    seed: int = 0
    runner: str = "ray"  # ray: Ray Train TorchTrainer | local: this process, plain torch
    model: FinetuneModelSection = field(default_factory=FinetuneModelSection)
    benchmark: BenchmarkSection = field(default_factory=BenchmarkSection)
    crop: FinetuneCropSection = field(default_factory=FinetuneCropSection)
    loss: FinetuneLossSection = field(default_factory=FinetuneLossSection)
    optim: OptimSection = field(default_factory=_stage2_optim)
    train: TrainSection = field(default_factory=TrainSection)
    ray: TrainRaySection = field(default_factory=TrainRaySection)
    evaluate: EvalSection = field(default_factory=EvalSection)

    def validate(self) -> None:
        reg.TRAIN_RUNNERS.check(self.runner)
        for section in (self.model, self.benchmark, self.crop, self.loss, self.optim, self.train, self.ray,
                        self.evaluate):
            section.validate()


@dataclass
class EvaluateModelSection:
    stage1: Optional[str] = None  # the Stage I model (default: the one the finetuned model was trained on)
    stage1_size: Optional[str] = None
    finetuned: Optional[str] = None  # a `sfray finetune` output_dir or its model/ (None: direct mapping only)

    def validate(self) -> None:
        _check(bool(self.stage1 or self.finetuned), "model", "set model.finetuned (a `sfray finetune` output) "
               "and/or model.stage1 (a `sfray train` output)")


@dataclass
class EvaluateJobConfig:
    """``sfray evaluate``: score the direct mapping and a finetuned model on a benchmark's test splits."""

    output_dir: str = "outputs/evaluate"
    model: EvaluateModelSection = field(default_factory=EvaluateModelSection)
    benchmark: BenchmarkSection = field(default_factory=BenchmarkSection)
    input_size: Optional[int] = None  # crop side (None: the finetuned model's, else 256)
    evaluate: EvalSection = field(default_factory=EvalSection)

    def validate(self) -> None:
        if self.input_size is not None:
            FinetuneCropSection(self.input_size).validate()
        for section in (self.model, self.benchmark, self.evaluate):
            section.validate()
