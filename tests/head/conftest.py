"""Session fixtures over the FLAME-format files of :mod:`flame_fixture_builder` (built once per run)."""

from __future__ import annotations

import pytest
import torch
from flame_fixture_builder import FlameFiles, write_flame_files


@pytest.fixture(scope="session")
def flame_files(tmp_path_factory: pytest.TempPathFactory) -> FlameFiles:
    return write_flame_files(tmp_path_factory.mktemp("flame"))


@pytest.fixture(scope="session")
def flame_cfg(flame_files: FlameFiles):
    """A HeadConfig naming every fixture file (DECA embedding), float64."""
    from sfray.config.schema import HeadConfig

    f = flame_files
    return HeadConfig(kind="flame", path=str(f.model), landmark_embedding=str(f.deca),
                      template_obj=str(f.obj), label_map=str(f.label_map), masks=str(f.masks),
                      n_shape=300, n_expression=100, dtype="float64")


@pytest.fixture(scope="session")
def flame_assets(flame_cfg):
    from sfray.head.flame import load_flame_assets

    return load_flame_assets(flame_cfg)


@pytest.fixture(scope="session")
def flame_head(flame_assets):
    """float64 HeadModel over the fixture with all 300 + 100 components (read-only: do not modify)."""
    from sfray.head.layer import HeadModel

    return HeadModel(flame_assets, dtype=torch.float64)
