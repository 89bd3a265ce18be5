"""Build the configured head model: ``build_head(cfg) -> HeadModel`` (procedural or FLAME)."""

from __future__ import annotations

import functools

import torch

from sfray.config.registries import HEAD_KINDS
from sfray.config.schema import HeadConfig
from sfray.head.assets import HeadAssets
from sfray.head.layer import HeadModel


@functools.lru_cache(maxsize=1)
def procedural_assets() -> HeadAssets:
    """The embedded procedural head, built once per process (it is deterministic)."""
    from sfray.head.procedural import build_procedural_assets

    return build_procedural_assets()


def build_head(cfg: HeadConfig, device: torch.device | str | None = None) -> HeadModel:
    """A :class:`HeadModel` for ``cfg`` (validated first), moved to ``device`` if given.

    FLAME uses ``cfg.n_shape``/``cfg.n_expression`` exactly. The procedural head may carry fewer
    components than FLAME's defaults; there the counts are capped at what it has.
    """
    cfg.validate()
    model = HEAD_KINDS.get(cfg.kind)(cfg)
    return model.to(device) if device is not None else model


@HEAD_KINDS.register("procedural")
def _procedural(cfg: HeadConfig) -> HeadModel:
    assets = procedural_assets()
    n_shape, n_expr = min(cfg.n_shape, assets.num_shape), min(cfg.n_expression, assets.num_expression)
    return HeadModel(assets, n_shape, n_expr, dtype=cfg.dtype)


@HEAD_KINDS.register("flame")
def _flame(cfg: HeadConfig) -> HeadModel:
    from sfray.head.flame import load_flame_assets

    return HeadModel(load_flame_assets(cfg), cfg.n_shape, cfg.n_expression, dtype=cfg.dtype)
