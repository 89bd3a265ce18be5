"""Fixtures of tests/data: a small committed dataset built from random arrays."""

from __future__ import annotations

from pathlib import Path

import pytest
from synth_records import build_dataset


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    build_dataset(root, [[0, 1, 2, 3], [4, 5, 7]])
    return root
