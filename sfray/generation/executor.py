"""Executors: who turns work units into stored shards during a generation run.

:func:`sfray.generation.run.run_generation` owns the run (preflight, resume, planning, commit);
an executor only *executes* units: for each unit, produce its records (``SampleProducer``) and
store them with :func:`sfray.generation.storage.write_unit`. Two exist:

* :class:`InProcessExecutor` (here): one producer in this process, units one after another. It
  serves tests, ``sfray preview`` and the plain-loop baseline of ``bench/generate.py``.
* ``sfray.distributed.executor.RayExecutor``: a Ray Data actor pool and an LMDB datasink.

An executor that loses workers (a crashed process, a lost node) raises :class:`WorkerLost`; the
run then commits what finished and starts another pass over the rest, up to ``max_attempts``.
Any other failure reaches the run as one ``SfrayError`` line naming the samples, the cause and
the log file with the traceback (``sfray.generation.failures``). ``check(cfg)`` runs in the
preflight, before any worker starts: the device the workers will use exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from sfray.config.schema import GenerateJobConfig
from sfray.errors import SfrayError
from sfray.generation.failures import sample_failure
from sfray.generation.plan import WorkUnit
from sfray.generation.preflight import check_device
from sfray.generation.producer import ProducedSample, SampleProducer
from sfray.generation.storage import write_unit


class WorkerLost(SfrayError):
    """Some units were not executed because a worker process (or its node) died."""


class Executor(Protocol):
    """Executes work units; see the module docstring."""

    #: Passes a run makes when workers are lost (1: never retry).
    max_attempts: int

    def check(self, cfg: GenerateJobConfig) -> None:
        """Preflight of what this executor needs (the workers' device); raises SfrayError."""
        ...

    def session(self, cfg: GenerateJobConfig) -> contextlib.AbstractContextManager[Any]:
        """Resources held across the passes of one run (e.g. a Ray runtime)."""
        ...

    def execute(self, cfg: GenerateJobConfig, units: Sequence[WorkUnit]) -> None:
        """Produce and store every unit; raise :class:`WorkerLost` if workers died."""
        ...


class InProcessExecutor:
    """One :class:`SampleProducer` in this process (built on first use, kept per config)."""

    max_attempts = 1

    def __init__(self, device: torch.device | str | None = None):
        self.device = device
        self._producer: SampleProducer | None = None
        self._cfg: GenerateJobConfig | None = None

    def check(self, cfg: GenerateJobConfig) -> None:
        if self.device is None:
            check_device(cfg.generator.device)
        else:
            check_device(str(self.device), key="device")

    def producer(self, cfg: GenerateJobConfig) -> SampleProducer:
        if self._producer is None or self._cfg != cfg:
            self._producer, self._cfg = SampleProducer(cfg, self.device), cfg
        return self._producer

    def records(self, cfg: GenerateJobConfig, sample_ids: Sequence[int] | np.ndarray, *,
                keep_dropped: bool = False) -> list[ProducedSample]:
        """Records of ``sample_ids`` without storing them (``sfray preview``)."""
        return self.producer(cfg).produce(np.asarray(sample_ids, dtype=np.int64), keep_dropped=keep_dropped)

    @contextlib.contextmanager
    def session(self, cfg: GenerateJobConfig) -> Iterator[None]:
        yield

    def execute(self, cfg: GenerateJobConfig, units: Sequence[WorkUnit]) -> None:
        for unit in units:
            ids = unit.sample_ids.tolist()
            try:
                made = self.records(cfg, unit.sample_ids)
            except Exception as exc:
                raise sample_failure(cfg.output_dir, ids, exc) from None
            write_unit(cfg.output_dir, ids, [m.record for m in made], [m.row for m in made])
