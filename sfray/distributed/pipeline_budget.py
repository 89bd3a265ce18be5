"""How big the generation pipeline's stages are and how much of the object store it may hold.

Ray Data's streaming executor overlaps the stages (generator actors -> encode tasks -> datasink)
and stops admitting new work to a stage whose buffered output exceeds its share of the memory
budget; output bytes are charged to the stage that made them, so a device that outruns the
encoders stalls instead of filling the object store (docs/architecture.md, "Two-stage
generation", lists the settings and why). The settings, all applied per run by
:func:`apply_budget`:

* ``ExecutionOptions.resource_limits.object_store_memory``: ``ray.object_store_budget_mb``, or
  by default half of the object store Ray reports for the cluster (:data:`DEFAULT_STORE_FRACTION`);
* the encode stage is a task pool of :func:`encode_pool_size` tasks, one CPU each, so at most that
  many units of raw arrays are being encoded at once;
* each generator actor has at most :data:`TASKS_IN_FLIGHT_PER_ACTOR` units queued (the one it
  works on and the next), enough for the pool's utilisation-based scale-up rule (it needs a ratio
  above 1.75 of queued to concurrent calls) and no more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ray.data import DataContext

from sfray.config.schema import RayConfig

DEFAULT_STORE_FRACTION = 0.5
TASKS_IN_FLIGHT_PER_ACTOR = 2
MIB = 1 << 20


@dataclass(frozen=True)
class PipelineBudget:
    """The sizes of one run's pipeline (see the module docstring)."""

    encode_workers: int  # 0: the generator actors encode (single stage)
    object_store_bytes: int
    tasks_in_flight_per_actor: int = TASKS_IN_FLIGHT_PER_ACTOR


def encode_pool_size(ray_cfg: RayConfig, cluster_cpus: float) -> int:
    """``ray.encode_workers``, or the cluster's CPUs the generator actors leave free (at least 1)."""
    if ray_cfg.encode_workers is not None:
        return int(ray_cfg.encode_workers)
    return max(1, int(math.floor(cluster_cpus - ray_cfg.actors_max * ray_cfg.cpus_per_actor)))


def pipeline_budget(ray_cfg: RayConfig, cluster_cpus: float, cluster_object_store_bytes: float) -> PipelineBudget:
    """The settings for a cluster of ``cluster_cpus`` logical CPUs and that much object store."""
    if ray_cfg.object_store_budget_mb is not None:
        store = int(ray_cfg.object_store_budget_mb) * MIB
    else:
        store = int(cluster_object_store_bytes * DEFAULT_STORE_FRACTION)
    return PipelineBudget(encode_pool_size(ray_cfg, cluster_cpus), store)


def apply_budget(budget: PipelineBudget, ctx: DataContext | None = None) -> DataContext:
    """Put the object-store limit on the (current) Ray Data context; returns it."""
    ctx = ctx or DataContext.get_current()
    ctx.execution_options.resource_limits = ctx.execution_options.resource_limits.copy(
        object_store_memory=float(budget.object_store_bytes))
    return ctx
