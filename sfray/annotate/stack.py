"""The head -> generator -> annotator stack, built one way for every job that renders samples.

``sfray generate`` (through the producer), ``sfray preview`` and ``sfray align`` all need the same
three objects built from one config on one device; building them here keeps them from drifting
(an annotator at another resolution than the generator, a head on another device).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sfray.annotate.annotator import Annotator
from sfray.config.schema import GenerateJobConfig
from sfray.devices import resolve_device
from sfray.generators.base import Generator
from sfray.generators.factory import build_generator
from sfray.geometry.alignment_map import AlignmentMap
from sfray.head.factory import build_head
from sfray.head.layer import HeadModel


@dataclass
class GeneratorStack:
    """What renders and annotates samples: one head model, one generator, one annotator (optional)."""

    head: HeadModel
    generator: Generator
    annotator: Annotator | None
    device: torch.device


def build_stack(cfg: GenerateJobConfig, device: torch.device | str | None = None, *,
                alignment: AlignmentMap | None = None, with_annotator: bool = True) -> GeneratorStack:
    """Build the stack of ``cfg`` on ``device`` (default: ``generator.device`` resolved).

    ``alignment`` overrides ``annotate.alignment_map`` (``sfray align`` compares maps); without an
    annotator (``with_annotator=False``) only the head and the generator are built.
    """
    dev = resolve_device(cfg.generator.device) if device is None else torch.device(device)
    head = build_head(cfg.head).to(dev)
    generator = build_generator(cfg, head, dev)
    annotator = Annotator(head, cfg.generate.resolution, cfg.annotate, alignment) if with_annotator else None
    return GeneratorStack(head, generator, annotator, dev)
