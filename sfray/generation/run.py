"""One generation run, whatever executes it: preflight -> lock -> prepare -> recover -> repair ->
plan -> execute -> recover -> finalize.

``run_generation(cfg, executor)`` is what ``sfray generate``, ``jobs/generate.py``, the tests and
the benchmark call; the executor (``InProcessExecutor`` or the Ray one) only executes units. A
run is resumable: committed (and dropped) ids are skipped, receipts of shards written by a killed
run are recovered first, temporary files are swept, and committed rows whose records turn out
missing or corrupt are regenerated (``sfray.generation.repair``). When an executor loses workers
the run commits what finished and plans another pass over the rest (at most
``executor.max_attempts``). Progress (samples/s, ETA) is read from the receipt log while workers
run, so it costs them nothing.

Safety (docs/reliability.md): the preflight writes nothing; the run holds the dataset's lock
(one writer at a time; its Ray workers write shards under it); an interrupted run commits what
finished before it stops; and a run that ends with ids missing says so instead of succeeding.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from omegaconf import OmegaConf

from sfray.config.schema import GenerateJobConfig
from sfray.conventions import KEPT_STATUSES, Column, Status
from sfray.data import layout
from sfray.data.dataset_yaml import build_dataset_yaml, write_dataset_yaml
from sfray.data.manifest import Manifest
from sfray.data.record_format import config_expectation, record_format
from sfray.data.shard import ShardReader
from sfray.errors import AssetError, SfrayError
from sfray.generation import faults
from sfray.generation.compat import prepare_dataset_dir
from sfray.generation.executor import Executor, WorkerLost
from sfray.generation.failures import describe_ids
from sfray.generation.plan import plan_units
from sfray.generation.preflight import preflight
from sfray.generation.preview import write_dataset_preview
from sfray.generation.repair import repair
from sfray.generation.storage import NUM_SAMPLES, ROWS, read_receipt, receipt_files, recover
from sfray.progress import Progress


@dataclass
class GenerationSummary:
    output_dir: str
    requested: int
    committed: int
    dropped: int
    generated_this_run: int
    seconds: float


class ProgressWatcher(threading.Thread):
    """Polls the receipt log; prints progress; fires the driver-kill fault knob (testing only)."""

    def __init__(self, dataset_dir: str | Path, todo: int, *, show: bool = True, kill_after: int = -1,
                 stream: TextIO | None = None):
        super().__init__(daemon=True)
        self.root = Path(dataset_dir)
        self.initial = {p.name for p in receipt_files(self.root)}
        self.progress = Progress(todo, "generate", stream=stream) if show else None
        self.kill_after = kill_after
        self.stop = threading.Event()
        self.seen: dict[str, int] = {}
        self.gated: Counter[str] = Counter()  # "dropped:reason" / "flagged:reason"

    def scan(self, force: bool = False) -> None:
        for p in receipt_files(self.root):
            if p.name in self.initial or p.name in self.seen:
                continue
            try:
                receipt = read_receipt(p)
            except (OSError, ValueError, AssetError):
                continue
            self.seen[p.name] = int(receipt[NUM_SAMPLES])
            self.gated.update(f"{r[Column.STATUS]}:{r[Column.REASON]}" for r in receipt[ROWS]
                              if r[Column.STATUS] != Status.OK)
        if self.progress is not None:
            extra = f"shards {len(self.seen)}"
            if self.gated:
                extra += ", " + ", ".join(f"{k} {n}" for k, n in sorted(self.gated.items()))
            self.progress.update(sum(self.seen.values()), extra, force=force)

    def run(self) -> None:
        poll = 0.1 if self.kill_after >= 0 else 1.0  # the fault knob must fire mid-write
        while not self.stop.wait(poll):
            self.scan()
            if 0 <= self.kill_after <= len(self.seen):
                faults.kill_driver(self.root)

    def finish(self) -> None:
        self.stop.set()
        self.join(timeout=5)
        self.scan(force=True)
        if self.progress is not None and self.progress.tty:
            self.progress.stream.write("\n")


def declared_record_format(cfg: GenerateJobConfig, manifest: Manifest) -> dict[str, Any] | None:
    """The format every record of this dataset has: the first committed record's fields, with the
    image as the config makes it (``sfray.data.record_format``)."""
    config = OmegaConf.to_container(OmegaConf.structured(cfg))
    first = manifest.select(KEPT_STATUSES).slice(0, 1).to_pylist()
    if not first:
        return None
    try:
        with ShardReader(layout.shard_path(cfg.output_dir, first[0][Column.SHARD])) as reader:
            header, _, _ = reader.header(first[0][Column.KEY])
    except (AssetError, KeyError):
        return None
    return {**record_format(header), **config_expectation(config)}  # type: ignore[arg-type]


def finalize_dataset(cfg: GenerateJobConfig, manifest: Manifest) -> dict[str, int]:
    """Refresh dataset.yaml (counts by status and reason, record format) and write the preview sheet."""
    content = build_dataset_yaml(manifest, config=OmegaConf.to_container(OmegaConf.structured(cfg)),
                                 record_format=declared_record_format(cfg, manifest))
    write_dataset_yaml(cfg.output_dir, content)
    by_status = manifest.counts()["by_status"]
    write_dataset_preview(cfg.output_dir, cfg.generate.preview_samples)
    return {"committed": sum(by_status[s] for s in KEPT_STATUSES), "dropped": by_status[Status.DROPPED]}


def run_generation(cfg: GenerateJobConfig, executor: Executor, *, progress: bool = True,
                   stream: TextIO | None = None) -> GenerationSummary:
    """Generate (or resume) the dataset described by ``cfg`` into ``cfg.output_dir``."""
    start = time.monotonic()
    out = Path(cfg.output_dir)
    log = stream or sys.stderr
    preflight(cfg)  # a bad asset, device or output location fails here, once, writing nothing
    check = getattr(executor, "check", None)
    if check is not None:
        check(cfg)
    with layout.dataset_lock(out, "sfray generate"):
        prepare_dataset_dir(cfg)  # refuses a dir made with an incompatible config; saves config.yaml
        manifest = recover(out, at_start=True, log=log)  # commits receipts a killed run left behind
        manifest, units = repair(cfg, manifest, log)  # shards with missing/corrupt records go back
        units += plan_units(cfg.generate.num_samples, cfg.generate.samples_per_shard,
                            np.concatenate([manifest.committed_ids(), *[u.sample_ids for u in units]]))
        todo = int(sum(len(u.sample_ids) for u in units))
        if units:
            try:
                _run_units(cfg, executor, units, todo, progress=progress, stream=stream, log=log)
            except BaseException:  # interrupted or failed: what finished is committed, then stop
                _commit_what_finished(out)
                raise
        manifest = recover(out)
        stats = finalize_dataset(cfg, manifest)
        _require_complete(cfg, manifest)
    return GenerationSummary(output_dir=str(out), requested=cfg.generate.num_samples,
                             committed=int(stats["committed"]), dropped=int(stats["dropped"]),
                             generated_this_run=todo, seconds=time.monotonic() - start)


def _run_units(cfg: GenerateJobConfig, executor: Executor, units: Any, todo: int, *, progress: bool,
               stream: TextIO | None, log: TextIO) -> None:
    kill_after = cfg.faults.fail_driver_after_shards
    watcher = ProgressWatcher(cfg.output_dir, todo, show=progress, kill_after=kill_after, stream=stream) \
        if progress or kill_after >= 0 else None
    with executor.session(cfg):
        if watcher:
            watcher.start()
        try:
            _execute(cfg, executor, units, log)
        finally:
            if watcher:
                watcher.finish()


def _commit_what_finished(out: Path) -> None:
    """Fold the receipts of the shards that were finished (a failing commit keeps them for the
    next run, and must not hide the error that stopped this one)."""
    try:
        recover(out)
    except Exception:  # noqa: BLE001 - e.g. the full disk that stopped the run
        pass


def _require_complete(cfg: GenerateJobConfig, manifest: Manifest) -> None:
    """Never report success over missing data: every id of the plan has a row."""
    ids = manifest.committed_ids()
    missing = np.setdiff1d(np.arange(cfg.generate.num_samples, dtype=np.int64), ids)
    if missing.size:
        raise SfrayError(f"{cfg.output_dir}: only {cfg.generate.num_samples - missing.size} of "
                         f"{cfg.generate.num_samples} samples were committed ({describe_ids(missing[:50].tolist())} "
                         "missing); rerun the same command to make them")


def _execute(cfg: GenerateJobConfig, executor: Executor, units: Any, log: TextIO) -> None:
    """Execute ``units``; after a lost worker, commit what finished and plan a pass over the rest."""
    attempts = max(1, int(executor.max_attempts))
    for attempt in range(1, attempts + 1):
        try:
            executor.execute(cfg, units)
            return
        except WorkerLost as exc:
            if attempt == attempts:
                raise WorkerLost(f"{exc} in each of {attempts} pass(es) (ray.max_attempts); the committed "
                                 "shards are kept: rerun the same command to resume") from None
            done = recover(cfg.output_dir).committed_ids()
            units = [u for u in units if not np.isin(u.sample_ids, done).all()]  # a unit is one shard
            left = int(sum(len(u.sample_ids) for u in units))
            log.write(f"generate: {exc}; committed shards are kept, resuming the {left} missing samples "
                      f"(pass {attempt + 1}/{attempts})\n")
            log.flush()
            if not units:
                return
