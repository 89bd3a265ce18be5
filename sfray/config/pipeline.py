"""Config schema of the end-to-end pipeline (``sfray pipeline`` / ``jobs/pipeline.py``).

The pipeline runs other jobs one after another under one output root. It does not copy their
keys: each stage names its own job config (a ``configs/<job>/*.yaml``) plus dotlist overrides,
and the pipeline adds the overrides that wire the stages together (each stage's ``output_dir``
under ``output_root``, the dataset Stage I trains on, the model Stage II starts from). Which
stages run, and what a stage's output is, are in docs/quickstart.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from sfray.errors import ConfigError
from sfray.io.paths import unsafe_output_reason

#: Every stage, in the order they run; ``stages`` picks a subset (kept in this order).
STAGE_ORDER = ("generate", "train", "lapa_like", "finetune", "evaluate", "report")


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"bad value for config key '{key}': {msg}")


@dataclass
class JobStageSection:
    """A stage that runs another job: its config file and overrides on top of it."""

    config: Optional[str] = None  # the job's config YAML, e.g. configs/train/quickstart.yaml
    overrides: list[str] = field(default_factory=list)  # dotlist overrides for that config (key.sub=value)

    def validate(self, key: str, needed: bool) -> None:
        _check(not needed or bool(self.config), f"{key}.config",
               f"stage '{key}' runs, so it needs a job config, e.g. {key}.config=configs/<job>/quickstart.yaml")
        for item in self.overrides:
            _check("=" in item and not item.startswith("="), f"{key}.overrides",
                   f"'{item}' is not of the form key.sub=value")
            _check(item.split("=", 1)[0].strip() != "output_dir", f"{key}.overrides",
                   "output_dir is set by the pipeline (under output_root); change output_root instead")


@dataclass
class LapaLikeSection:
    """The LaPa-layout set rendered from ids the generated dataset does not hold (held-out renders)."""

    train: int = 64  # images in the train split (what Stage II fine-tunes on)
    val: int = 16  # images in the val split
    test: int = 32  # images in the test split (what the before/after figures score)
    resolution: Optional[int] = None  # image side; None: the dataset's resolution
    first_id: Optional[int] = None  # first sample id rendered; None: the first id past the dataset's ids

    def validate(self) -> None:
        for split in ("train", "val", "test"):
            _check(getattr(self, split) >= 0, f"lapa_like.{split}", "must be >= 0")
        _check(self.train + self.val + self.test > 0, "lapa_like", "at least one split must hold images")
        _check(self.test > 0, "lapa_like.test", "the before/after figures need a test split, > 0")
        _check(self.resolution is None or 32 <= self.resolution <= 2048, "lapa_like.resolution",
               "None or a side in 32..2048")
        _check(self.first_id is None or self.first_id >= 0, "lapa_like.first_id", "None or >= 0")


@dataclass
class PipelineJobConfig:
    """``sfray pipeline``: generate -> Stage I -> LaPa-like set -> Stage II -> evaluate -> report."""

    output_root: str = "outputs/pipeline"  # every stage writes under this folder; report.md lands here
    stages: list[str] = field(default_factory=lambda: list(STAGE_ORDER))  # which stages run (in pipeline order)
    force: list[str] = field(default_factory=list)  # stages to rerun even when complete with the same config
    generate: JobStageSection = field(default_factory=lambda: JobStageSection("configs/generate/quickstart.yaml"))
    train: JobStageSection = field(default_factory=lambda: JobStageSection("configs/train/quickstart.yaml"))
    lapa_like: LapaLikeSection = field(default_factory=LapaLikeSection)
    finetune: JobStageSection = field(default_factory=lambda: JobStageSection("configs/finetune/quickstart.yaml"))
    evaluate: JobStageSection = field(default_factory=lambda: JobStageSection("configs/evaluate/quickstart.yaml"))

    def validate(self) -> None:
        reason = unsafe_output_reason(self.output_root)
        _check(reason is None, "output_root", f"'{self.output_root}' {reason}; name a folder of its own, "
               "e.g. output_root=outputs/pipeline")
        _check(bool(self.stages), "stages", f"name at least one of {', '.join(STAGE_ORDER)}")
        for key in ("stages", "force"):
            for name in getattr(self, key):
                _check(name in STAGE_ORDER, key, f"'{name}' is not a stage; the stages are {' | '.join(STAGE_ORDER)}")
            _check(len(set(getattr(self, key))) == len(getattr(self, key)), key, "a stage is named twice")
        for name in ("generate", "train", "finetune", "evaluate"):
            getattr(self, name).validate(name, name in self.stages)
        if "lapa_like" in self.stages:
            self.lapa_like.validate()

    def ordered_stages(self) -> list[str]:
        """``stages`` in pipeline order, whatever order the user wrote them in."""
        return [s for s in STAGE_ORDER if s in self.stages]
