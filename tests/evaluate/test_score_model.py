"""A model's crop-frame outputs go back to the original frame and score like files do."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from trees import make_300w, make_lapa, write_image, write_png

from sfray.benchmarks import LaPaDReader, LaPaReader, W300Reader
from sfray.benchmarks.schemas import LAPA_SCHEMA
from sfray.conventions import Field
from sfray.evaluate.run import oracle_predict, score_model


def test_oracle_outputs_score_perfectly_after_the_round_trip(tmp_path):
    make_lapa(tmp_path)
    reader = LaPaReader(tmp_path)
    scores = score_model(reader, "test", partial(oracle_predict, num_classes=11), size=64, batch_size=4)
    assert scores.landmarks["nme"] == pytest.approx(0.0, abs=1e-5) and scores.landmarks["images"] == 5
    assert scores.parsing["images"] == 3
    assert set(scores.skipped["parsing"]) == {"test/images/y.jpg", "test/images/v.jpg", "test/images/u.jpg"}


def test_oracle_parsing_survives_crop_and_back_warp(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(tmp_path / "test/images" / f"f{i}.jpg", 200, 160, seed=i)
        blocks = rng.integers(0, 11, size=(4, 5)).astype(np.uint8)  # 40-px blocks
        write_png(tmp_path / "test/labels" / f"f{i}.png", np.kron(blocks, np.ones((40, 40), dtype=np.uint8)))
    reader = LaPaReader(tmp_path)
    scores = score_model(reader, "test", partial(oracle_predict, num_classes=11), size=256, tasks=("parsing",))
    # the 80 px pad shrinks the face to ~0.7x; bilinear logits coming back only move block edges
    assert scores.parsing["mean_f1"] > 0.97 and scores.parsing["images"] == 2


def test_shifted_outputs_give_the_closed_form_nme(tmp_path):
    facts = make_300w(tmp_path)
    reader = W300Reader(tmp_path)

    def shifted(batch):  # 2 crop pixels right; the crop scale turns it into 2/s original pixels
        return {Field.LANDMARKS_2D: batch[Field.LANDMARKS_2D] + torch.tensor([2.0, 0.0])}

    scores = score_model(reader, "common", shifted, size=50)
    expected = []
    for key in ("helen/testset/t1.jpg", "helen/testset/t2.JPG", "helen/testset/U3.jpg"):
        p = facts["points"][key]
        side = 1.25 * (p.max(0) - p.min(0)).max()
        expected.append((2.0 * side / 50) / np.linalg.norm(p[36] - p[45]))
    assert scores.landmarks["nme"] == pytest.approx(np.mean(expected), rel=1e-4)


def test_depth_round_trip_on_lapa_d(tmp_path):
    make_lapa(tmp_path)
    (tmp_path / "test_list.txt").write_text("x\nw\n")
    yy, xx = np.mgrid[0:32, 0:40]
    depth = (50 + 3 * xx + 2 * yy).astype(np.uint8)  # a plane over the whole image
    for name in ("x", "w"):
        write_png(tmp_path / "depth" / f"{name}.png", depth)
    reader = LaPaDReader(tmp_path)
    scores = score_model(reader, "test", partial(oracle_predict, num_classes=LAPA_SCHEMA.num_classes),
                         size=80, tasks=("depth",))
    # bilinear warps there and back keep a plane (up to the 8-bit rounding of the ground truth)
    assert scores.depth["images"] == 2 and scores.depth["si_rmse"] < 2.0 / 255


def test_direct_mapping_probabilities_sum_the_merged_classes():
    from sfray.benchmarks.schemas import SYNTH_TO_LAPA
    from sfray.conventions import NUM_SEG_CLASSES, SEG_ID
    from sfray.evaluate.run import direct_mapping_probabilities

    logits = torch.randn(2, NUM_SEG_CLASSES, 3, 4)
    probs = direct_mapping_probabilities(logits, LAPA_SCHEMA)
    assert probs.shape == (2, 11, 3, 4)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 3, 4))
    soft = logits.softmax(1)
    skin = [i for i in range(NUM_SEG_CLASSES) if SYNTH_TO_LAPA[i] == 1]
    assert SEG_ID["left_ear"] in skin and SEG_ID["forehead"] in skin
    torch.testing.assert_close(probs[:, 1], soft[:, skin].sum(1))
