"""``sfray inspect head`` run in-process through ``sfray.cli.main``."""

from __future__ import annotations

import json

import pytest

from sfray.cli import main


def test_json_summary_of_a_complete_flame_head(capsys, flame_files):
    f = flame_files
    rc = main(["inspect", "head", str(f.model), "n_shape=20", "head.dtype=float64",
               "--embedding", str(f.static), "--dynamic-embedding", str(f.dynamic), "--obj", str(f.obj),
               "--label-map", str(f.label_map), "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    s = json.loads(out)
    assert (s["kind"], s["vertices"], s["faces"], s["uv_vertices"]) == ("flame", 5023, 9976, 5118)
    assert s["parameters"]["shape"] == 20 and s["parameters"]["shape_available"] == 300
    assert s["parameters"]["expression"] == 50 and s["dtype"] == "float64"
    assert [j["name"] for j in s["joints"]] == ["global", "neck", "jaw", "left_eye", "right_eye"]
    assert s["landmarks"]["available"] and s["landmarks"]["contour"] == 17 and s["landmarks"]["static"] == 51
    names = {r["name"] for r in s["label_map"]["regions"]}
    assert {"face", "scalp", "background"} <= names
    assert s["missing"] == {}


def test_text_summary_lists_what_is_missing(capsys, flame_files):
    rc = main(["inspect", "head", str(flame_files.model)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "5023 vertices, 9976 faces" in out
    assert "shape 100/300, expression 50/100, pose 15" in out
    assert "landmarks:   none" in out
    assert "missing landmark_embedding: landmarks need an embedding" in out
    assert "missing label_map:" in out


def test_bad_input_exits_2_with_one_message(capsys, tmp_path, flame_files):
    rc = main(["inspect", "head", str(tmp_path / "generic_model.pkl")])
    err = capsys.readouterr().err
    assert rc == 2 and "generic_model.pkl: file not found" in err and err.count("\n") == 1
    rc = main(["inspect", "head", str(flame_files.model), "n_shapes=3"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown config key 'n_shapes'" in err


def test_procedural_head(capsys):
    proc = pytest.importorskip("sfray.head.procedural")
    if not hasattr(proc, "build_procedural_assets"):
        pytest.skip("the procedural head builder is not available yet")
    assert main(["inspect", "head"]) == 0
    assert "head model: procedural" in capsys.readouterr().out
    assert main(["inspect", "head", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["kind"] == "procedural" and s["landmarks"]["available"]
