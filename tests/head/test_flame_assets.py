"""load_flame_assets / build_head: combining the FLAME files, and clear errors for missing parts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from flame_fixture_builder import write_obj

from sfray.config.schema import HeadConfig
from sfray.conventions import SEG_ID
from sfray.errors import AssetError, ConfigError
from sfray.head import HeadModel, HeadOutput, build_head
from sfray.head.flame import load_flame_assets, load_flame_parts
from sfray.head.label_map import load_label_map


def test_assets_combine_every_file(flame_assets, flame_files):
    a, t = flame_assets, flame_files.truth
    assert a.kind == "flame" and a.source == str(flame_files.model)
    assert a.shapedirs.shape == (5023, 3, 300) and a.exprdirs.shape == (5023, 3, 100)
    assert np.array_equal(a.uv_faces, t.uv_faces) and a.uv_coords.shape == (5118, 2)
    # the colour map wins over the masks
    assert np.array_equal(a.uv_label_map, load_label_map(flame_files.label_map))
    assert set(a.vertex_regions) == set(t.regions)
    assert np.array_equal(a.landmarks.full_faces, t.full_faces)


def test_label_map_derived_from_masks_when_no_image(flame_cfg, flame_files):
    cfg = dataclasses.replace(flame_cfg, label_map=None, landmark_embedding=None)
    assets, missing = load_flame_parts(cfg)
    assert set(missing) == {"landmark_embedding"}
    lm = assets.uv_label_map
    assert lm.shape == (1024, 1024)
    t = flame_files.truth
    # faces with a left_eyeball majority are filled with left_eyeball at every pixel centre they contain
    in_eye = np.isin(t.faces, t.regions["left_eyeball"]).sum(axis=1) >= 2
    assert in_eye.sum() > 0
    checked = 0
    for f in np.nonzero(in_eye)[0]:
        tri = t.uv_coords[t.uv_faces[f]] * [1024, -1024] + [0, 1024]  # pixel x, y (row 0 at t = 1)
        (x0, y0), (x1, y1) = np.floor(tri.min(0)).astype(int), np.ceil(tri.max(0)).astype(int)
        for y in range(max(y0, 0), min(y1, 1023) + 1):
            for x in range(max(x0, 0), min(x1, 1023) + 1):
                p, a, b, c = np.array([x + 0.5, y + 0.5]), *tri
                d = [(q - o)[0] * (p - o)[1] - (q - o)[1] * (p - o)[0] for o, q in ((a, b), (b, c), (c, a))]
                if min(d) > 1e-6 or max(d) < -1e-6:  # strictly inside
                    assert lm[y, x] == SEG_ID["left_eyeball"]
                    checked += 1
    assert checked > 20
    labels = set(np.unique(lm).tolist())
    assert {SEG_ID[n] for n in ("left_eyeball", "right_eyeball", "neck", "scalp", "face")} <= labels
    assert labels & {SEG_ID["upper_lip"], SEG_ID["lower_lip"]}


def test_missing_parts_are_explained(flame_files):
    cfg = HeadConfig(kind="flame", path=str(flame_files.model))
    with pytest.raises(AssetError) as err:
        load_flame_assets(cfg)
    msg = str(err.value)
    assert msg.startswith(str(flame_files.model))
    assert "landmarks need an embedding" in msg and "head.template_obj" in msg and "UV label map" in msg
    with pytest.raises(ConfigError, match="head.path"):
        load_flame_assets(HeadConfig(kind="flame"))


def test_obj_with_reordered_faces_is_aligned(tmp_path, flame_cfg, flame_files):
    t = flame_files.truth
    rng = np.random.default_rng(3)
    perm = rng.permutation(t.faces.shape[0])
    roll = rng.integers(0, 3, size=t.faces.shape[0])
    faces = np.stack([np.roll(f, r) for f, r in zip(t.faces[perm], roll)])
    uv_faces = np.stack([np.roll(f, r) for f, r in zip(t.uv_faces[perm], roll)])
    obj = tmp_path / "head_template.obj"
    write_obj(obj, dataclasses.replace(t, faces=faces, uv_faces=uv_faces))
    assets, _ = load_flame_parts(dataclasses.replace(flame_cfg, template_obj=str(obj), masks=None))
    assert np.array_equal(assets.uv_faces, t.uv_faces)

    few = tmp_path / "few.obj"
    few.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\n")
    with pytest.raises(AssetError, match=r"few.obj: has 3 vertices but the model has 5023"):
        load_flame_parts(dataclasses.replace(flame_cfg, template_obj=str(few)))


def test_build_head_flame(flame_cfg):
    cfg = dataclasses.replace(flame_cfg, n_shape=50, n_expression=20, dtype="float32")
    head = build_head(cfg, device="cpu")
    assert isinstance(head, HeadModel)
    assert (head.n_shape, head.n_expression, head.dtype) == (50, 20, torch.float32)
    out = head(torch.zeros(2, 50), torch.zeros(2, 20), torch.zeros(2, 15))
    assert isinstance(out, HeadOutput)
    assert out.landmarks.shape == (2, 68, 3) and out.landmarks_fixed.shape == (2, 68, 3)
    with pytest.raises(ConfigError, match="head.n_shape"):
        build_head(dataclasses.replace(flame_cfg, n_shape=0))


def test_head_without_embedding_refuses_forward(flame_cfg):
    assets, missing = load_flame_parts(dataclasses.replace(flame_cfg, landmark_embedding=None))
    head = HeadModel(assets, 10, 10)
    assert not head.has_landmarks and head.summary()["landmarks"]["available"] is False
    with pytest.raises(AssetError, match="no landmark embedding was loaded"):
        head()


def test_build_head_procedural():
    proc = pytest.importorskip("sfray.head.procedural")
    if not hasattr(proc, "build_procedural_assets"):
        pytest.skip("the procedural head builder is not available yet")
    head = build_head(HeadConfig())
    assert head.kind == "procedural" and head.has_landmarks
    out = head(pose=torch.zeros(1, 15))
    assert out.landmarks.shape == (1, 68, 3)
    assert build_head(HeadConfig()) is not head  # a fresh module each time, over cached assets
