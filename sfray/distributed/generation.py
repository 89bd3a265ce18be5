"""The generation job: sample ids -> GeneratorActor pool -> LmdbShardDatasink -> manifest.

``run_generation(cfg)`` is what ``sfray generate`` and ``jobs/generate.py`` call. It is
resumable: committed (and dropped) ids are skipped, receipts of shards written by a killed run
are recovered first, and temporary shards are swept. Progress (samples/s, ETA) is read from the
receipt log while Ray works, so it costs the workers nothing.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sfray.config.schema import GenerateJobConfig
from sfray.progress import Progress


@dataclass
class GenerationSummary:
    output_dir: str
    requested: int
    committed: int
    dropped: int
    generated_this_run: int
    seconds: float


def _fault_dir(cfg: GenerateJobConfig) -> str:
    return str(Path(cfg.output_dir) / "_faults")


def _build_dataset(cfg: GenerateJobConfig, units: list, config_yaml: str):
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # sfray prints its own progress line (samples/s, ETA, dropped)
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    from sfray.distributed.generate_actor import COL_IDS, COL_UNIT, GeneratorActor

    items = [{COL_UNIT: u.unit, COL_IDS: u.sample_ids.tolist()} for u in units]
    ds = ray.data.from_items(items, override_num_blocks=len(items))

    return ds.map_batches(
        GeneratorActor,
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=cfg.ray.actors_min, max_size=cfg.ray.actors_max),
        num_gpus=cfg.ray.gpus_per_actor,
        num_cpus=cfg.ray.cpus_per_actor,
        fn_constructor_kwargs={"config_yaml": config_yaml, "fault_dir": _fault_dir(cfg)},
        # Ray Data's actor pool restarts a dead actor and retries its unit by default
        # (max_restarts=-1, max_task_retries=-1 in ray 2.60); the sink makes a retry idempotent.
    )


class _ProgressWatcher(threading.Thread):
    """Polls the receipt log; prints progress; implements the driver-kill fault knob."""

    def __init__(self, cfg: GenerateJobConfig, todo: int):
        super().__init__(daemon=True)
        from sfray.generation.commit import receipt_dir

        self.dir = receipt_dir(cfg.output_dir)
        self.initial = {p.name for p in self.dir.glob("*.json")} if self.dir.exists() else set()
        self.progress = Progress(todo, "generate")
        self.kill_after = cfg.ray.fail_driver_after_shards
        self.stop = threading.Event()
        self.seen: dict[str, int] = {}
        self.gated: Counter[str] = Counter()  # "dropped:reason" / "flagged:reason"

    def scan(self, force: bool = False) -> None:
        from sfray.generation.commit import read_receipt

        if self.dir.exists():
            for p in self.dir.glob("*.json"):
                if p.name in self.initial or p.name in self.seen:
                    continue
                try:
                    receipt = read_receipt(p)
                except (OSError, ValueError):
                    continue
                self.seen[p.name] = int(receipt["num_samples"])
                self.gated.update(f"{r['status']}:{r['reason']}" for r in receipt["rows"] if r["status"] != "ok")
        extra = f"shards {len(self.seen)}"
        if self.gated:
            extra += ", " + ", ".join(f"{k} {n}" for k, n in sorted(self.gated.items()))
        self.progress.update(sum(self.seen.values()), extra, force=force)

    def run(self) -> None:
        poll = 0.1 if self.kill_after >= 0 else 1.0  # the fault knob must fire mid-write
        while not self.stop.wait(poll):
            self.scan()
            if 0 <= self.kill_after <= len(self.seen):
                _simulate_driver_crash(self.dir.parent)

    def finish(self) -> None:
        self.stop.set()
        self.join(timeout=5)
        self.scan(force=True)
        if self.progress.tty:
            self.progress.stream.write("\n")


def _simulate_driver_crash(dataset_dir: Path) -> None:
    """Fault injection: record our child processes (so a test can stop exactly them) and SIGKILL."""
    import json

    import psutil

    children = [c.pid for c in psutil.Process().children(recursive=True)]
    fault = dataset_dir / "_faults"
    fault.mkdir(parents=True, exist_ok=True)
    (fault / "driver_children.json").write_text(json.dumps(children))
    os.kill(os.getpid(), signal.SIGKILL)


def run_generation(cfg: GenerateJobConfig, *, progress: bool = True) -> GenerationSummary:
    """Generate (or resume) the dataset described by ``cfg`` into ``cfg.output_dir``."""
    from sfray.config.loader import to_yaml
    from sfray.distributed.lmdb_datasink import LmdbShardDatasink
    from sfray.distributed.runtime import ray_session
    from sfray.generation.commit import finalize_dataset, preflight, prepare_dataset_dir, recover
    from sfray.generation.plan import plan_units

    start = time.monotonic()
    out = Path(cfg.output_dir)
    preflight(cfg)  # a bad asset path fails here, once, before Ray starts
    prepare_dataset_dir(cfg)  # refuses a dir made with an incompatible config; saves config.yaml
    manifest = recover(out, at_start=True)  # commits receipts a killed run left behind; sweeps temp shards
    done_ids = manifest.committed_ids()
    units = plan_units(cfg.generate.num_samples, cfg.generate.samples_per_shard, done_ids)
    todo = int(sum(len(u.sample_ids) for u in units))
    if units:
        local_cpus = max(os.cpu_count() or 1, int(cfg.ray.actors_max * cfg.ray.cpus_per_actor) + 1)
        with ray_session(cfg.ray, default_num_cpus=local_cpus):
            watcher = _ProgressWatcher(cfg, todo) if progress else None
            if watcher:
                watcher.start()
            try:
                ds = _build_dataset(cfg, units, to_yaml(cfg))
                ds.write_datasink(LmdbShardDatasink(str(out)))
            finally:
                if watcher:
                    watcher.finish()
    manifest = recover(out)
    stats = finalize_dataset(cfg, manifest)
    return GenerationSummary(
        output_dir=str(out),
        requested=cfg.generate.num_samples,
        committed=int(stats["committed"]),
        dropped=int(stats["dropped"]),
        generated_this_run=todo,
        seconds=time.monotonic() - start,
    )

