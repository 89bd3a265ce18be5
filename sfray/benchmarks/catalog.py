"""The one registry of benchmark names (``300w``, ``lapa``, ``lapa-d``, ``celebamask-hq``,
``facesynthetics``) -> reader class; config keys and CLI arguments are checked against it."""

from __future__ import annotations

import os
from typing import Any

from sfray.registry import Registry

#: Benchmark name -> reader class (filled by the reader modules' decorators).
BENCHMARKS: Registry[Any] = Registry("benchmark", "benchmark")


def benchmark_names() -> tuple[str, ...]:
    import sfray.benchmarks  # noqa: F401  (imports every reader, which registers itself)

    return BENCHMARKS.names()


def open_benchmark(name: str, root: str | os.PathLike, **kwargs: Any):
    """A reader for benchmark ``name`` at ``root`` (kwargs: ``check``, ``workers``, ``progress``, ...)."""
    import sfray.benchmarks  # noqa: F401

    return BENCHMARKS.get(name)(root, **kwargs)
