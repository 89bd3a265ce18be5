"""Landmark embeddings in RingNet and DECA formats, and the yaw-dependent contour rows."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest
import torch
from flame_fixture_builder import save_npy_object

from sfray.errors import AssetError
from sfray.head.flame_embedding import read_landmark_embedding
from sfray.head.layer import HeadModel


def _bary(verts: np.ndarray, faces: np.ndarray, fidx: np.ndarray, bary: np.ndarray) -> np.ndarray:
    return np.einsum("lkc,lk->lc", verts[faces[fidx]], bary)


@pytest.fixture(scope="module")
def ringnet_head(flame_assets, flame_files):
    """The fixture model with landmarks from the RingNet static + dynamic files."""
    emb = read_landmark_embedding(flame_files.static, flame_files.dynamic, 9976)
    return HeadModel(dataclasses.replace(flame_assets, landmarks=emb), n_shape=10, n_expression=10,
                     dtype=torch.float64)


def test_ringnet_files_load_exactly(flame_files):
    t = flame_files.truth
    with pytest.raises(UnicodeDecodeError):  # a Python-2 pickle: its str data needs latin1
        pickle.loads(flame_files.static.read_bytes())
    emb = read_landmark_embedding(flame_files.static, flame_files.dynamic, 9976)
    assert np.array_equal(emb.static_faces, t.static_faces) and np.array_equal(emb.static_bary, t.static_bary)
    assert np.array_equal(emb.dynamic_faces, t.dynamic_faces)
    assert np.array_equal(emb.dynamic_bary, t.dynamic_bary)
    # fixed 68 = frontal contour (row 0) + static
    assert np.array_equal(emb.full_faces, np.concatenate([t.dynamic_faces[0], t.static_faces]))


def test_deca_file_with_torch_tensors_loads(flame_files):
    t = flame_files.truth
    emb = read_landmark_embedding(flame_files.deca, None, 9976)
    assert emb.dynamic_faces.shape == (79, 17) and emb.dynamic_faces.dtype == np.int64
    assert np.array_equal(emb.dynamic_faces, t.dynamic_faces)
    np.testing.assert_allclose(emb.dynamic_bary, t.dynamic_bary, atol=1e-7)  # stored as float32 tensors
    assert np.array_equal(emb.full_faces, t.full_faces) and emb.full_faces.shape == (68,)
    assert np.array_equal(emb.static_bary, t.static_bary)


@pytest.mark.parametrize("joint,deg,row", [
    ("global", -20.0, 20), ("global", 20.0, 59), ("neck", -20.0, 20), ("neck", 20.0, 59),
    ("both", -10.0, 20), ("global", -60.0, 39), ("global", 60.0, 78), ("global", 0.0, 0),
])
def test_contour_row_follows_head_yaw(ringnet_head, flame_files, joint, deg, row):
    """As FLAME_PyTorch/smplx/DECA: y = -(yaw of the root->neck chain); y >= 0 -> row y,
    y < 0 -> row 39 - y, clamped to +-39. Turning the face towards +x (positive yaw) uses rows 40..78."""
    t = flame_files.truth
    pose = torch.zeros(1, 15, dtype=torch.float64)
    rad = math.radians(deg)
    if joint in ("global", "both"):
        pose[0, 1] = rad  # rotation about +y
    if joint in ("neck", "both"):
        pose[0, 4] = rad
    out = ringnet_head(pose=pose)
    assert ringnet_head.contour_rows(pose).tolist() == [row]
    verts = out.vertices[0].numpy()
    want_contour = _bary(verts, t.faces, t.dynamic_faces[row], t.dynamic_bary[row])
    np.testing.assert_allclose(out.landmarks[0, :17].numpy(), want_contour, atol=1e-12)
    want_static = _bary(verts, t.faces, t.static_faces, t.static_bary)
    np.testing.assert_allclose(out.landmarks[0, 17:].numpy(), want_static, atol=1e-12)


def test_jaw_and_pitch_do_not_change_the_row(ringnet_head):
    pose = torch.zeros(2, 15, dtype=torch.float64)
    pose[0, 6] = 0.4  # jaw
    pose[1, 0] = 0.5  # global pitch about x
    assert ringnet_head.contour_rows(pose).tolist() == [0, 0]


def test_static_only_ringnet_file_needs_dynamic(flame_files):
    msg = (r"flame_static_embedding.pkl: holds only the 51 static landmarks; "
           r"the 17 contour landmarks need RingNet's flame_dynamic_embedding.npy")
    with pytest.raises(AssetError, match=msg):
        read_landmark_embedding(flame_files.static, None, 9976)


def test_68_point_static_file_gives_a_fixed_contour(tmp_path, flame_files):
    t = flame_files.truth
    p = tmp_path / "flame_static_embedding_68.pkl"
    with open(p, "wb") as fh:
        pickle.dump({"lmk_face_idx": t.full_faces, "lmk_b_coords": t.full_bary}, fh, protocol=2)
    emb = read_landmark_embedding(p, None, 9976)
    assert emb.dynamic_faces.shape == (79, 17)
    assert all(np.array_equal(emb.dynamic_faces[r], t.full_faces[:17]) for r in (0, 20, 78))
    assert np.array_equal(emb.static_faces, t.full_faces[17:])


def test_bad_embeddings_are_named(tmp_path, flame_files):
    t = flame_files.truth
    bad_idx = tmp_path / "bad_idx.pkl"
    with open(bad_idx, "wb") as fh:
        pickle.dump({"lmk_face_idx": t.static_faces + 9976, "lmk_b_coords": t.static_bary}, fh, protocol=2)
    with pytest.raises(AssetError, match=r"bad_idx.pkl: 'lmk_face_idx' indexes faces .* mesh has 9976 faces"):
        read_landmark_embedding(bad_idx, flame_files.dynamic, 9976)
    wrong_rows = tmp_path / "flame_dynamic_embedding.npy"
    save_npy_object(wrong_rows, {"lmk_face_idx": t.dynamic_faces[:40], "lmk_b_coords": t.dynamic_bary[:40]})
    with pytest.raises(AssetError, match=r"flame_dynamic_embedding.npy: 'lmk_face_idx'/'lmk_b_coords' have "
                                         r"shapes \(40, 17\)/\(40, 17, 3\), expected \(79, 17\)"):
        read_landmark_embedding(flame_files.static, wrong_rows, 9976)
    other = tmp_path / "other.npy"
    save_npy_object(other, {"foo": np.zeros(3)})
    with pytest.raises(AssetError, match=r"other.npy: keys \['foo'\] match neither format"):
        read_landmark_embedding(other, None, 9976)
    with pytest.raises(AssetError, match="missing.npy: file not found"):
        read_landmark_embedding(tmp_path / "missing.npy", None, 9976)
