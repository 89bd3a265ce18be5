"""Per-sample specifications as pure functions of (dataset seed, sample id, config).

Public API: :func:`make_specs` (ids -> ``SampleSpecs``), :func:`draw_samples` (the raw numpy
draw, no geometry), :func:`pose_from_unit`, the strategy registry :data:`STRATEGIES` /
:func:`get_strategy`.
"""

from sfray.sampling.draw import Dims, Draw
from sfray.sampling.pose import pose_from_unit
from sfray.sampling.strategies import STRATEGIES, describe_strategies, draw_samples, get_strategy

__all__ = ["STRATEGIES", "Dims", "Draw", "describe_strategies", "draw_samples", "get_strategy", "make_specs",
           "pose_from_unit"]


def __getattr__(name: str):  # make_specs needs torch and the camera geometry: load on use
    if name == "make_specs":
        from sfray.sampling.specs import make_specs

        return make_specs
    raise AttributeError(name)
