"""The embedded procedural renderer (the default without licensed assets): the head model textured,
shaded and lit."""

from sfray.generators.procedural.renderer import IDENTITY, ProceduralGenerator

__all__ = ["IDENTITY", "ProceduralGenerator"]
