"""Where the pipeline puts things under ``output_root`` (every name defined here, once).

OUTPUT_ROOT/pipeline.yaml              the resolved pipeline config of the last run
OUTPUT_ROOT/report.md                  the gathered report (tables and figures of every stage)
OUTPUT_ROOT/stages/<stage>/stage.json  done-marker: config hash, seconds, the stage's summary
OUTPUT_ROOT/stages/<stage>/config.yaml the stage's resolved job config
OUTPUT_ROOT/<STAGE_DIRS[stage]>/       the stage's own output (a dataset, a training run, ...)
"""

from __future__ import annotations

from pathlib import Path

PIPELINE_CONFIG_FILE = "pipeline.yaml"
REPORT_FILE = "report.md"
STAGES_DIR = "stages"
MARKER_FILE = "stage.json"
STAGE_CONFIG_FILE = "config.yaml"
LOCK_FILE = "pipeline.lock"

#: Output folder of each stage that writes one (``report`` writes OUTPUT_ROOT/report.md).
STAGE_DIRS = {
    "generate": "dataset",
    "train": "stage1",
    "lapa_like": "lapa_like",
    "finetune": "stage2",
    "evaluate": "evaluation",
}


def stage_dir(root: str | Path, stage: str) -> Path:
    """The output folder of ``stage`` under ``root``."""
    return Path(root) / STAGE_DIRS[stage]


def marker_path(root: str | Path, stage: str) -> Path:
    return Path(root) / STAGES_DIR / stage / MARKER_FILE


def stage_config_path(root: str | Path, stage: str) -> Path:
    return Path(root) / STAGES_DIR / stage / STAGE_CONFIG_FILE
