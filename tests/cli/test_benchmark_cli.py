"""``sfray benchmark inspect`` and ``make-lapa-like`` through the CLI entry point."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from trees import make_300w, make_lapa

from sfray.cli import main

REPO = Path(__file__).resolve().parents[2]


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def test_inspect_json_lists_counts_schema_and_problems(tmp_path):
    facts = make_lapa(tmp_path)
    rc, out, _ = _run("benchmark", "inspect", "lapa", str(tmp_path), "--json")
    assert rc == 0
    rep = json.loads(out)
    assert rep["splits"]["test"] == {"images": 6, "usable": {"parsing": 3, "landmarks": 5}}
    assert rep["label_schema"]["classes"][10] == "hair"
    assert {(p["kind"], p["path"]) for p in rep["problems"]} == facts["problems"]
    assert rep["problem_counts"]["missing_labels"] == 1


def test_inspect_text_names_every_problem_file(tmp_path):
    facts = make_300w(tmp_path)
    rc, out, _ = _run("benchmark", "inspect", "300w", str(tmp_path))
    assert rc == 0
    for _, path in facts["problems"]:
        assert path in out
    assert "challenge" in out and "4 problem(s)" in out


def test_inspect_bad_input_is_one_line_and_exit_2(tmp_path):
    rc, _, err = _run("benchmark", "inspect", "lapa", str(tmp_path / "nope"))
    assert rc == 2 and "not a directory" in err and err.count("\n") == 1
    rc, _, err = _run("benchmark", "inspect", "celeba", str(tmp_path))
    assert rc == 2 and "did you mean 'celebamask-hq'" in err


def test_make_lapa_like_cli(tmp_path):
    from sfray.config.loader import load_config, to_yaml
    from sfray.config.schema import GenerateJobConfig

    cfg = load_config(GenerateJobConfig, REPO / "configs/generate/quickstart.yaml",
                      ["generate.resolution=64", "generate.num_samples=4"])
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "dataset.yaml").write_text(yaml.safe_dump({"config": yaml.safe_load(to_yaml(cfg))}))
    rc, out, err = _run("benchmark", "make-lapa-like", str(tmp_path / "ds"), str(tmp_path / "lapa"),
                        "--train", "1", "--val", "0", "--test", "1")
    assert rc == 0, err
    assert "wrote 2 LaPa-format samples" in out
    rc, out, _ = _run("benchmark", "inspect", "lapa", str(tmp_path / "lapa"), "--json")
    assert json.loads(out)["problems"] == []
