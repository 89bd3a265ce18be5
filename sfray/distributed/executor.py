"""``RayExecutor``: a generation run's units on a Ray Data actor pool, written by the LMDB datasink.

Pipeline: one row per work unit -> ``map_batches(GeneratorActor)`` over an autoscaling actor pool
(``ray.actors_min..actors_max``, ``ray.gpus_per_actor`` each) -> ``LmdbShardDatasink``, which
writes each unit's shard and receipt (``sfray.generation.storage``). The run itself (resume,
planning, commit, preview) is ``sfray.generation.run.run_generation``.

Actor restarts are off (``max_restarts=0``). Ray Data always hands its pool actors their
constructor arguments through the object store, and Ray core logs an error-level line for every
such actor that may restart (its restart could find those objects gone), on every healthy run.
sfray does not need Ray's restart: a lost actor fails the pass with ``ActorDiedError``, which this
executor reports as ``WorkerLost``; the run commits every shard already written and starts a fresh
pass over the missing units (``ray.max_attempts``). Records stay byte-identical because a sample
depends only on (seed, id, config). An error raised while an actor is constructed (a bad asset, a
bug) is not a lost worker and fails the run with its own message.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import ray
from ray.exceptions import NodeDiedError, RayActorError, WorkerCrashedError
from ray.util.annotations import RayDeprecationWarning

from sfray.config.loader import to_yaml
from sfray.config.schema import GenerateJobConfig, RayConfig
from sfray.distributed.generate_actor import COL_IDS, COL_UNIT, GeneratorActor
from sfray.distributed.lmdb_datasink import LmdbShardDatasink
from sfray.distributed.runtime import ray_session
from sfray.generation.executor import WorkerLost
from sfray.generation.plan import WorkUnit


class RayExecutor:
    """Executes units on a Ray Data actor pool (see the module docstring)."""

    def __init__(self, ray_cfg: RayConfig):
        self.ray_cfg = ray_cfg
        self.max_attempts = int(ray_cfg.max_attempts)

    @contextlib.contextmanager
    def session(self, cfg: GenerateJobConfig) -> Iterator[None]:
        """A Ray runtime for the whole run (started locally, loopback only, unless one is running)."""
        local_cpus = max(os.cpu_count() or 1, int(cfg.ray.actors_max * cfg.ray.cpus_per_actor) + 1)
        with ray_session(cfg.ray, default_num_cpus=local_cpus):
            yield

    def execute(self, cfg: GenerateJobConfig, units: Sequence[WorkUnit]) -> None:
        ds = _build_dataset(cfg, units)
        try:
            ds.write_datasink(LmdbShardDatasink(str(Path(cfg.output_dir))))
        except RayActorError as exc:
            if exc.actor_init_failed:
                raise
            raise WorkerLost(f"a generation worker died ({type(exc).__name__})") from exc
        except (WorkerCrashedError, NodeDiedError) as exc:
            raise WorkerLost(f"a generation worker was lost ({type(exc).__name__})") from exc


def _build_dataset(cfg: GenerateJobConfig, units: Sequence[WorkUnit]) -> ray.data.Dataset:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # sfray prints its own progress line (samples/s, ETA, dropped)
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    items = [{COL_UNIT: u.unit, COL_IDS: u.sample_ids.tolist()} for u in units]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for max_restarts yet: it still goes through the generic
        # remote args, which warn that they will be removed in 2.64 (ray is pinned to 2.60.0).
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated",
                                category=RayDeprecationWarning)
        return ds.map_batches(
            GeneratorActor,
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=cfg.ray.actors_min, max_size=cfg.ray.actors_max),
            num_gpus=cfg.ray.gpus_per_actor,
            num_cpus=cfg.ray.cpus_per_actor,
            fn_constructor_kwargs={"config_yaml": to_yaml(cfg)},
            max_restarts=0,  # see the module docstring: the run, not Ray, replaces lost workers
        )
