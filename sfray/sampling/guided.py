"""Task-guided strategies: ``loss_resample`` and ``loss_propose`` read their rows from a guide file.

Which parameters a task-guided dataset holds is decided above this package, by a model's
per-sample losses (``sfray.sweep.guidance``, docs/sweeps.md); the decision is written once as a
*guide file* (``sampling.guide``, an ``.npz``), and these strategies only look rows up in it. Row
``i`` of the guide is sample id ``i``, so a strategy draw stays a pure function of (guide
content, sample id) and a dataset made from a guide is reproducible and resumable like any other.
Both names share the reader; the name records how the guide was made. The dataset seed does not
change the rows (the seed that chose them is the guide's); it still sets each sample's generator seed.
"""

from __future__ import annotations

import functools
import os
from dataclasses import fields

import numpy as np

from sfray.config.schema import CameraConfig, SamplingConfig
from sfray.errors import ConfigError
from sfray.io.atomic import atomic_path
from sfray.sampling.draw import Dims, Draw

#: Array of the guide file that holds the sample ids its rows belong to (row order).
GUIDE_IDS = "sample_id"


def write_guide(path: str | os.PathLike, draw: Draw) -> None:
    """Save ``draw`` as a guide file: row ``i`` becomes sample id ``i`` (atomically)."""
    arrays = {f.name: np.asarray(getattr(draw, f.name), dtype=np.float64) for f in fields(Draw)}
    arrays[GUIDE_IDS] = np.arange(len(draw), dtype=np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int) -> Draw:
    try:
        with np.load(path, allow_pickle=False) as z:
            return Draw(**{f.name: np.asarray(z[f.name]) for f in fields(Draw)})
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"sampling.guide={path}: not a guide file ({exc}); `sfray sweep` writes them") from None


def read_guide(path: str | os.PathLike) -> Draw:
    """The rows of a guide file (cached per file version)."""
    p = os.fspath(path)
    try:
        mtime = os.stat(p).st_mtime_ns
    except OSError:
        raise ConfigError(f"sampling.guide={p}: file not found") from None
    return _read(p, mtime)


def guided(ids: np.ndarray, seed: int, sampling: SamplingConfig, camera: CameraConfig, dims: Dims) -> Draw:
    """Rows of the guide file ``sampling.guide`` (made from a model's per-sample losses, docs/sweeps.md)."""
    table = read_guide(sampling.guide or "")
    if len(ids) and int(ids.max()) >= len(table):
        raise ConfigError(f"sampling.guide={sampling.guide} holds {len(table)} rows; sample id {int(ids.max())} "
                          "has none (generate.num_samples must not exceed the guide's rows)")
    want = {"shape": dims.n_shape, "expression": dims.n_expression, "latent": dims.latent_dim}
    for name, n in want.items():
        have = getattr(table, name).shape[1]
        if have != n:
            raise ConfigError(f"sampling.guide={sampling.guide}: {name} has {have} columns, the generator "
                              f"needs {n} (a guide is made for one head and generator)")
    return table.take(np.asarray(ids, dtype=np.int64))
