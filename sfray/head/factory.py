"""Build the configured head model: ``build_head(cfg) -> HeadModel`` (procedural or FLAME)."""

from __future__ import annotations

import functools

import torch

from sfray.config.schema import HeadConfig
from sfray.errors import ConfigError
from sfray.head.assets import HeadAssets
from sfray.head.layer import HeadModel

HEAD_KINDS = ("procedural", "flame")


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
    if cfg.kind == "procedural":
        assets = procedural_assets()
        n_shape, n_expr = min(cfg.n_shape, assets.num_shape), min(cfg.n_expression, assets.num_expression)
        model = HeadModel(assets, n_shape, n_expr, dtype=cfg.dtype)
    elif cfg.kind == "flame":
        from sfray.head.flame import load_flame_assets

        model = HeadModel(load_flame_assets(cfg), cfg.n_shape, cfg.n_expression, dtype=cfg.dtype)
    else:  # validate() already rejects this; kept for registries built without validation
        raise ConfigError(f"head.kind: '{cfg.kind}' is not one of {HEAD_KINDS}")
    return model.to(device) if device is not None else model
