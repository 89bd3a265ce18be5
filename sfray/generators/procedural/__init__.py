"""The embedded procedural renderer (DESIGN §5): the head model textured, shaded and lit."""

from sfray.generators.procedural.renderer import IDENTITY, ProceduralGenerator

__all__ = ["IDENTITY", "ProceduralGenerator"]
