"""``annotate.raster_backend`` -> a rasterize function (``sfray.geometry.rasterizer`` interface).

The valid names live in ``sfray.config.registries.RASTER_BACKENDS``; this module attaches the
builders. ``pytorch3d`` is optional: choosing it without the package raises ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sfray.config.registries import RASTER_BACKENDS


@RASTER_BACKENDS.register("torch")
def _torch() -> Callable[..., Any]:
    from sfray.geometry.rasterizer import rasterize

    return rasterize


@RASTER_BACKENDS.register("pytorch3d")
def _pytorch3d() -> Callable[..., Any]:
    from sfray.geometry.pytorch3d_backend import rasterize as rasterize_p3d
    from sfray.geometry.pytorch3d_backend import require_pytorch3d

    require_pytorch3d()
    return rasterize_p3d


def rasterizer_for(name: str) -> Callable[..., Any]:
    """The ``rasterize`` function of backend ``name`` (unknown names raise ConfigError)."""
    return RASTER_BACKENDS.get(name)()
