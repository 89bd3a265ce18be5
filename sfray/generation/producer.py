"""Produce annotated, encoded records for a set of sample ids (no Ray).

:class:`SampleProducer` owns one generator stack (``sfray.annotate.stack``: head, generator,
annotator) plus the quality stage, the way a Ray generator actor does. Its work has two stages
that can run in different processes (docs/architecture.md, "Two-stage generation"):

* ``generate(ids)`` (the device stage): specs -> generator -> refinement/gate -> annotator ->
  quality figures, in aligned batches (``sfray.generation.plan``); returns :class:`RawSample`
  (record fields as CPU NumPy arrays, no encoding);
* :func:`encode_samples` (the CPU stage): record fields -> record bytes (``sfray.data.record``).

``produce(ids)`` runs both in this process. Every executor goes through these two functions, so
a record's bytes never depend on how, or in which process, it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sfray.annotate.annotator import to_record_fields
from sfray.annotate.stack import build_stack
from sfray.config.schema import GenerateJobConfig, GenerateSection
from sfray.conventions import Field, Status
from sfray.data.record import encode_record
from sfray.generation.plan import WorkUnit
from sfray.generation.quality_stage import QualityStage
from sfray.sampling.specs import make_specs


@dataclass
class RawSample:
    """One sample before encoding: its record fields (NumPy arrays and scalars, None when the
    quality gate dropped it and it is not kept) and its summary row (see :class:`ProducedSample`)."""

    sample_id: int
    fields: dict[str, Any] | None
    row: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProducedSample:
    """One sample's outcome: its record bytes (None if the quality gate dropped it) and its summary
    (JSON-able; the manifest row of a dropped sample, which has no record)."""

    sample_id: int
    record: bytes | None
    row: dict[str, Any] = field(default_factory=dict)


class SampleProducer:
    """Builds the generator stack once; turns sample ids into encoded records."""

    def __init__(self, cfg: GenerateJobConfig, device: torch.device | str | None = None):
        self.cfg = cfg
        stack = build_stack(cfg, device)
        self.device, self.head, self.generator = stack.device, stack.head, stack.generator
        self.annotator = stack.annotator
        assert self.annotator is not None
        self.quality = QualityStage(cfg.annotate, cfg.quality, cfg.generate.resolution, self.head.faces,
                                    self.annotator.alignment)
        self.identity = self.generator.identity

    @torch.no_grad()
    def generate(self, sample_ids: np.ndarray, *, keep_dropped: bool = False) -> list[RawSample]:
        """Generate, annotate and gate ``sample_ids`` (sorted), in batches aligned to ``batch_size``;
        no encoding. A sample the quality gate drops keeps no fields unless ``keep_dropped``."""
        cfg = self.cfg
        unit = WorkUnit(-1, np.asarray(sample_ids, dtype=np.int64))
        results: list[RawSample] = []
        for batch_ids in unit.batches(cfg.generate.batch_size):
            specs = make_specs(
                batch_ids, cfg.seed, cfg.sampling, cfg.camera,
                n_shape=self.head.n_shape, n_expression=self.head.n_expression,
                latent_dim=self.generator.latent_dim,
            )
            out, extra, detections = self.quality.prepare(self.generator.generate(specs.to(self.device)))
            ann = self.annotator.annotate(out)
            verdicts = self.quality.verdicts(out, ann, extra, detections)
            for i, (sid, verdict) in enumerate(zip(batch_ids.tolist(), verdicts)):
                fields = to_record_fields(ann, out, specs, i)
                fields[Field.GENERATOR] = self.identity
                fields[Field.QUALITY] = dict(verdict.figures)
                fields[Field.STATUS], fields[Field.REASON] = verdict.status, verdict.reason
                keep = verdict.status != Status.DROPPED or keep_dropped  # a dropped sample keeps its row only
                results.append(RawSample(int(sid), fields if keep else None, sample_summary(fields)))
        return results

    def produce(self, sample_ids: np.ndarray, *, keep_dropped: bool = False) -> list[ProducedSample]:
        """Generate, annotate and encode ``sample_ids`` (sorted) in this process."""
        return encode_samples(self.generate(sample_ids, keep_dropped=keep_dropped), self.cfg.generate)


def encode_samples(raw: Sequence[RawSample], gen: GenerateSection) -> list[ProducedSample]:
    """The CPU stage: record bytes of every sample that has fields (``generate.*`` codec keys)."""
    options = record_options(gen)
    return [ProducedSample(r.sample_id, None if r.fields is None else encode_record(r.fields, **options), r.row)
            for r in raw]


def record_options(gen: GenerateSection) -> dict[str, Any]:
    """``encode_record`` keyword arguments of a config's ``generate`` section."""
    return {"image_format": gen.image_format, "image_quality": gen.image_quality, "array_codec": gen.array_codec}


def sample_summary(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON-able summary of a sample (everything but the heavy arrays): a dropped sample's manifest row."""

    def as_list(key: str) -> list[float]:
        return np.asarray(fields[key], dtype=np.float32).reshape(-1).tolist()

    return {
        Field.SAMPLE_ID: int(fields[Field.SAMPLE_ID]),
        Field.SEED: int(fields[Field.SEED]),
        Field.GENERATOR: str(fields[Field.GENERATOR]),
        Field.CAMERA: as_list(Field.CAMERA),
        Field.SHAPE: as_list(Field.SHAPE),
        Field.EXPRESSION: as_list(Field.EXPRESSION),
        Field.POSE: as_list(Field.POSE),
        Field.QUALITY: {k: (v.item() if hasattr(v, "item") else v)
                        for k, v in (fields.get(Field.QUALITY) or {}).items()},
        Field.STATUS: str(fields.get(Field.STATUS) or Status.OK),
        Field.REASON: str(fields.get(Field.REASON) or ""),
    }
