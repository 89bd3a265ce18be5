"""Parametric head models with FLAME's interface: the FLAME loader and the procedural head."""

from __future__ import annotations

from typing import Any

__all__ = ["HeadModel", "HeadOutput", "build_head"]


def __getattr__(name: str) -> Any:  # lazy: importing sfray.head stays cheap (no torch until needed)
    if name in ("HeadModel", "HeadOutput"):
        from sfray.head import layer

        return getattr(layer, name)
    if name == "build_head":
        from sfray.head.factory import build_head

        return build_head
    raise AttributeError(f"module 'sfray.head' has no attribute {name!r}")
