"""Readers on tiny trees in the documented layouts: parsed values and every reported problem."""

from __future__ import annotations

import numpy as np
import pytest
from trees import lapa_marks, make_300w, make_celebamask, make_lapa, truncate, write_image, write_png

from sfray.benchmarks import (
    TASK_DEPTH,
    TASK_LANDMARKS,
    TASK_PARSING,
    CelebAMaskReader,
    FaceSyntheticsReader,
    LaPaDReader,
    LaPaReader,
    W300Reader,
    open_benchmark,
)
from sfray.benchmarks.w300 import parse_pts
from sfray.errors import AssetError, ConfigError


def _problems(report) -> set[tuple[str, str]]:
    return {(p.kind, p.path) for p in report.problems}


def test_300w_splits_values_and_problems(tmp_path):
    facts = make_300w(tmp_path)
    reader = W300Reader(tmp_path)
    report = reader.scan()
    assert _problems(report) == facts["problems"]
    for split, (images, usable) in facts["counts"].items():
        assert report.splits[split].images == images, split
        assert report.splits[split].usable[TASK_LANDMARKS] == usable, split
    # 1-based .pts -> sfray corner convention: minus 0.5; CRLF, trailing blanks, the space, .JPG, .png
    for key in ("afw/a1.jpg", "helen/trainset/h1.png", "helen/testset/t2.JPG", "ibug/image_092 _01.jpg"):
        entry = next(e for e in reader.entries() if e.key == key)
        sample = reader.load(entry)
        np.testing.assert_allclose(sample.landmarks, facts["points"][key] - 0.5, atol=1e-3)
        assert sample.image.shape == (32, 40, 3) and sample.size == (40, 32)
    gray = reader.load(next(e for e in reader.entries() if e.key == "helen/testset/t1.jpg"))
    assert gray.image.shape == (32, 40, 3)  # a grayscale JPEG comes back as RGB
    assert {e.key for e in reader.entries("challenge", TASK_LANDMARKS)} == {"ibug/image_092 _01.jpg"}


def test_pts_parser_rejects_malformed_text():
    good = "version: 1\nn_points: 2\n{\n1 2\n3 4\n}\n"
    np.testing.assert_array_equal(parse_pts(good, expected=2), [[1, 2], [3, 4]])
    for text, kind in [("version: 1\nn_points: 2\n1 2\n3 4\n", "malformed"),
                       ("n_points: 2\n{\n1 2\n3 x\n}\n", "malformed"),
                       ("n_points: 3\n{\n1 2\n3 4\n}\n", "wrong_point_count"),
                       ("{\n1 2 5\n3 4\n}\n", "malformed")]:
        with pytest.raises(Exception) as info:
            parse_pts(text, expected=2)
        assert getattr(info.value, "kind", None) == kind, text


def test_300w_quick_check_misses_only_the_truncation(tmp_path):
    make_300w(tmp_path)
    quick = W300Reader(tmp_path, check="quick").scan()
    assert ("truncated_image", "ibug/trunc.jpg") not in _problems(quick)
    assert ("wrong_point_count", "lfpw/testset/l1.pts") in _problems(quick)


def test_300w_wrong_root_is_one_clear_error(tmp_path):
    with pytest.raises(AssetError, match="afw/ helen/ ibug/ lfpw/"):
        W300Reader(tmp_path).scan()


def test_lapa_values_and_problems(tmp_path):
    facts = make_lapa(tmp_path)
    reader = LaPaReader(tmp_path)
    report = reader.scan()
    assert _problems(report) == facts["problems"]
    assert report.splits["test"].images == 6
    assert {e.key for e in reader.entries("test", TASK_PARSING)} == facts["parsing_ok"]
    assert {e.key for e in reader.entries("test", TASK_LANDMARKS)} == facts["landmarks_ok"]
    assert report.splits["train"].images == 0  # a partial download: only test present
    for key in ("test/images/x.jpg", "test/images/w.JPG"):
        sample = reader.load(next(e for e in reader.entries() if e.key == key))
        np.testing.assert_array_equal(sample.labels, facts["labels"][key])
        np.testing.assert_allclose(sample.landmarks, facts["points"][key] + 0.5, atol=1e-4)
        assert sample.image.shape == (32, 40, 3)


def test_lapa_landmarks_with_and_without_the_count_line(tmp_path):
    from sfray.benchmarks.lapa import parse_lapa_landmarks

    pts, with_count = lapa_marks(0, count_line=True)
    _, without = lapa_marks(0, count_line=False)
    np.testing.assert_allclose(parse_lapa_landmarks(with_count), pts, atol=1e-4)
    np.testing.assert_allclose(parse_lapa_landmarks(without), pts, atol=1e-4)
    with pytest.raises(Exception) as info:
        parse_lapa_landmarks("105\n" + " ".join(["1"] * 212))
    assert info.value.kind == "wrong_point_count"


def test_lapa_label_as_palette_and_rgb_grey(tmp_path):
    from PIL import Image

    from sfray.benchmarks.files import read_label_map

    lab = np.arange(12, dtype=np.uint8).reshape(3, 4) % 11
    pal = Image.fromarray(lab, mode="L").convert("P")
    pal.putpalette([v for i in range(256) for v in (i, 255 - i, 7)])
    im = Image.fromarray(lab).convert("P")
    im.save(tmp_path / "p.png")
    Image.fromarray(np.repeat(lab[..., None], 3, axis=2)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_label_map(tmp_path / "p.png"), lab)
    np.testing.assert_array_equal(read_label_map(tmp_path / "rgb.png"), lab)


@pytest.mark.parametrize("partition", [False, True])
def test_celebamask_merge_order_split_and_problems(tmp_path, partition):
    facts = make_celebamask(tmp_path, partition=partition)
    reader = CelebAMaskReader(tmp_path)
    report = reader.scan()
    assert _problems(report) == facts["problems"]
    got = {e.key: e.splits[0] for e in reader.entries()}
    assert got == facts["splits"]
    sample = reader.load(next(e for e in reader.entries() if e.key == "CelebA-HQ-img/0.jpg"))
    np.testing.assert_array_equal(sample.labels, facts["expected0"])  # overlaps: later class wins
    assert sample.size == (32, 32) and sample.image.shape == (32, 32, 3)  # image resized to the masks
    assert sample.disk_size == (64, 64)
    assert report.splits["test"].usable[TASK_PARSING] == 1
    assert report.schema["classes"][13] == "hair" and len(report.schema["classes"]) == 19


def test_celebamask_without_mapping_or_masks_still_reads(tmp_path):
    for k in range(3):
        write_image(tmp_path / "CelebA-HQ-img" / f"{k}.jpg", 16, 16, seed=k)
    report = CelebAMaskReader(tmp_path).scan()
    kinds = {p.kind for p in report.problems}
    assert kinds == {"missing_file"} and len(report.problems) == 2  # mapping + mask folder, not 3 images
    assert report.splits["unsplit"].images == 3 and report.splits["unsplit"].usable[TASK_PARSING] == 0


def test_lapa_d_depth_lists_and_problems(tmp_path):
    make_lapa(tmp_path, split="test")
    names = ["x", "w", "missing_one", "z"]
    (tmp_path / "test_list.txt").write_text("\r\n".join(names) + "\r\n")
    depth = np.zeros((32, 40), dtype=np.uint8)
    depth[8:24, 10:30] = 200
    write_png(tmp_path / "depth" / "x.png", depth)
    write_png(tmp_path / "depth" / "w.png", depth)
    reader = LaPaDReader(tmp_path)
    report = reader.scan()
    assert _problems(report) == {("missing_file", "test/images/missing_one.jpg"),
                                 ("missing_depth", "test/images/z.jpg"),
                                 ("wrong_point_count", "test/landmarks/z.txt")}
    assert report.splits["test"].images == 3 and report.splits["test"].usable[TASK_DEPTH] == 2
    sample = reader.load(next(e for e in reader.entries() if e.key == "test/images/x.jpg"))
    np.testing.assert_allclose(sample.depth[10, 12], 200 / 255.0)
    assert sample.depth_mask.sum() == 16 * 20


def test_facesynthetics_reader_shares_the_importer_format(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        write_image(tmp_path / f"{i:06d}.png", 24, 24, seed=i)
        seg = rng.integers(0, 19, size=(24, 24)).astype(np.uint8)
        seg[0, 0] = 255  # IGNORE is valid
        if i == 1:
            seg[3, 3] = 40
        write_png(tmp_path / f"{i:06d}_seg.png", seg)
        rows = 69 if i == 2 else 70
        (tmp_path / f"{i:06d}_ldmks.txt").write_text("".join(f"{x} {y}\n" for x, y in rng.uniform(0, 24, (rows, 2))))
    write_png(tmp_path / "000009_seg.png", np.zeros((24, 24), dtype=np.uint8))
    report = FaceSyntheticsReader(tmp_path).scan()
    assert _problems(report) == {("label_out_of_range", "000001_seg.png"), ("wrong_point_count", "000002_ldmks.txt"),
                                 ("missing_image", "000009_seg.png")}
    assert report.splits["all"].usable == {TASK_PARSING: 2, TASK_LANDMARKS: 2}


def test_registry_names_every_reader_and_rejects_typos(tmp_path):
    make_lapa(tmp_path)
    assert isinstance(open_benchmark("lapa", tmp_path), LaPaReader)
    with pytest.raises(ConfigError, match="did you mean 'lapa'"):
        open_benchmark("lapaa", tmp_path)


def test_load_after_quick_scan_names_the_broken_file(tmp_path):
    write_image(tmp_path / "test/images/a.jpg", seed=1)
    write_png(tmp_path / "test/labels/a.png", np.zeros((32, 40), dtype=np.uint8))
    truncate(tmp_path / "test/images/a.jpg")
    reader = LaPaReader(tmp_path, check="quick")
    entry = reader.entries()[0]
    with pytest.raises(AssetError, match="a.jpg: truncated_image"):
        reader.load(entry)
