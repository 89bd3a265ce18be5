"""Real benchmarks in their original layouts: readers, label schemas, face crops, torch datasets.

Readers (one per name in :data:`~sfray.benchmarks.catalog.BENCHMARKS`): ``300w``, ``lapa``,
``lapa-d``, ``celebamask-hq``, ``facesynthetics``. Formats and quirks: docs/benchmarks-data.md.
"""

from sfray.benchmarks.base import (
    TASK_DEPTH,
    TASK_LANDMARKS,
    TASK_PARSING,
    TASKS,
    BenchmarkReader,
    BenchmarkSample,
    Entry,
)
from sfray.benchmarks.catalog import BENCHMARKS, benchmark_names, open_benchmark
from sfray.benchmarks.celebamask import CelebAMaskReader
from sfray.benchmarks.crop import CropTransform
from sfray.benchmarks.facesynthetics import FaceSyntheticsReader
from sfray.benchmarks.lapa import LaPaDReader, LaPaReader
from sfray.benchmarks.problems import Problem, ProblemKind, ScanReport
from sfray.benchmarks.w300 import W300Reader

__all__ = [
    "BENCHMARKS", "TASKS", "TASK_DEPTH", "TASK_LANDMARKS", "TASK_PARSING", "BenchmarkReader",
    "BenchmarkSample", "CelebAMaskReader", "CropTransform", "Entry", "FaceSyntheticsReader", "LaPaDReader",
    "LaPaReader", "Problem", "ProblemKind", "ScanReport", "W300Reader", "benchmark_names", "open_benchmark",
]
