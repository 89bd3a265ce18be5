"""The quality gate: per-sample figures, the keep/flag/drop policy, the authors' preset, bad thresholds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from sfray.annotate.annotator import Annotator
from sfray.annotate.quality import AUTHORS_MAX_DETECTOR_PX, QualityGate
from sfray.config import GenerateJobConfig, load_config
from sfray.config.schema import QualityConfig
from sfray.conventions import Extra
from sfray.errors import ConfigError

RES = 96
BAD = (1, 4)  # samples whose annotation gets another expression than the image


@pytest.fixture(scope="module")
def stack():
    from sfray.generators.factory import build_generator
    from sfray.head import build_head
    from sfray.sampling import make_specs

    cfg = load_config(GenerateJobConfig, None, [f"generate.resolution={RES}"])
    head = build_head(cfg.head)
    gen = build_generator(cfg, head, "cpu")
    specs = make_specs(np.arange(6), 3, cfg.sampling, cfg.camera, n_shape=head.n_shape,
                       n_expression=head.n_expression, latent_dim=0)
    out = gen.generate(specs)
    # the same samples rendered with a clearly different expression: their meshes replace the
    # annotation's mesh of the BAD samples, so image and annotation disagree exactly there
    other = gen.generate(dataclasses.replace(specs, expression=-1.5 * specs.expression))
    bad = torch.zeros(len(specs), dtype=torch.bool)
    bad[list(BAD)] = True

    def pick(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(bad.view(-1, *[1] * (a.dim() - 1)), b, a)

    mixed = dataclasses.replace(out, head_vertices=pick(out.head_vertices, other.head_vertices),
                                head_landmarks=pick(out.head_landmarks, other.head_landmarks),
                                head_landmarks_fixed=pick(out.head_landmarks_fixed,
                                                          other.head_landmarks_fixed))
    ann = Annotator(head, RES, cfg.annotate).annotate(mixed)
    return mixed, ann


def test_figures_exist_for_every_sample(stack):
    out, ann = stack
    verdicts = QualityGate(QualityConfig(), RES).evaluate(out, ann)
    assert len(verdicts) == out.image.shape[0]
    for v in verdicts:
        assert v.status == "ok" and v.reason == ""  # policy keep: figures only
        for key in ("mask_iou", "depth_residual", "depth_residual_p90", "landmark_depth", "landmark_gt_px"):
            assert key in v.figures and math.isfinite(v.figures[key])
        assert 0.0 <= v.figures["mask_iou"] <= 1.0


@pytest.mark.parametrize("policy,status", [("flag", "flagged"), ("drop", "dropped")])
def test_inconsistent_samples_and_only_those_fail(stack, policy, status):
    out, ann = stack
    gate = QualityGate(QualityConfig(policy=policy, max_landmark_depth=0.0025), RES)
    verdicts = gate.evaluate(out, ann)
    got = [v.status for v in verdicts]
    want = [status if i in BAD else "ok" for i in range(len(verdicts))]
    assert got == want, [round(v.figures["landmark_depth"], 5) for v in verdicts]
    assert all(verdicts[i].reason == "landmark_depth" for i in BAD)
    # the ground-truth landmark figure confirms which samples really disagree
    gt = [v.figures["landmark_gt_px"] for v in verdicts]
    assert min(gt[i] for i in BAD) > 5.0 and max(gt[i] for i in range(len(gt)) if i not in BAD) < 0.01


def test_authors_preset_drops_far_and_faceless_samples(stack):
    out, ann = stack
    truth = out.extras[Extra.LANDMARKS_2D_RENDERED].to(torch.float64)
    # detector error in pixels at 512 on top of the image's true landmarks; samples 1 and 4 show
    # another expression than their annotation, so even a perfect detector disagrees there
    shift_512 = torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0, 20.0])
    def detector(images: torch.Tensor):
        assert images.dtype == torch.uint8 and images.shape[1:] == (3, RES, RES)
        pts = truth.clone()
        pts[..., 0] += (shift_512 * RES / 512.0)[:, None]  # a horizontal offset
        return [None if i == 3 else pts[i] for i in range(images.shape[0])]

    cfg = QualityConfig(preset="authors", detector="unused.by.this.test")
    gate = QualityGate(cfg, RES, detector=detector)
    verdicts = gate.evaluate(out, ann)
    assert gate.max_detector_px == AUTHORS_MAX_DETECTOR_PX and gate.policy == "drop"
    assert [v.status for v in verdicts] == ["ok", "dropped", "ok", "dropped", "dropped", "dropped"]
    assert [v.reason for v in verdicts] == ["", "detector_px", "", "no_face", "detector_px", "detector_px"]
    # detector_px is stated at 512 whatever the generation resolution
    assert abs(verdicts[0].figures["detector_px"]) < 0.05
    assert abs(verdicts[2].figures["detector_px"] - 5.0) < 0.05
    assert verdicts[3].figures["detector_face"] is False


@pytest.mark.parametrize("override,key", [
    ("quality.min_mask_iou=1.5", "quality.min_mask_iou"),
    ("quality.max_depth_residual=0", "quality.max_depth_residual"),
    ("quality.max_landmark_depth=-1", "quality.max_landmark_depth"),
    ("quality.max_detector_px=0", "quality.max_detector_px"),
    ("quality.policy=burn", "quality.policy"),
    ("quality.preset=paper", "quality.preset"),
    ("quality.preset=authors", "quality.detector"),
    ("annotate.refine.steps=0", "annotate.refine.steps"),
    ("annotate.refine.max_rotation_deg=90", "annotate.refine.max_rotation_deg"),
    ("annotate.refine.loss.robust=tukey", "annotate.refine.loss.robust"),
])
def test_out_of_range_thresholds_name_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"'{key}'"):
        load_config(GenerateJobConfig, None, [override])


def test_quality_stage_runs_refinement_and_records_its_figures(stack):
    from sfray.align.refine import REFINE_FIGURES
    from sfray.config.schema import AnnotateConfig, HeadConfig, RefineConfig
    from sfray.generation.quality_stage import QualityStage
    from sfray.head import build_head

    out, _ = stack
    head = build_head(HeadConfig())
    annotate_cfg = AnnotateConfig(refine=RefineConfig(enabled=True, steps=2))
    gate_cfg = QualityConfig(policy="flag", max_alignment_residual=1e-6)
    stage = QualityStage(annotate_cfg, gate_cfg, RES, head.faces)
    refined, extra, det = stage.prepare(out)
    assert det is None and extra is not None and len(extra) == out.image.shape[0]
    ann = Annotator(head, RES, annotate_cfg).annotate(refined)
    verdicts = stage.verdicts(refined, ann, extra, det)
    for v in verdicts:
        assert set(REFINE_FIGURES) <= set(v.figures)
        assert v.status == "flagged" and "alignment_residual" in v.reason  # any residual exceeds 1e-6 px
