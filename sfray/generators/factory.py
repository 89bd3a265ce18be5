"""``generator.kind`` -> a :class:`~sfray.generators.base.Generator` (the registry of generators).

Heavy or optional generators are imported only when chosen, so building the procedural renderer
never touches the Next3D networks (and their checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sfray.config.schema import GenerateJobConfig
from sfray.errors import ConfigError
from sfray.generators.base import Generator
from sfray.head.layer import HeadModel


def _procedural(cfg: GenerateJobConfig, head: HeadModel, device: torch.device) -> Generator:
    from sfray.generators.procedural import ProceduralGenerator

    return ProceduralGenerator(head, cfg.generate.resolution, cfg.generator, device)


def _next3d(cfg: GenerateJobConfig, head: HeadModel, device: torch.device) -> Generator:
    from sfray.generators.next3d.wrapper import build_next3d_generator

    return build_next3d_generator(cfg, head, device)


#: name -> builder(cfg, head, device)
GENERATORS: dict[str, Callable[[GenerateJobConfig, HeadModel, torch.device], Generator]] = {
    "procedural": _procedural,
    "next3d": _next3d,
}


def build_generator(cfg: GenerateJobConfig, head: HeadModel, device: torch.device | str) -> Generator:
    """The generator named by ``cfg.generator.kind``, driven by ``head``, on ``device``."""
    kind = cfg.generator.kind
    if kind not in GENERATORS:
        raise ConfigError(f"bad value for config key 'generator.kind': '{kind}' is not one of "
                          f"{' | '.join(GENERATORS)}")
    return GENERATORS[kind](cfg, head, torch.device(device))
