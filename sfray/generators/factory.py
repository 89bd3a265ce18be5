"""``generator.kind`` -> a :class:`~sfray.generators.base.Generator`.

The valid names live in ``sfray.config.registries.GENERATOR_KINDS``; this module attaches a
builder to each. Heavy or optional generators are imported only when chosen, so building the
procedural renderer never touches the Next3D networks (and their checkpoint).
"""

from __future__ import annotations

import torch

from sfray.config.registries import GENERATOR_KINDS
from sfray.config.schema import GenerateJobConfig
from sfray.generators.base import Generator
from sfray.head.layer import HeadModel


@GENERATOR_KINDS.register("procedural")
def _procedural(cfg: GenerateJobConfig, head: HeadModel, device: torch.device) -> Generator:
    from sfray.generators.procedural import ProceduralGenerator

    return ProceduralGenerator(head, cfg.generate.resolution, cfg.generator.procedural, device,
                               misalign=cfg.faults.misalign)


@GENERATOR_KINDS.register("next3d")
def _next3d(cfg: GenerateJobConfig, head: HeadModel, device: torch.device) -> Generator:
    from sfray.generators.next3d.wrapper import build_next3d_generator

    return build_next3d_generator(cfg, head, device)


def build_generator(cfg: GenerateJobConfig, head: HeadModel, device: torch.device | str) -> Generator:
    """The generator named by ``cfg.generator.kind``, driven by ``head``, on ``device``."""
    return GENERATOR_KINDS.get(cfg.generator.kind)(cfg, head, torch.device(device))
