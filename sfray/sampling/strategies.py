"""The registry of sampling strategies: ``sampling.strategy`` name -> draw function.

A strategy is a function ``(ids (B,) int64, dataset_seed, SamplingConfig, CameraConfig, Dims) ->
Draw`` that must be a pure function of (dataset seed, sample id, config) row by row: the same id
gives the same row whatever else is in the batch. The docstring of each function says what it
draws; :func:`describe_strategies` lists them for ``--help`` texts and error messages.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from sfray.config.registries import SAMPLING_STRATEGIES
from sfray.config.schema import CameraConfig, SamplingConfig
from sfray.sampling.basic import gaussian, truncated, uniform_release
from sfray.sampling.diverse import diverse
from sfray.sampling.draw import Dims, Draw
from sfray.sampling.guided import guided
from sfray.sampling.rng import check_ids
from sfray.sampling.sobol import sobol

Strategy = Callable[[np.ndarray, int, SamplingConfig, CameraConfig, Dims], Draw]

for _name, _fn in (("gaussian", gaussian), ("uniform", uniform_release), ("truncated", truncated),
                   ("sobol", sobol), ("diverse", diverse), ("loss_resample", guided), ("loss_propose", guided)):
    SAMPLING_STRATEGIES.add(_name, _fn)
#: name -> strategy function (a read-only view of the registry, in declaration order).
STRATEGIES: dict[str, Strategy] = {name: SAMPLING_STRATEGIES.get(name) for name in SAMPLING_STRATEGIES}


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name``; an unknown name raises ConfigError listing valid ones."""
    return SAMPLING_STRATEGIES.get(name)


def describe_strategies() -> dict[str, str]:
    """name -> first docstring line of every registered strategy."""
    return {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in STRATEGIES.items()}


def draw_samples(sample_ids: Any, dataset_seed: int, sampling: SamplingConfig, camera: CameraConfig,
                 dims: Dims) -> Draw:
    """The raw strategy draw (numpy) for ``sample_ids`` (B,) (numpy, list or CPU tensor)."""
    if hasattr(sample_ids, "detach"):
        sample_ids = sample_ids.detach().cpu().numpy()
    ids = check_ids(np.asarray(sample_ids), dataset_seed)
    return get_strategy(sampling.strategy)(ids, int(dataset_seed), sampling, camera, dims)
