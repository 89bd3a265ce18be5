"""The Stage II label nets: one per task, f_s as an optional extra input, saved and loaded by path."""

from __future__ import annotations

import pytest
import torch

from sfray.conventions import Field
from sfray.errors import AssetError
from sfray.models import build_model
from sfray.models.labelnet import LabelFinetuneModel, LabelNetSpec, load_labelnet, save_labelnet


def _spec(use_features: bool, **kw) -> LabelNetSpec:
    base = dict(num_classes=11, num_landmarks=106, depth=True, use_features=use_features, feature_channels=16,
                hidden=8, layers=3)
    return LabelNetSpec(**{**base, **kw})


@pytest.mark.parametrize("use_features", [False, True])
def test_outputs_in_the_benchmark_layout(use_features):
    torch.manual_seed(0)
    stage1 = build_model("tiny").eval()
    with torch.no_grad():
        s1 = stage1(torch.rand(2, 3, 64, 64))
    net = LabelFinetuneModel(_spec(use_features))
    out = net(s1)
    assert out[Field.SEGMENTATION].shape == (2, 11, 64, 64)
    assert out[Field.LANDMARKS_2D].shape == (2, 106, 2)
    assert out[Field.DEPTH].shape == (2, 64, 64)
    # the first conv of each net sees Stage I's prediction, plus the 16 f_s channels when asked
    extra = 16 if use_features else 0
    assert net.seg[0].in_channels == 20 + extra
    assert net.landmarks[0].in_channels == 68 + extra
    assert net.depth[0].in_channels == 1 + extra
    # soft-argmax keeps points inside the input
    assert float(out[Field.LANDMARKS_2D].min()) >= 0 and float(out[Field.LANDMARKS_2D].max()) <= 64


def test_f_s_changes_the_prediction_only_with_use_features():
    torch.manual_seed(0)
    stage1 = build_model("tiny").eval()
    with torch.no_grad():
        s1 = stage1(torch.rand(1, 3, 64, 64))
    changed = dict(s1)
    changed["features"] = s1["features"] + 1.0
    for use in (False, True):
        net = LabelFinetuneModel(_spec(use, num_landmarks=0, depth=False)).eval()
        same = torch.equal(net(s1)[Field.SEGMENTATION], net(changed)[Field.SEGMENTATION])
        assert same is (not use)


def test_a_count_of_zero_leaves_the_net_out():
    net = LabelFinetuneModel(_spec(False, num_landmarks=0, depth=False))
    assert net.landmarks is None and net.depth is None and net.seg is not None


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    stage1 = build_model("tiny").eval()
    with torch.no_grad():
        s1 = stage1(torch.rand(1, 3, 64, 64))
    net = LabelFinetuneModel(_spec(True)).eval()
    net.set_stage1_depth(2.5, 0.3)
    save_labelnet(net, tmp_path / "m")
    back = load_labelnet(tmp_path / "m")
    assert back.spec == net.spec
    for k, v in net(s1).items():
        assert torch.equal(v, back(s1)[k])
    with pytest.raises(AssetError, match="not a Stage II model directory"):
        load_labelnet(tmp_path)


def test_a_class_prior_starts_the_parsing_net_at_the_direct_mapping(tmp_path):
    from sfray.benchmarks.schemas import LAPA_SCHEMA, SYNTH_TO_LAPA
    from sfray.evaluate.run import direct_mapping_probabilities
    from sfray.models.labelnet import PRIOR_FLOOR

    torch.manual_seed(2)
    stage1 = build_model("tiny").eval()
    with torch.no_grad():
        s1 = stage1(torch.rand(2, 3, 64, 64))
    spec = _spec(False, num_landmarks=0, depth=False, seg_probabilities=True, seg_prior=tuple(SYNTH_TO_LAPA))
    net = LabelFinetuneModel(spec).eval()
    direct = direct_mapping_probabilities(s1[Field.SEGMENTATION], LAPA_SCHEMA)
    logits = net(s1)[Field.SEGMENTATION]
    torch.testing.assert_close(logits, direct.clamp_min(PRIOR_FLOOR).log())
    assert torch.equal(logits.argmax(1), direct.argmax(1))
    # a trained correction moves it, and the prior table survives a save and load
    with torch.no_grad():
        net.seg[-1].bias[LAPA_SCHEMA.num_classes - 1] += 5.0
    save_labelnet(net, tmp_path / "m")
    back = load_labelnet(tmp_path / "m")
    assert back.spec == spec and back.spec.seg_prior == tuple(int(c) for c in SYNTH_TO_LAPA)
    assert torch.equal(back(s1)[Field.SEGMENTATION], net(s1)[Field.SEGMENTATION])
    assert not torch.equal(back(s1)[Field.SEGMENTATION], logits)


def test_a_saved_spec_without_the_parsing_keys_reads_raw_scores_without_a_prior(tmp_path):
    import json

    torch.manual_seed(3)
    stage1 = build_model("tiny").eval()
    with torch.no_grad():
        s1 = stage1(torch.rand(1, 3, 64, 64))
    net = LabelFinetuneModel(_spec(False, num_landmarks=0, depth=False)).eval()
    save_labelnet(net, tmp_path / "m")
    meta_path = tmp_path / "m" / "labelnet.json"
    meta = json.loads(meta_path.read_text())
    for key in ("seg_probabilities", "seg_prior"):
        del meta["spec"][key]
    meta_path.write_text(json.dumps(meta))
    back = load_labelnet(tmp_path / "m")
    assert back.spec.seg_prior == () and back.spec.seg_probabilities is False
    # raw scores in: scaling them changes the output (probabilities would be unchanged by a shift)
    shifted = dict(s1)
    shifted[Field.SEGMENTATION] = s1[Field.SEGMENTATION] + 3.0
    assert not torch.equal(back(s1)[Field.SEGMENTATION], back(shifted)[Field.SEGMENTATION])


def test_a_prior_that_does_not_fit_the_classes_is_refused():
    with pytest.raises(ValueError, match="seg_prior"):
        LabelFinetuneModel(_spec(False, seg_prior=(0, 1, 2)))
    with pytest.raises(ValueError, match="seg_prior"):
        LabelFinetuneModel(_spec(False, seg_prior=(11,) * 20))
