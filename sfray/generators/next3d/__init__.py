"""Our own implementation of the Next3D generator, loading the official checkpoint (see README.md).

Entry points: :func:`load_next3d` (official .pkl or sfray .safetensors -> module),
:class:`Next3DTriPlane` (the network), :class:`Next3DConfig` (full / small sizes) and, in
``sfray.generators.next3d.wrapper``, ``Next3DGenerator`` / ``build_next3d_generator`` (the
Generator protocol; imported lazily because it depends on the head model).
"""

from sfray.generators.next3d.checkpoint import convert_checkpoint, load_next3d, read_checkpoint, save_safetensors
from sfray.generators.next3d.config import Next3DConfig
from sfray.generators.next3d.generator import Next3DTriPlane, Topology

__all__ = ["Next3DConfig", "Next3DTriPlane", "Topology", "convert_checkpoint", "load_next3d", "read_checkpoint",
           "save_safetensors"]
