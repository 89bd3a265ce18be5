"""The multi-task model: shapes, soft-argmax, batch independence, files on disk, size checks."""

from __future__ import annotations

import pytest
import torch

from sfray.conventions import NUM_LANDMARKS, NUM_SEG_CLASSES, Field
from sfray.errors import AssetError, ConfigError
from sfray.models import FEATURES, HEATMAPS, MODEL_SIZES, build_model, load_model, save_model
from sfray.models.hourglass import soft_argmax
from sfray.models.io import WEIGHTS_FILE


def test_registry_names_and_unknown_size():
    assert set(MODEL_SIZES.names()) == {"tiny", "paper", "release"}
    with pytest.raises(ConfigError, match=r"model\.size.*'tiyn'.*tiny"):
        MODEL_SIZES.check("tiyn")


def test_paper_spec_is_the_papers_architecture():
    spec = MODEL_SIZES.get("paper")
    # UNet(3 -> 64) encoder of 4 levels, full UNet heads on the 64 feature channels, 2 hourglass stacks
    assert (spec.encoder_base, spec.encoder_depth, spec.features, spec.head_base, spec.kp_stacks) == (64, 4, 64, 64, 2)
    assert MODEL_SIZES.get("release").kp_add_coord and not spec.kp_add_coord


def test_tiny_outputs():
    model = build_model("tiny").eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
    assert out[FEATURES].shape == (2, MODEL_SIZES.get("tiny").features, 64, 64)
    assert out[Field.SEGMENTATION].shape == (2, NUM_SEG_CLASSES, 64, 64)
    assert out[Field.DEPTH].shape == (2, 64, 64)
    assert [h.shape for h in out[HEATMAPS]] == [(2, NUM_LANDMARKS, 16, 16)] * 2  # 68 heatmaps at 1/4, 2 stacks
    lm = out[Field.LANDMARKS_2D]
    assert lm.shape == (2, NUM_LANDMARKS, 2) and bool(((lm >= 0) & (lm <= 64)).all())


def test_soft_argmax_finds_a_peak_in_pixel_coordinates():
    h = torch.full((1, 2, 8, 8), -5.0)
    h[0, 0, 2, 5] = 5.0  # cell (x=5, y=2) covers input pixels [20, 24) x [8, 12) at stride 4
    h[0, 1, 7, 0] = 5.0
    xy = soft_argmax(h, beta=20.0, stride=4)
    assert torch.allclose(xy[0, 0], torch.tensor([22.0, 10.0]), atol=1e-3)
    assert torch.allclose(xy[0, 1], torch.tensor([2.0, 30.0]), atol=1e-3)


def test_prediction_does_not_depend_on_the_batch():
    """GroupNorm: an image's output is the same alone or in a batch, in train mode too (DDP splits)."""
    torch.manual_seed(0)
    model = build_model("tiny").train()
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        alone = model(x[:1])[Field.SEGMENTATION]
        batch = model(x)[Field.SEGMENTATION][:1]
    # convolution kernels may pick another algorithm for another batch size (float reassociation,
    # ~1e-5 here); a normalisation over the batch would move outputs by ~1e-1
    assert torch.allclose(alone, batch, atol=1e-4, rtol=1e-4)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    model = build_model("tiny").eval()
    model.set_depth_normalisation(2.5, 0.1)
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m", expected_size="tiny")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x), again(x)
    assert torch.equal(a[Field.DEPTH], b[Field.DEPTH]) and float(again.depth_shift) == 2.5


def test_load_refuses_another_size_and_foreign_tensors(tmp_path):
    save_model(build_model("tiny"), tmp_path / "m")
    with pytest.raises(AssetError, match=r"size 'tiny'.*model\.size=paper"):
        load_model(tmp_path / "m", expected_size="paper")
    from safetensors.torch import save_file

    save_file({"encoder.inc.0.weight": torch.zeros(3)}, str(tmp_path / "m" / WEIGHTS_FILE))
    with pytest.raises(AssetError, match="do not fit model size 'tiny'"):
        load_model(tmp_path / "m")
    with pytest.raises(AssetError, match="not an sfray model directory"):
        load_model(tmp_path)
