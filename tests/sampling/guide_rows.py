"""A guide file for the task-guided strategies in strategy-wide tests: valid rows for ids 0..N-1."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from sfray.config.registries import GUIDED_STRATEGIES
from sfray.config.schema import CameraConfig, SamplingConfig
from sfray.sampling.draw import Dims
from sfray.sampling.guided import write_guide
from sfray.sampling.strategies import draw_samples

_DIR = Path(tempfile.mkdtemp(prefix="sfray-guide-"))


def guide_kw(strategy: str, dims: Dims, rows: int = 1024) -> dict:
    """``{"guide": path}`` for a guided strategy (rows drawn i.i.d. by ``gaussian``), else ``{}``."""
    if strategy not in GUIDED_STRATEGIES:
        return {}
    path = _DIR / f"guide_{dims.n_shape}_{dims.n_expression}_{dims.latent_dim}_{rows}.npz"
    if not path.is_file():
        draw = draw_samples(np.arange(rows), 99, SamplingConfig(), CameraConfig(), dims)
        write_guide(path, draw)
    return {"guide": str(path)}
