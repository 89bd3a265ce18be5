"""Export to the SynthForge / FaceSynthetics layouts and import back; the torch Dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from synth_records import random_sample

from sfray.cli import main
from sfray.conventions import BACKGROUND_ID, SEG_ID, SEG_PALETTE, Field
from sfray.data.colors import ids_to_rgb, rgb_to_ids
from sfray.data.dataset_yaml import read_dataset_yaml
from sfray.data.export import authors_depth_png
from sfray.data.facesynthetics import FACESYNTHETICS_TO_OURS, FS_ID, OURS_TO_FACESYNTHETICS
from sfray.data.importers import import_facesynthetics, import_synthforge
from sfray.data.torch_dataset import SfrayDataset

EXACT = (Field.IMAGE, Field.SEGMENTATION, Field.DEPTH, Field.MASK, Field.LANDMARKS_2D, Field.LANDMARKS_3D,
         Field.LANDMARKS_VISIBLE, Field.CAMERA, Field.SHAPE, Field.EXPRESSION, Field.POSE, Field.LATENT)


def test_synthforge_round_trip(small_dataset, tmp_path, capsys):
    out, back = tmp_path / "authors", tmp_path / "back"
    assert main(["dataset", "export", str(small_dataset), "--layout", "synthforge", "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "images").iterdir())[:2] == ["00000.png", "00001.png"]
    ann = json.loads((out / "annotations" / "00006.json").read_text())
    src = random_sample(7)
    assert len(ann["2d_kps"]) == 68 and len(ann["camera_params"]) == 25 and len(ann["flame_pose"]) == 6
    assert ann["flame_pose"][3:] == pytest.approx(src[Field.POSE][6:9].tolist())  # jaw
    seg_rgb = np.asarray(Image.open(out / "seg" / "00006.png"))
    assert np.array_equal(seg_rgb, SEG_PALETTE[src[Field.SEGMENTATION]])
    depth8 = np.asarray(Image.open(out / "depth" / "00006.png"))
    fg = src[Field.MASK]
    assert depth8[fg].min() == 0 and depth8[fg].max() == 255 and (depth8[~fg] == 255).all()

    assert main(["dataset", "import", "--layout", "synthforge", str(out), "--out", str(back)]) == 0
    assert main(["dataset", "verify", str(back)]) == 0
    a, b = SfrayDataset(small_dataset, with_meta=True), SfrayDataset(back, with_meta=True)
    assert b.sample_ids.tolist() == a.sample_ids.tolist() == [0, 1, 2, 3, 4, 5, 7]
    for i in range(len(a)):
        x, y = a[i], b[i]
        for name in EXACT:
            assert torch.equal(x[name], y[name]), name
        for name in (Field.SEED, Field.GENERATOR, Field.QUALITY):
            assert x[name] == y[name]
    assert read_dataset_yaml(back)["counts"]["total"] == 7
    # Re-importing is a no-op (resume): nothing new, same manifest.
    assert import_synthforge(out, back) == 0


def test_synthforge_release_files_are_relative_depth(tmp_path):
    """Files as the authors wrote them: colour seg with JPEG-ish noise, 128-style uint8 depth, 2d_kps."""
    src = tmp_path / "release"
    for sub in ("images", "seg", "depth", "annotations"):
        (src / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = np.full((32, 32), BACKGROUND_ID, np.uint8)
    ids[8:24, 8:24] = SEG_ID["face"]
    ids[12:14, 10:14] = SEG_ID["right_eyeball"]
    noisy = np.clip(ids_to_rgb(ids).astype(int) + rng.integers(-3, 4, (32, 32, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(src / "images" / "00003.png")
    Image.fromarray(noisy).save(src / "seg" / "00003.png")
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(src / "depth" / "00003.png")
    kps = np.concatenate([rng.random((67, 2)) * 32, [[40.0, 5.0]]])  # last point outside the image
    (src / "annotations" / "00003.json").write_text(json.dumps(
        {"z": [0.1] * 4, "camera_params": list(range(25)), "flame_shape": [0.5] * 3, "flame_exp": [0.2] * 2,
         "flame_pose": [0, 0, 0, 0.3, 0, 0], "2d_kps": kps.tolist(), "mse": 4.5}))
    assert import_synthforge(src, tmp_path / "ds") == 1
    rec = SfrayDataset(tmp_path / "ds", with_meta=True)[0]
    assert rec[Field.SAMPLE_ID] == 3 and rec["depth_kind"] == "relative"
    assert torch.equal(rec[Field.SEGMENTATION], torch.from_numpy(ids).long())
    assert rec[Field.DEPTH].shape == (8, 8) and float(rec[Field.DEPTH].max()) <= 1.0
    assert rec[Field.MASK].sum() == 16  # the 4x4 face block of the 8x8 depth grid
    assert rec[Field.POSE][6] == pytest.approx(0.3) and rec[Field.QUALITY] == {"fan_mean_px": 4.5}
    assert rec[Field.LANDMARKS_VISIBLE][:67].all() and not rec[Field.LANDMARKS_VISIBLE][67]


def test_facesynthetics_round_trip(small_dataset, tmp_path):
    out = tmp_path / "fs"
    assert main(["dataset", "export", str(small_dataset), "--layout", "facesynthetics",
                 "--out", str(out)]) == 0
    rows = np.loadtxt(out / "000006_ldmks.txt")
    src = random_sample(7)
    assert rows.shape == (70, 2)
    assert np.allclose(rows[:68], src[Field.LANDMARKS_2D])
    assert np.allclose(rows[68], src[Field.LANDMARKS_2D][36:42].mean(0))
    fs_seg = np.asarray(Image.open(out / "000006_seg.png"))
    assert np.array_equal(fs_seg, OURS_TO_FACESYNTHETICS[src[Field.SEGMENTATION]])

    ds = tmp_path / "fs_ds"
    assert import_facesynthetics(out, ds) == 7
    rec = SfrayDataset(ds, with_meta=True)[6]
    assert rec[Field.SAMPLE_ID] == 7
    assert torch.equal(rec[Field.IMAGE], torch.from_numpy(src[Field.IMAGE]))
    assert torch.equal(rec[Field.LANDMARKS_2D], torch.from_numpy(src[Field.LANDMARKS_2D]))
    expected = FACESYNTHETICS_TO_OURS[OURS_TO_FACESYNTHETICS[src[Field.SEGMENTATION]]]
    assert torch.equal(rec[Field.SEGMENTATION], torch.from_numpy(expected).long())
    # Exporting the imported data gives back the exact FaceSynthetics files (source map and pupils kept).
    again = tmp_path / "fs2"
    assert main(["dataset", "export", str(ds), "--layout", "facesynthetics", "--out", str(again)]) == 0
    for name in ("000006_seg.png", "000006.png"):
        assert np.array_equal(np.asarray(Image.open(out / name)), np.asarray(Image.open(again / name)))
    assert np.array_equal(np.loadtxt(out / "000006_ldmks.txt"), np.loadtxt(again / "000006_ldmks.txt"))


def test_label_mappings_are_total_and_sensible():
    assert OURS_TO_FACESYNTHETICS[SEG_ID["background"]] == FS_ID["background"]
    assert OURS_TO_FACESYNTHETICS[SEG_ID["right_eyeball"]] == FS_ID["right_eye"]
    assert OURS_TO_FACESYNTHETICS[SEG_ID["left_ear"]] == FS_ID["left_ear"]
    assert FACESYNTHETICS_TO_OURS[255] == BACKGROUND_ID
    # Classes with a FaceSynthetics counterpart survive ours -> FS -> ours unchanged.
    for name in ("nose", "upper_lip", "lower_lip", "inner_mouth", "left_eyebrow", "right_eyebrow", "neck"):
        assert FACESYNTHETICS_TO_OURS[OURS_TO_FACESYNTHETICS[SEG_ID[name]]] == SEG_ID[name]


def test_colour_decoding_tolerates_noise_and_rejects_far_colours():
    ids = np.arange(20, dtype=np.uint8).repeat(4).reshape(8, 10)
    rgb = ids_to_rgb(ids).astype(int)
    noisy = np.clip(rgb + np.random.default_rng(1).integers(-4, 5, rgb.shape), 0, 255).astype(np.uint8)
    assert np.array_equal(rgb_to_ids(noisy), ids)
    odd = np.full((2, 2, 3), (128, 128, 128), np.uint8)  # grey: far from every class colour
    assert (rgb_to_ids(odd) == BACKGROUND_ID).all()


def test_authors_depth_png_normalises_foreground_only():
    d = np.array([[0.0, 2.0], [3.0, 4.0]], np.float32)
    out = authors_depth_png(d, d > 0)
    assert out.tolist() == [[255, 0], [128, 255]]


def test_torch_dataset_in_a_dataloader(small_dataset):
    ds = SfrayDataset(small_dataset, float_image=True, fields=(Field.IMAGE, Field.SEGMENTATION, Field.DEPTH))
    assert len(ds) == 7
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1)
    batch = next(iter(loader))
    assert batch[Field.IMAGE].dtype == torch.float32 and batch[Field.IMAGE].shape == (4, 3, 32, 32)
    assert float(batch[Field.IMAGE].max()) <= 1.0
    assert batch[Field.SEGMENTATION].dtype == torch.int64 and batch[Field.DEPTH].dtype == torch.float32
    assert batch[Field.SAMPLE_ID].tolist() == [0, 1, 2, 3] and Field.LANDMARKS_2D not in batch
