"""The LaPa-like export: exact LaPa layout that reads back cleanly, hair as the extra class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from sfray.benchmarks import TASK_LANDMARKS, TASK_PARSING, LaPaReader
from sfray.benchmarks.lapa106 import lapa106_from_68, subdivide
from sfray.benchmarks.lapa_like import PROVENANCE_FILE, lapa_labels, make_lapa_like
from sfray.benchmarks.schemas import LAPA106_GROUPS, LAPA_SCHEMA, SYNTH_TO_LAPA
from sfray.conventions import SEG_ID
from sfray.errors import SfrayError

HAIR, SKIN = LAPA_SCHEMA.classes.index("hair"), LAPA_SCHEMA.classes.index("skin")


def _dataset(root: Path, *overrides: str) -> Path:
    from sfray.config.loader import load_config, to_yaml
    from sfray.config.schema import GenerateJobConfig

    cfg = load_config(GenerateJobConfig, Path(__file__).resolve().parents[2] / "configs/generate/quickstart.yaml",
                      ["generate.resolution=64", "generate.num_samples=10", *overrides])
    root.mkdir(parents=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"config": yaml.safe_load(to_yaml(cfg))}))
    return root


def test_export_reads_back_with_zero_problems_and_hair(tmp_path):
    ds = _dataset(tmp_path / "ds", "generator.procedural.hair_cap_prob=1.0")
    written = make_lapa_like(ds, tmp_path / "lapa", {"train": 2, "val": 1, "test": 2})
    assert written == {"train": 2, "val": 1, "test": 2}
    report = LaPaReader(tmp_path / "lapa").scan()
    assert report.ok, report.format_text()
    for split, n in written.items():
        assert report.splits[split].images == n
        assert report.splits[split].usable == {TASK_PARSING: n, TASK_LANDMARKS: n}
    prov = json.loads((tmp_path / "lapa" / PROVENANCE_FILE).read_text())
    ids = sorted(v["sample_id"] for v in prov["samples"].values())
    assert ids == list(range(10, 15))  # held out: after the dataset's 10 ids
    reader = LaPaReader(tmp_path / "lapa")
    for entry in reader.entries():
        s = reader.load(entry)
        assert entry.image.suffix == ".jpg" and s.labels.max() <= 10
        assert (s.labels == HAIR).any()  # every head wears a cap here
        assert s.landmarks.shape == (106, 2)
    assert not list(tmp_path.glob("lapa.tmp-*"))


def test_bald_heads_have_no_hair_and_out_dir_must_be_new(tmp_path):
    ds = _dataset(tmp_path / "ds", "generator.procedural.hair_cap_prob=0.0")
    make_lapa_like(ds, tmp_path / "lapa", {"test": 2})
    reader = LaPaReader(tmp_path / "lapa")
    for entry in reader.entries():
        labels = reader.load(entry).labels
        assert not (labels == HAIR).any() and (labels == SKIN).any()
    with pytest.raises(SfrayError, match="already exists"):
        make_lapa_like(ds, tmp_path / "lapa", {"test": 1})


def test_label_rule_closed_form():
    seg = np.array([[SEG_ID["scalp"], SEG_ID["forehead"], SEG_ID["neck"], SEG_ID["background"]],
                    [SEG_ID["left_ear"], SEG_ID["left_eyeball"], SEG_ID["inner_mouth"], SEG_ID["background"]]],
                   dtype=np.uint8)
    cov = np.zeros(seg.shape)
    cov[0, 1] = 0.7  # the cap's shell covers a forehead pixel
    cov[1, 3] = 0.6  # and a background pixel (its rim sticks out of the head)
    capped = lapa_labels(seg, cov, hair_cap=True)
    names = [[LAPA_SCHEMA.classes[i] for i in row] for row in capped]
    assert names == [["hair", "hair", "background", "background"], ["skin", "left_eye", "inner_mouth", "hair"]]
    bald = lapa_labels(seg, np.zeros(seg.shape), hair_cap=False)
    assert LAPA_SCHEMA.classes[bald[0, 0]] == "skin"
    direct = SYNTH_TO_LAPA[seg]  # the direct mapping calls every scalp hair
    assert LAPA_SCHEMA.classes[direct[0, 0]] == "hair" and direct[1, 3] == 0


def test_106_points_keep_the_68_where_they_coincide():
    rng = np.random.default_rng(0)
    lm = rng.uniform(10, 90, size=(68, 2))
    pts = lapa106_from_68(lm)
    g = LAPA106_GROUPS
    np.testing.assert_allclose(pts[list(g["contour"])][::2], lm[:17])
    np.testing.assert_allclose(pts[66], lm[36])
    np.testing.assert_allclose(pts[79], lm[45])  # LaPa's outer eye corners
    np.testing.assert_allclose(pts[70], lm[39])
    np.testing.assert_allclose(pts[75], lm[42])
    np.testing.assert_allclose(pts[list(g["mouth_outer"]) + list(g["mouth_inner"])], lm[48:68])
    np.testing.assert_allclose(pts[list(g["nose_bridge"])], lm[27:31])
    np.testing.assert_allclose(pts[[55, 65]], lm[[31, 35]])
    np.testing.assert_allclose(pts[33:38], lm[17:22])
    line = np.stack([np.linspace(0, 16, 17), np.zeros(17)], axis=1)
    np.testing.assert_allclose(subdivide(line)[1::2], line[:-1] + [0.5, 0.0])  # midpoints of a straight line


def test_brow_lower_edge_follows_the_segmentation():
    lm = np.zeros((68, 2))
    lm[:, 0], lm[:, 1] = np.linspace(5, 95, 68), 80.0
    lm[17:22] = np.stack([np.linspace(20, 40, 5), np.full(5, 30.0)], axis=1)  # image-left brow, upper edge y=30
    lm[36:42] = [[20, 50], [25, 48], [30, 48], [35, 50], [30, 52], [25, 52]]
    seg = np.full((100, 100), SEG_ID["face"], dtype=np.uint8)
    seg[30:36, 15:45] = SEG_ID["right_eyebrow"]  # the brow is 6 px thick: rows 30..35
    pts = lapa106_from_68(lm, seg)
    np.testing.assert_allclose(pts[38:42, 1], 36.0, atol=0.5)  # lower edge at y = 36 (pixel corner)
