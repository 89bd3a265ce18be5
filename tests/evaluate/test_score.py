"""``sfray score``: ground truth scores NME 0 / F1 1; a known offset gives the closed-form NME."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from trees import make_300w, make_lapa, write_png

REPO = Path(__file__).resolve().parents[2]


def _score(*args: str, subprocess_run: bool = False) -> subprocess.CompletedProcess:
    """Run ``sfray score`` in-process (fast) or as a real subprocess (once, to prove the entry point)."""
    if subprocess_run:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        return subprocess.run([sys.executable, "-m", "sfray.cli", "score", *args], capture_output=True, text=True,
                              env=env, cwd=REPO, timeout=300, check=False)
    from sfray.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["score", *args])
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def _w300_predictions(root: Path, out: Path, offset=(0.0, 0.0)) -> dict[str, np.ndarray]:
    """landmarks.json holding each .pts file's own values (+ offset), keyed as on disk."""
    from sfray.benchmarks.files import FileProblem
    from sfray.benchmarks.w300 import parse_pts

    pts = {}
    for p in sorted(root.rglob("*.pts")):
        img = next((q for q in p.parent.iterdir()
                    if q.stem.lower() == p.stem.lower() and q.suffix.lower() in (".jpg", ".png")), None)
        if img is None:
            continue
        try:
            pts[img.relative_to(root).as_posix()] = parse_pts(p.read_text()) + np.asarray(offset)
        except FileProblem:
            pass  # a malformed file has no usable ground truth to predict
    out.mkdir(parents=True, exist_ok=True)
    (out / "landmarks.json").write_text(json.dumps({k: v.tolist() for k, v in pts.items()}))
    return pts


def test_score_300w_ground_truth_is_zero_and_offset_is_closed_form(tmp_path):
    facts = make_300w(tmp_path / "300w")
    _w300_predictions(tmp_path / "300w", tmp_path / "gt")
    proc = _score("300w", str(tmp_path / "300w"), str(tmp_path / "gt"), "--json", subprocess_run=True)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert set(res["splits"]) == {"common", "challenge", "full"}
    for split, n in (("common", 3), ("challenge", 1), ("full", 4)):
        assert res["splits"][split]["landmarks"]["nme"] == pytest.approx(0.0, abs=1e-12)
        assert res["splits"][split]["landmarks"]["images"] == n
    assert res["splits"]["challenge"]["skipped"]["landmarks"] == ["ibug/trunc.jpg"]

    d = np.array([3.0, -4.0])  # every point off by 5 px
    _w300_predictions(tmp_path / "300w", tmp_path / "off", offset=d)
    res = json.loads(_score("300w", str(tmp_path / "300w"), str(tmp_path / "off"), "--json").stdout)
    usable = {"common": ["helen/testset/t1.jpg", "helen/testset/t2.JPG", "helen/testset/U3.jpg"],
              "challenge": ["ibug/image_092 _01.jpg"]}
    usable["full"] = usable["common"] + usable["challenge"]
    for split, keys in usable.items():
        pts = [facts["points"][k] for k in keys]
        expected = np.mean([5.0 / np.linalg.norm(p[36] - p[45]) for p in pts])
        assert res["splits"][split]["landmarks"]["nme"] == pytest.approx(expected, rel=1e-6), split


def test_score_names_missing_predictions(tmp_path):
    make_300w(tmp_path / "300w")
    pts = _w300_predictions(tmp_path / "300w", tmp_path / "p")
    del pts["ibug/image_092 _01.jpg"]
    (tmp_path / "p" / "landmarks.json").write_text(json.dumps({k: v.tolist() for k, v in pts.items()}))
    proc = _score("300w", str(tmp_path / "300w"), str(tmp_path / "p"), "--split", "challenge")
    assert proc.returncode == 2
    assert "1 prediction(s) missing" in proc.stderr and "image_092 _01.jpg" in proc.stderr


def test_score_lapa_ground_truth_f1_is_one_and_random_matches_numpy(tmp_path):
    facts = make_lapa(tmp_path / "lapa")
    root = tmp_path / "lapa"
    for key in facts["parsing_ok"]:
        write_png(tmp_path / "gt" / "parsing" / Path(key).with_suffix(".png"), facts["labels"][key])
    proc = _score("lapa", str(root), str(tmp_path / "gt"), "--json")
    assert proc.returncode == 0, proc.stderr
    pa = json.loads(proc.stdout)["splits"]["test"]["parsing"]
    assert pa["mean_f1"] == pytest.approx(1.0) and pa["images"] == 3
    assert all(v == pytest.approx(1.0) for v in pa["f1"].values())
    assert pa["mean_over"] == list(facts_names())[1:]  # every class but background, hair included
    skipped = json.loads(proc.stdout)["splits"]["test"]["skipped"]["parsing"]
    assert set(skipped) == {"test/images/y.jpg", "test/images/v.jpg", "test/images/u.jpg"}

    rng = np.random.default_rng(5)
    preds, gts = [], []
    for key in sorted(facts["parsing_ok"]):
        gt = facts["labels"][key]
        pred = np.where(rng.random(gt.shape) < 0.6, gt, rng.integers(0, 11, gt.shape)).astype(np.uint8)
        write_png(tmp_path / "rnd" / "parsing" / Path(key).with_suffix(".png"), pred)
        preds.append(pred.ravel())
        gts.append(gt.ravel())
    p, g = np.concatenate(preds), np.concatenate(gts)
    expected = {c: 2 * np.sum((p == c) & (g == c)) / (np.sum(p == c) + np.sum(g == c)) for c in range(11)}
    pa = json.loads(_score("lapa", str(root), str(tmp_path / "rnd"), "--json").stdout)["splits"]["test"]["parsing"]
    for c, name in enumerate(facts_names()):
        assert pa["f1"][name] == pytest.approx(expected[c]), name
    assert pa["mean_f1"] == pytest.approx(np.mean([expected[c] for c in range(1, 11)]))


def facts_names():
    from sfray.benchmarks.schemas import LAPA_SCHEMA

    return LAPA_SCHEMA.classes


def test_score_lapa_landmarks_offset_uses_66_79(tmp_path):
    facts = make_lapa(tmp_path / "lapa")
    d = np.array([1.0, 2.0])
    data = {k: (facts["points"][k] + d).tolist() for k in facts["landmarks_ok"]}
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "landmarks.json").write_text(json.dumps(data))
    res = json.loads(_score("lapa", str(tmp_path / "lapa"), str(tmp_path / "p"), "--json").stdout)
    lm = res["splits"]["test"]["landmarks"]
    expected = np.mean([np.linalg.norm(d) / np.linalg.norm(facts["points"][k][66] - facts["points"][k][79])
                        for k in facts["landmarks_ok"]])
    assert lm["nme"] == pytest.approx(expected) and lm["images"] == 5


def test_score_rejects_bad_prediction_files(tmp_path):
    facts = make_lapa(tmp_path / "lapa")
    key = min(facts["parsing_ok"])
    for other in facts["parsing_ok"]:
        write_png(tmp_path / "p" / "parsing" / Path(other).with_suffix(".png"), facts["labels"][other])
    bad = facts["labels"][key].copy()
    bad[0, 0] = 12
    write_png(tmp_path / "p" / "parsing" / Path(key).with_suffix(".png"), bad)
    proc = _score("lapa", str(tmp_path / "lapa"), str(tmp_path / "p"))
    assert proc.returncode == 2 and "class id 12 outside 0..10" in proc.stderr
    shutil.rmtree(tmp_path / "p")
    (tmp_path / "p").mkdir()
    proc = _score("lapa", str(tmp_path / "lapa"), str(tmp_path / "p"))
    assert proc.returncode == 2 and "no predictions found" in proc.stderr
