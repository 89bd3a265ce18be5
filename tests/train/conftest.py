"""Fixtures of tests/train: a small dataset of real procedural records (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from real_dataset import cached_real_dataset


@pytest.fixture(scope="session")
def real_dataset(tmp_path_factory) -> Path:
    return cached_real_dataset(tmp_path_factory)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, 2 spinning threads slow steps down tenfold."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
