"""Protocol crops, their inverses, and the torch dataset built on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from trees import make_300w, make_celebamask, make_lapa

from sfray.benchmarks import CelebAMaskReader, LaPaReader, W300Reader
from sfray.benchmarks.crop import (
    IGNORE_LABEL,
    label_box_crop,
    landmark_box_crop,
    square_crop,
    whole_image_crop,
)
from sfray.benchmarks.torch_dataset import KEY, BenchmarkDataset, crop_from_item
from sfray.conventions import Field


def test_crop_maps_pixels_points_and_labels_consistently():
    img = np.zeros((50, 60, 3), dtype=np.uint8)
    img[20, 30] = 255  # pixel whose centre is (30.5, 20.5)
    crop = square_crop((30.0, 25.0), 20.0, 40, (60, 50))  # scale 2, so the pixel becomes 2x2 pixels
    centre = crop.points_to_crop(np.array([[30.5, 20.5]]))[0]
    np.testing.assert_allclose(centre, [21.0, 11.0])
    out = crop.warp_image(img)
    ys, xs = np.nonzero(out[..., 0] > 100)
    assert (xs.mean() + 0.5, ys.mean() + 0.5) == pytest.approx(tuple(centre), abs=0.01)
    np.testing.assert_allclose(crop.points_to_original(crop.points_to_crop(np.array([[1.0, 2.0]]))), [[1.0, 2.0]])
    labels = np.arange(50 * 60).reshape(50, 60) % 7
    back = crop.labels_to_original(crop.warp_labels(labels), fill=99)
    inside = back != 99
    assert inside.sum() == 20 * 20  # the 20-px square the crop covers
    np.testing.assert_array_equal(back[inside], labels[inside])


def test_logits_back_to_original_then_argmax():
    crop = whole_image_crop((64, 48), 32)
    labels = np.zeros((48, 64), dtype=np.int64)
    labels[:, 32:] = 2
    logits = torch.nn.functional.one_hot(torch.from_numpy(crop.warp_labels(labels)), 3).permute(2, 0, 1).float()
    back = crop.logits_to_original(logits).argmax(0).numpy()
    assert (back == labels).mean() > 0.97  # only the boundary column may blur


def test_protocol_boxes():
    pts = np.array([[10.0, 20.0], [50.0, 40.0]])  # box 40 x 20, centre (30, 30)
    c = landmark_box_crop(pts, 100, (80, 80))
    np.testing.assert_allclose(c.points_to_crop(np.array([[30.0, 30.0]])), [[50.0, 50.0]])
    np.testing.assert_allclose(c.matrix[0, 0], 100 / (1.25 * 40))
    lab = np.zeros((100, 100), dtype=np.int64)
    lab[10:30, 40:50] = 3  # pixel box x [40, 50), y [10, 30): 10 x 20, centre (45, 20)
    c = label_box_crop(lab, 64, pad=5.0)
    np.testing.assert_allclose(c.matrix[0, 0], 64 / 30.0)
    np.testing.assert_allclose(c.points_to_crop(np.array([[45.0, 20.0]])), [[32.0, 32.0]])


def test_dataset_items_map_back_to_the_ground_truth(tmp_path):
    make_lapa(tmp_path)
    reader = LaPaReader(tmp_path)
    ds = BenchmarkDataset(reader, "test", size=48)
    assert len(ds) == 6  # every image with labels or landmarks usable
    item = ds[0]
    assert item[Field.IMAGE].shape == (3, 48, 48) and item[Field.IMAGE].dtype == torch.uint8
    assert item[Field.SEGMENTATION].shape == (48, 48) and item[Field.LANDMARKS_2D].shape == (106, 2)
    entry = next(e for e in reader.entries() if e.key == item[KEY])
    sample = reader.load(entry)
    back = crop_from_item(item).points_to_original(item[Field.LANDMARKS_2D].numpy())
    np.testing.assert_allclose(back, sample.landmarks, atol=1e-3)
    assert (item[Field.SEGMENTATION] == IGNORE_LABEL).any()  # the 80 px padding reaches outside the image
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch[Field.IMAGE].shape == (3, 3, 48, 48) and len(batch[KEY]) == 3
    no_labels = next(ds[i] for i in range(len(ds)) if ds.entries[i].key == "test/images/v.jpg")
    assert (no_labels[Field.SEGMENTATION] == IGNORE_LABEL).all()
    bad_points = next(ds[i] for i in range(len(ds)) if ds.entries[i].key == "test/images/z.jpg")
    assert not bad_points[Field.LANDMARKS_VISIBLE].any()


def test_dataset_for_300w_and_celebamask(tmp_path):
    make_300w(tmp_path / "w")
    ds = BenchmarkDataset(W300Reader(tmp_path / "w"), "full", size=32)
    assert len(ds) == 4 and set(ds[0]) >= {Field.IMAGE, Field.LANDMARKS_2D, Field.LANDMARKS_VISIBLE}
    pts = ds[0][Field.LANDMARKS_2D].numpy()
    box = pts.max(0) - pts.min(0)
    assert max(box) == pytest.approx(32 / 1.25, rel=1e-4)  # the 1.25 box fills the input
    make_celebamask(tmp_path / "c")
    item = BenchmarkDataset(CelebAMaskReader(tmp_path / "c"), "train", size=16)[0]
    assert item[Field.SEGMENTATION].shape == (16, 16) and int(item[Field.SEGMENTATION].max()) <= 18


def test_nme_is_the_same_in_the_crop_and_the_original_frame():
    from sfray.evaluate.landmarks import nme

    rng = np.random.default_rng(3)
    gt = rng.uniform(100, 400, size=(68, 2))
    pred = gt + rng.normal(0, 4, size=gt.shape)
    crop = landmark_box_crop(gt, 64, (500, 500))  # a scale of about 0.17 and a shift
    a = nme(pred[None], gt[None])[0]
    b = nme(crop.points_to_crop(pred)[None], crop.points_to_crop(gt)[None])[0]
    assert a == pytest.approx(b, rel=1e-12) and a > 0
