"""Fixtures of tests/train: a small dataset of real procedural records (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from real_dataset import cached_real_dataset

from sfray.train.context import torch_threads


@pytest.fixture(scope="session")
def real_dataset(tmp_path_factory) -> Path:
    return cached_real_dataset(tmp_path_factory)


@pytest.fixture(autouse=True, name="one_torch_thread")
def _one_torch_thread_per_test():
    """One intra-op thread for each test (module-scoped fixtures set up before this runs)."""
    with torch_threads(1):
        yield
