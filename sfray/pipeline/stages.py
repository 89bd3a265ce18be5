"""The stage table: what each stage loads, which stages it reads, what it must leave behind.

A job stage (generate, train, finetune, evaluate) loads its own job config from the file the
pipeline config names, with the pipeline's wiring overrides (output folders under the output root,
the upstream stage's output as input) and then the user's overrides on top. Stages whose job needs
Ray run through a runner the caller passes in (``sfray.distributed.pipeline`` builds them); the
others (lapa_like, evaluate, report) are plain function calls. docs/quickstart.md describes them.
"""

from __future__ import annotations

import dataclasses
import importlib
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sfray.config.loader import load_config, to_yaml
from sfray.config.pipeline import PipelineJobConfig
from sfray.data.layout import DATASET_YAML, MANIFEST_FILE
from sfray.errors import ConfigError
from sfray.evaluate.report import REPORT_JSON
from sfray.models.io import MODEL_DIR
from sfray.pipeline.layout import REPORT_FILE, stage_dir

#: ``runner(job_config, progress) -> summary``: runs a job stage (e.g. generation on a Ray actor pool).
Runner = Callable[[Any, bool], dict]


@dataclass
class Prepared:
    """A stage ready to run: its loaded job config (or plain settings) and the text its hash covers."""

    name: str
    job: Any
    text: str


@dataclass(frozen=True)
class Stage:
    name: str
    reads: tuple[str, ...]  # stages whose output this one reads (their marker hashes enter this one's)
    outputs: tuple[str, ...]  # paths under the stage folder that a finished stage leaves
    schema: tuple[str, str] | None = None  # (module, class) of the job config, for job stages
    wire: Callable[[Path], list[str]] | None = None  # the pipeline's overrides for the job config
    needs_runner: bool = False  # runs through a runner the caller passes in (Ray)

    def outputs_ok(self, root: Path) -> bool:
        if self.name == "report":
            return (root / REPORT_FILE).is_file()
        base = stage_dir(root, self.name)
        return base.is_dir() and all((base / rel).exists() for rel in self.outputs)


def _wire_generate(root: Path) -> list[str]:
    return [f"output_dir={stage_dir(root, 'generate')}"]


def _wire_train(root: Path) -> list[str]:
    return [f"output_dir={stage_dir(root, 'train')}", "data.source=dataset",
            f"data.dataset_dir={stage_dir(root, 'generate')}"]


def _wire_finetune(root: Path) -> list[str]:
    # the lapa_like stage renders the set, so the job's own "build it if missing" is switched off
    return [f"output_dir={stage_dir(root, 'finetune')}", f"model.stage1={stage_dir(root, 'train')}",
            "benchmark.name=lapa", f"benchmark.root={stage_dir(root, 'lapa_like')}", "benchmark.build_from=null"]


def _wire_evaluate(root: Path) -> list[str]:
    return [f"output_dir={stage_dir(root, 'evaluate')}", f"model.finetuned={stage_dir(root, 'finetune')}",
            "benchmark.name=lapa", f"benchmark.root={stage_dir(root, 'lapa_like')}", "benchmark.build_from=null"]


STAGES: dict[str, Stage] = {
    "generate": Stage("generate", (), (DATASET_YAML, MANIFEST_FILE),
                      ("sfray.config.schema", "GenerateJobConfig"), _wire_generate, needs_runner=True),
    "train": Stage("train", ("generate",), (REPORT_JSON, MODEL_DIR),
                   ("sfray.config.train", "TrainJobConfig"), _wire_train, needs_runner=True),
    "lapa_like": Stage("lapa_like", ("generate",), ()),
    "finetune": Stage("finetune", ("train", "lapa_like"), (REPORT_JSON,),
                      ("sfray.config.finetune", "FinetuneJobConfig"), _wire_finetune, needs_runner=True),
    "evaluate": Stage("evaluate", ("finetune", "lapa_like"), (REPORT_JSON,),
                      ("sfray.config.finetune", "EvaluateJobConfig"), _wire_evaluate),
    "report": Stage("report", ("generate", "train", "lapa_like", "finetune", "evaluate"), ()),
}


def _schema(stage: Stage) -> type:
    module, name = stage.schema  # type: ignore[misc]
    try:
        return getattr(importlib.import_module(module), name)
    except (ModuleNotFoundError, AttributeError) as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name != module:
            raise  # the module exists but something it imports is missing: a real error, not this one
        raise ConfigError(f"stage '{stage.name}' needs {module}.{name}, which this installation of sfray does "
                          f"not have; leave the stage out (e.g. stages=[generate,train,lapa_like,report])") from None


def prepare(cfg: PipelineJobConfig, name: str) -> Prepared:
    """Load (and so validate) what stage ``name`` will run, before any stage runs."""
    stage, root = STAGES[name], Path(cfg.output_root)
    if stage.schema is not None:
        section = getattr(cfg, name)
        overrides = [*stage.wire(root), *section.overrides]  # type: ignore[misc]
        job = load_config(_schema(stage), section.config, overrides)
        return Prepared(name, job, to_yaml(job))
    if name == "lapa_like":
        settings = {**dataclasses.asdict(cfg.lapa_like), "dataset_dir": str(stage_dir(root, "generate"))}
        return Prepared(name, settings, yaml.safe_dump(settings, sort_keys=True))
    return Prepared(name, {"output_root": str(root)}, "")


def run_lapa_like(settings: Mapping[str, Any], out_dir: Path, progress: bool) -> dict:
    """Render the LaPa-layout set from ids past the dataset's (held out from Stage I's training)."""
    from sfray.benchmarks.lapa_like import make_lapa_like

    counts = {split: int(settings[split]) for split in ("train", "val", "test")}
    if out_dir.exists():  # a set from a run that stopped before its marker: not resumable, and cheap
        shutil.rmtree(out_dir)
    written = make_lapa_like(settings["dataset_dir"], out_dir, counts, first_id=settings["first_id"],
                             resolution=settings["resolution"], progress=progress)
    return {"output_dir": str(out_dir), "written": dict(written)}


def run_evaluate(job: Any, progress: bool) -> dict:
    from sfray.evaluate.job import run_evaluation  # type: ignore[import-not-found]

    return run_evaluation(job, progress=progress)


def run_stage(prepared: Prepared, root: Path, runners: Mapping[str, Runner], progress: bool) -> dict:
    """Run one prepared stage; returns its summary (what the marker records)."""
    name = prepared.name
    if name in runners:
        return dict(runners[name](prepared.job, progress) or {})
    if name == "lapa_like":
        return run_lapa_like(prepared.job, stage_dir(root, name), progress)
    if name == "evaluate":
        return dict(run_evaluate(prepared.job, progress) or {})
    if name == "report":
        from sfray.pipeline.report import write_report

        return {"report": str(write_report(root))}
    raise ConfigError(f"stage '{name}' needs a runner (it runs on Ray): use `sfray pipeline` or jobs/pipeline.py")
