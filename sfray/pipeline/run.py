"""Run the stages in order; skip the complete ones, resume the interrupted ones, redo the changed ones.

Before a stage runs, its marker is written with status "running" and the hash of its config; when
it returns, with status "done". So on the next run a stage is:

- skipped when its marker says done with the same hash and its output files are all there;
- resumed (run again on its existing output, which every job resumes) when the hash is the same
  but the stage did not finish or its output is incomplete;
- redone from scratch (its output folder removed first) when the hash differs: its own config
  changed, or a stage it reads from was redone; or when it is named in ``force``.

Every stage's config is loaded before the first one runs, so a typo in the last stage's overrides
fails at once, with nothing written. The report stage always runs (it only reads).
"""

from __future__ import annotations

import resource
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sfray.config.loader import save_config
from sfray.config.pipeline import PipelineJobConfig
from sfray.io.atomic import atomic_write_text
from sfray.io.lock import directory_lock
from sfray.pipeline.layout import LOCK_FILE, PIPELINE_CONFIG_FILE, REPORT_FILE, stage_config_path, stage_dir
from sfray.pipeline.marker import clear_marker, config_hash, read_marker, write_marker
from sfray.pipeline.stages import STAGES, Runner, prepare, run_stage

#: Marker statuses.
RUNNING, DONE = "running", "done"


def _log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _compact(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What a marker keeps of a stage's summary: scalars and the file table (reports stay in their files)."""
    keep: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            keep[key] = value
        elif key in ("files", "written") and isinstance(value, Mapping):
            keep[key] = {str(k): v for k, v in value.items() if isinstance(v, (str, int, float))}
    return keep


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that have exited and been waited for. Ray
    actors and workers are not among them, so this counts in-process work only (Stage I with
    runner=local, the LaPa-like renders): a hint of the stage's cost on a busy machine."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def plan_stages(cfg: PipelineJobConfig, runners: Mapping[str, Runner]) -> list:
    """Load every selected stage's config (fail fast) and check each Ray stage has a runner."""
    names = cfg.ordered_stages()
    missing = [n for n in names if STAGES[n].needs_runner and n not in runners]
    if missing:
        from sfray.errors import ConfigError

        raise ConfigError(f"stages {missing} run on Ray and need runners: use `sfray pipeline` or jobs/pipeline.py")
    return [prepare(cfg, n) for n in names]


def run_pipeline(cfg: PipelineJobConfig, runners: Mapping[str, Runner], *, progress: bool = True,
                 log: Callable[[str], None] = _log_to_stderr) -> dict[str, Any]:
    """Run ``cfg``'s stages under ``cfg.output_root``; returns {stage: {status, seconds}} and the report path."""
    root = Path(cfg.output_root)
    plans = plan_stages(cfg, runners)
    start = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    with directory_lock(root, LOCK_FILE, "sfray pipeline"):
        save_config(cfg, root / PIPELINE_CONFIG_FILE)
        for i, prepared in enumerate(plans, 1):
            name, stage = prepared.name, STAGES[prepared.name]
            tag = f"[pipeline {i}/{len(plans)}] {name}"
            upstream = {u: (read_marker(root, u) or {}).get("hash") for u in stage.reads}
            digest = config_hash(name, prepared.text, upstream)
            marker = read_marker(root, name)
            same = marker is not None and marker["hash"] == digest
            if (same and marker.get("status") == DONE and stage.outputs_ok(root) and name not in cfg.force
                    and name != "report"):
                log(f"{tag}: complete with the same config, skipped (took {_fmt_s(marker.get('seconds', 0.0))} "
                    f"when it ran; pipeline {_fmt_s(time.monotonic() - start)})")
                results[name] = {"status": "skipped", "seconds": 0.0}
                continue
            if marker is not None and (not same or name in cfg.force) and name != "report":
                why = "forced" if same else "its config or an input changed"
                log(f"{tag}: {why}; removing its previous output {stage_dir(root, name)}")
                shutil.rmtree(stage_dir(root, name), ignore_errors=True)
            elif marker is not None and name != "report":
                log(f"{tag}: unfinished or incomplete output, resuming")
            clear_marker(root, name)
            atomic_write_text(stage_config_path(root, name), prepared.text or "{}\n")
            write_marker(root, name, digest, 0.0, {}, status=RUNNING)
            log(f"{tag}: running (pipeline {_fmt_s(time.monotonic() - start)})")
            t0, cpu0 = time.monotonic(), _cpu_seconds()
            summary = run_stage(prepared, root, runners, progress)
            seconds, cpu = time.monotonic() - t0, _cpu_seconds() - cpu0
            write_marker(root, name, digest, seconds, {**_compact(summary), "process_cpu_seconds": round(cpu, 1)},
                         status=DONE)
            log(f"{tag}: done in {_fmt_s(seconds)} (pipeline {_fmt_s(time.monotonic() - start)})")
            results[name] = {"status": "ran", "seconds": round(seconds, 3)}
    total = time.monotonic() - start
    report = root / REPORT_FILE
    log(f"[pipeline] finished in {_fmt_s(total)}" + (f"; report: {report}" if report.is_file() else ""))
    return {"output_root": str(root), "stages": results, "seconds": round(total, 3),
            "report": str(report) if report.is_file() else None}
