"""``RayExecutor``: a generation run's units on a Ray Data actor pool, written by the LMDB datasink.

Pipeline: one row per work unit -> ``map_batches(GeneratorActor)`` over an autoscaling actor pool
(``ray.actors_min..actors_max``, ``ray.gpus_per_actor`` each: generate, annotate, quality figures;
raw arrays out) -> ``map_batches(encode_units)`` on a pool of CPU tasks (``ray.encode_workers``)
-> ``LmdbShardDatasink``, which writes each unit's shard and receipt (``sfray.generation.storage``).
``ray.encode_workers=0`` drops the encode stage: the actors encode (the single-stage layout).
The object-store budget and stage sizes are ``sfray.distributed.pipeline_budget``. The run
itself (resume, planning, commit, preview) is ``sfray.generation.run.run_generation``.

Actor restarts are off (``max_restarts=0``). Ray Data always hands its pool actors their
constructor arguments through the object store, and Ray core logs an error-level line for every
such actor that may restart (its restart could find those objects gone), on every healthy run.
sfray does not need Ray's restart: a lost actor fails the pass with ``ActorDiedError``, which this
executor reports as ``WorkerLost``; the run commits every shard already written and starts a fresh
pass over the missing units (``ray.max_attempts``). Records stay byte-identical because a sample
depends only on (seed, id, config). An error raised while an actor is constructed (a bad asset, a
bug) is not a lost worker and fails the run with its own message.

Errors come back as one line (docs/reliability.md): the actor and the datasink raise an
``SfrayError`` naming the samples, the cause and the log file with the traceback
(``sfray.generation.failures``); this executor digs it out of Ray's wrappers and raises it as is.
Ray Data's own console lines about the failure and the workers' stack dumps are kept off the
terminal (they stay in Ray's log files); an error without an sfray cause is logged under
``DATASET/logs/`` and reported with that path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import ray
import torch
from ray.exceptions import NodeDiedError, RayActorError, RayError, WorkerCrashedError
from ray.util.annotations import RayDeprecationWarning

from sfray.config.loader import to_yaml
from sfray.config.schema import GenerateJobConfig, RayConfig
from sfray.distributed.columns import COL_IDS, COL_UNIT
from sfray.distributed.encode_stage import encode_units
from sfray.distributed.generate_actor import GeneratorActor
from sfray.distributed.lmdb_datasink import LmdbShardDatasink
from sfray.distributed.pipeline_budget import PipelineBudget, apply_budget, pipeline_budget
from sfray.distributed.runtime import ray_session
from sfray.errors import ConfigError, SfrayError
from sfray.generation.executor import WorkerLost
from sfray.generation.failures import sample_failure
from sfray.generation.plan import WorkUnit
from sfray.generation.preflight import check_device


class RayExecutor:
    """Executes units on a Ray Data actor pool (see the module docstring)."""

    def __init__(self, ray_cfg: RayConfig):
        self.ray_cfg = ray_cfg
        self.max_attempts = int(ray_cfg.max_attempts)
        #: The last pass's pipeline sizes and the sink's timings (units, generator/encode seconds).
        self.last_budget: PipelineBudget | None = None
        self.last_stats: dict[str, float] = {}

    def check(self, cfg: GenerateJobConfig) -> None:
        """The workers' device: Ray hides GPUs from actors that asked for none, and a local Ray
        waits forever for GPUs this machine does not have."""
        device, gpus = cfg.generator.device, cfg.ray.gpus_per_actor
        if device.startswith("cuda") and gpus <= 0:
            raise ConfigError(f"config key 'generator.device' is {device!r} but ray.gpus_per_actor is 0, so "
                              "Ray gives the generation workers no GPU; set ray.gpus_per_actor=1 (or "
                              "generator.device=auto)")
        local = not (cfg.ray.address or os.environ.get("RAY_ADDRESS")) and not ray.is_initialized()
        if local and device.startswith("cuda"):
            check_device(device)
        if local and gpus > 0 and not torch.cuda.is_available():
            raise ConfigError(f"config key 'ray.gpus_per_actor' is {gpus} but this machine has no usable CUDA "
                              "device and Ray runs locally (ray.address unset): the workers would wait for a GPU "
                              "forever; set ray.gpus_per_actor=0, or ray.address to join a cluster with GPUs")

    @contextlib.contextmanager
    def session(self, cfg: GenerateJobConfig) -> Iterator[None]:
        """A Ray runtime for the whole run (started locally, loopback only, unless one is running)."""
        encoders = 1 if cfg.ray.encode_workers is None else cfg.ray.encode_workers
        local_cpus = max(os.cpu_count() or 1, int(cfg.ray.actors_max * cfg.ray.cpus_per_actor) + max(1, encoders))
        with ray_session(cfg.ray, default_num_cpus=local_cpus, log_to_driver=False):
            yield

    def execute(self, cfg: GenerateJobConfig, units: Sequence[WorkUnit]) -> None:
        resources = ray.cluster_resources()
        self.last_budget = budget = pipeline_budget(cfg.ray, resources.get("CPU", 1.0),
                                                    resources.get("object_store_memory", 0.0))
        ds = _build_dataset(cfg, units, budget)
        sink = LmdbShardDatasink(str(Path(cfg.output_dir)))
        try:
            with _quiet_ray_data_console():
                ds.write_datasink(sink)
            self.last_stats = dict(sink.stats)
        except Exception as exc:
            user = sfray_cause(exc)
            if user is not None:
                raise user from None
            if isinstance(exc, RayActorError) and not exc.actor_init_failed or \
                    isinstance(exc, (WorkerCrashedError, NodeDiedError)):
                raise WorkerLost(f"a generation worker was lost ({type(exc).__name__})") from None
            ids = [int(i) for u in units for i in u.sample_ids]
            raise sample_failure(cfg.output_dir, ids, exc, stage="running the Ray pipeline for") from None


def sfray_cause(exc: BaseException) -> SfrayError | None:
    """The ``SfrayError`` a worker raised, dug out of Ray's wrappers (RayTaskError, ActorDiedError,
    Ray Data's UserCodeException), as a plain instance of its own class; None if there is none."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, SfrayError) and not isinstance(e, RayError):
            line = getattr(e, "line", None) or (str(e.args[0]).split("\n")[0] if e.args else str(e))
            return type(e)(line)
        for attr in ("cause", "__cause__", "__context__"):
            nxt = getattr(e, attr, None)
            if isinstance(nxt, BaseException):
                todo.append(nxt)
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    return None


class _DropErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR and "execution failed" not in record.getMessage()


@contextlib.contextmanager
def _quiet_ray_data_console() -> Iterator[None]:
    """Keep Ray Data's error lines off the terminal while it runs (they stay in ray-data.log):
    sfray reports a failure itself, in one line."""
    handlers = [h for h in logging.getLogger("ray.data").handlers if isinstance(h, logging.StreamHandler)
                and not isinstance(h, logging.FileHandler)]
    drop = _DropErrors()
    for h in handlers:
        h.addFilter(drop)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(drop)


def _build_dataset(cfg: GenerateJobConfig, units: Sequence[WorkUnit], budget: PipelineBudget) -> ray.data.Dataset:
    ctx = apply_budget(budget)
    ctx.enable_progress_bars = False  # sfray prints its own progress line (samples/s, ETA, dropped)
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.raise_original_map_exception = True  # the actor's one-line SfrayError, not a UserCodeException
    items = [{COL_UNIT: u.unit, COL_IDS: u.sample_ids.tolist()} for u in units]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for max_restarts yet: it still goes through the generic
        # remote args, which warn that they will be removed in 2.64 (ray is pinned to 2.60.0).
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated",
                                category=RayDeprecationWarning)
        ds = ds.map_batches(
            GeneratorActor,
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=cfg.ray.actors_min, max_size=cfg.ray.actors_max,
                                               max_tasks_in_flight_per_actor=budget.tasks_in_flight_per_actor),
            num_gpus=cfg.ray.gpus_per_actor,
            num_cpus=cfg.ray.cpus_per_actor,
            fn_constructor_kwargs={"config_yaml": to_yaml(cfg), "encode": budget.encode_workers == 0},
            max_restarts=0,  # see the module docstring: the run, not Ray, replaces lost workers
        )
    if budget.encode_workers == 0:
        return ds
    return ds.map_batches(encode_units, batch_size=1, batch_format="numpy",
                          compute=ray.data.TaskPoolStrategy(size=budget.encode_workers), num_cpus=1,
                          fn_kwargs={"config_yaml": to_yaml(cfg)})
