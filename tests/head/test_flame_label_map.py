"""UV label maps (colour decoding, derivation from vertex regions) and the OBJ reader."""

from __future__ import annotations

import numpy as np
import pytest
from flame_fixture_builder import label_map_image, write_jpeg_as_png
from PIL import Image

from sfray.conventions import BACKGROUND_ID, SEG_CLASSES, SEG_ID, SEG_UNUSED_COLORS
from sfray.errors import AssetError
from sfray.head.label_map import (
    colors_to_labels,
    face_labels,
    label_map_from_regions,
    load_label_map,
    vertex_labels,
)
from sfray.head.obj import read_obj


def _interior(band: int = 8, rows: int = 21) -> np.ndarray:
    """Rows well inside each 8-pixel band (JPEG blocks straddle band borders only at their edges)."""
    keep = np.zeros(band * rows, dtype=bool)
    for k in range(rows):
        keep[k * band + 2: (k + 1) * band - 2] = True
    return keep


def test_jpeg_named_png_decodes_to_class_ids(tmp_path):
    img, want = label_map_image()
    p = tmp_path / "flame_seg_tex.png"
    write_jpeg_as_png(p, img, quality=80)
    with Image.open(p) as im:
        assert im.format == "JPEG"  # really a JPEG under a .png name
        noisy = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(noisy - img).max() > 0  # the decoder has to cope with real JPEG noise
    got = load_label_map(p)
    keep = _interior()
    assert got.shape == want.shape and got.dtype == np.uint8
    assert np.array_equal(got[keep], want[keep])
    # every class colour was recovered, unused colours (the last bands) are background
    assert set(np.unique(got[keep])) == set(range(19)) | {BACKGROUND_ID}
    assert np.all(got[keep][-8:] == BACKGROUND_ID)  # 2 bands x 4 interior rows


def test_colour_tolerance():
    face = np.array(SEG_CLASSES[SEG_ID["face"]].color)
    img = np.stack([face + d for d in ([0, 0, 0], [3, -2, 2], [-40, 30, -60])]).astype(np.uint8)[None]
    assert colors_to_labels(img).tolist() == [[SEG_ID["face"], SEG_ID["face"], BACKGROUND_ID]]
    unused = np.array([SEG_UNUSED_COLORS], dtype=np.uint8)
    assert colors_to_labels(unused).tolist() == [[BACKGROUND_ID] * len(SEG_UNUSED_COLORS)]
    assert colors_to_labels(np.zeros((1, 1, 3), np.uint8)).tolist() == [[BACKGROUND_ID]]


def test_id_images_and_npy_are_taken_as_ids(tmp_path):
    ids = np.arange(20, dtype=np.uint8).reshape(4, 5)
    Image.fromarray(ids, mode="L").save(tmp_path / "ids.png")
    assert np.array_equal(load_label_map(tmp_path / "ids.png"), ids)
    np.save(tmp_path / "ids.npy", ids.astype(np.int64))
    assert np.array_equal(load_label_map(tmp_path / "ids.npy"), ids)
    np.save(tmp_path / "bad.npy", ids.astype(np.int64) + 5)
    with pytest.raises(AssetError, match="bad.npy: expected an \\(H, W\\) integer array of SEG_CLASSES ids"):
        load_label_map(tmp_path / "bad.npy")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(AssetError, match="junk.png: not a readable image"):
        load_label_map(tmp_path / "junk.png")


def test_vertex_labels_precedence_and_lip_split():
    verts = np.array([[0, 0, 0], [-1, 0, 0], [1, 0, 0], [0, 0.5, 0], [0, -0.5, 0], [0, 2, 0]], dtype=float)
    regions = {"face": np.arange(6), "nose": np.array([0]), "lips": np.array([1, 2, 3, 4]),
               "something_else": np.array([5])}
    lab = vertex_labels(regions, verts)
    assert lab[0] == SEG_ID["nose"]  # nose beats face
    assert lab[3] == SEG_ID["upper_lip"] and lab[4] == SEG_ID["lower_lip"]  # split at the corners' height
    assert lab[5] == SEG_ID["face"]
    assert vertex_labels({}, verts).tolist() == [BACKGROUND_ID] * 6
    faces = np.array([[0, 5, 5], [0, 0, 4], [0, 5, 3]])
    # majority; three distinct -> the most specific (nose beats face; lips beat nose)
    assert face_labels(faces, lab).tolist() == [SEG_ID["face"], SEG_ID["nose"], SEG_ID["upper_lip"]]


def test_label_map_from_regions_fills_uv_triangles():
    # two triangles splitting the UV square along its diagonal:
    # face 0 lower-left (u + t < 1), face 1 upper-right
    verts = np.zeros((4, 3))
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    uv = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
    n = 16
    u = (np.arange(n) + 0.5) / n
    t = 1 - (np.arange(n) + 0.5) / n  # row 0 is the top of the UV image (t = 1)
    uu, tt = np.meshgrid(u, t)
    lower_left, upper_right = uu + tt < 1 - 1e-9, uu + tt > 1 + 1e-9

    # majority of the corners: face 0 (nose, nose, scalp) -> nose, face 1 (nose, scalp, scalp) -> scalp
    regions = {"nose": np.array([0, 1]), "scalp": np.array([2, 3])}
    lm = label_map_from_regions(regions, verts, faces, uv, faces, n)
    assert lm.shape == (n, n) and lm.dtype == np.uint8
    assert np.all(lm[lower_left] == SEG_ID["nose"]) and np.all(lm[upper_right] == SEG_ID["scalp"])

    # three different corner labels: the most specific wins (nose > forehead > face > scalp)
    regions = {"nose": np.array([0]), "forehead": np.array([1]), "face": np.array([2]),
               "scalp": np.array([3])}
    lm = label_map_from_regions(regions, verts, faces, uv, faces, n)
    assert np.all(lm[lower_left] == SEG_ID["nose"]) and np.all(lm[upper_right] == SEG_ID["forehead"])


def test_label_map_from_regions_uses_the_image_orientation():
    # one small triangle near u=0.1, t=0.9 must land near the top-left of the image
    verts = np.zeros((3, 3))
    faces = np.array([[0, 1, 2]])
    uv = np.array([[0.0, 0.8], [0.2, 0.8], [0.0, 1.0]])
    lm = label_map_from_regions({"nose": np.arange(3)}, verts, faces, uv, faces, size=10)
    rows, cols = np.nonzero(lm == SEG_ID["nose"])
    assert rows.max() <= 1 and cols.max() <= 1 and lm[0, 0] == SEG_ID["nose"]
    assert (lm == SEG_ID["nose"]).sum() == 3  # pixel centres strictly inside or on the triangle


# ---------------------------------------------------------------------------------------------
# OBJ
# ---------------------------------------------------------------------------------------------


def test_obj_reader_formats(tmp_path):
    p = tmp_path / "m.obj"
    p.write_text("# comment\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvn 0 0 1\n"
                 "g group\nusemtl x\nf 1/1/1 2/2/1 3/3/1 4/4/1\nf -4/-4 -2/-2 -1/-1\n")
    m = read_obj(p)
    assert m.vertices.shape == (4, 3) and m.uv_coords.shape == (4, 2)
    assert m.faces.tolist() == [[0, 1, 2], [0, 2, 3], [0, 2, 3]]
    assert m.uv_faces.tolist() == [[0, 1, 2], [0, 2, 3], [0, 2, 3]]
    q = tmp_path / "nouv.obj"
    q.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1//1 2//1 3//1\n")
    assert read_obj(q).uv_faces is None


def test_fixture_template_obj(flame_files):
    m = read_obj(flame_files.obj)
    t = flame_files.truth
    assert (m.vertices.shape[0], m.uv_coords.shape[0], m.faces.shape[0]) == (5023, 5118, 9976)
    assert np.array_equal(m.faces, t.faces) and np.array_equal(m.uv_faces, t.uv_faces)
    np.testing.assert_allclose(m.uv_coords, t.uv_coords, atol=1e-9)


@pytest.mark.parametrize("text,match", [
    ("v 0 0\n", r"bad.obj:1: malformed 'v' record"),
    ("v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 4\n", r"bad.obj:4: vertex index 4 is out of range"),
    ("v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2\n", r"bad.obj:4: a face needs at least 3 corners"),
    ("v 0 0 0\nvt 0 0\nv 1 0 0\nv 1 1 0\nf 1/1 2 3\n",
     r"bad.obj:5: some corners of this face have UV indices"),
    ("# nothing\n", r"bad.obj: no vertices or no faces found"),
])
def test_obj_errors_name_file_and_line(tmp_path, text, match):
    p = tmp_path / "bad.obj"
    p.write_text(text)
    with pytest.raises(AssetError, match=match):
        read_obj(p)
