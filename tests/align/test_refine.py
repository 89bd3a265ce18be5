"""Per-sample refinement: bounded residual maps that pull each annotation onto its image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfray.align.refine import REFINE_FIGURES, Refiner
from sfray.annotate.annotator import Annotator
from sfray.config import GenerateJobConfig, load_config
from sfray.conventions import Extra

RES = 128


def _batch(knob: str, n: int = 4):
    from sfray.generators.factory import build_generator
    from sfray.head import build_head
    from sfray.sampling import make_specs

    cfg = load_config(GenerateJobConfig, None, [f"generate.resolution={RES}", f"faults.misalign={knob}",
                                                "generator.procedural.hair_cap_prob=0",
                                                "annotate.refine.enabled=true"])
    head = build_head(cfg.head)
    gen = build_generator(cfg, head, "cpu")
    specs = make_specs(np.arange(n), 1, cfg.sampling, cfg.camera, n_shape=head.n_shape,
                       n_expression=head.n_expression, latent_dim=0)
    return cfg, head, gen.generate(specs)


def _landmark_error(head, cfg, out) -> torch.Tensor:
    ann = Annotator(head, RES, cfg.annotate).annotate(out)
    return (ann.landmarks_2d - out.extras[Extra.LANDMARKS_2D_RENDERED]).norm(dim=-1).mean(dim=-1)


def test_refinement_pulls_each_annotation_onto_its_image():
    cfg, head, out = _batch("[1.5,-1.0,0.5,0.01,-0.008,0.006,1.0]")  # rigid residual, within bounds
    before = _landmark_error(head, cfg, out)
    result = Refiner(cfg.annotate.refine, head.faces).refine(out)
    after = _landmark_error(head, cfg, result.output)
    assert before.min() > 1.5
    assert after.mean() < before.mean() / 4, (before, after)
    assert torch.equal(result.output.image, out.image)  # only the annotation transform changes
    for fig in result.figures:
        assert set(REFINE_FIGURES) <= set(fig)
        assert fig["refine_cost_after"] < fig["refine_cost_before"]
        assert fig["refine_scale"] == pytest.approx(1.0)  # rigid
        assert fig["alignment_residual"] > 1.0  # the landmarks moved, pixels at 512
    # the residual is recorded per sample: R_i applied after the global map
    assert result.residuals.shape == (out.image.shape[0], 4, 4)


def test_refinement_stays_inside_its_bounds():
    cfg, head, out = _batch("[0,12,0,0,0,0,1.0]", n=2)  # 12 degrees: beyond max_rotation_deg
    rcfg = cfg.annotate.refine
    result = Refiner(rcfg, head.faces).refine(out)
    for fig in result.figures:
        assert fig["refine_rotation_deg"] <= rcfg.max_rotation_deg + 1e-6
        assert fig["refine_translation"] <= rcfg.max_translation + 1e-9
