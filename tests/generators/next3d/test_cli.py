"""`sfray convert checkpoint` and the `inspect checkpoint` action."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from sfray.cli import main
from sfray.cli.inspect_checkpoint import add_parser
from sfray.generators.next3d.inspect import inspect_checkpoint
from .official_writer import write_official_pickle

from .test_checkpoint import trace_source


@pytest.fixture(scope="module")
def pkl(tmp_path_factory, small_model):
    d = tmp_path_factory.mktemp("cli")
    return write_official_pickle(small_model, d / "n3d.pkl", trace_source(d / "TRACE"),
                                 dataset_label_std=torch.zeros(27)), d / "TRACE"


def run_inspect(argv: list[str]) -> int:
    """Through the real CLI when ``sfray inspect`` registers our action, else a bare parser."""
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="x"))
    try:
        import sfray.cli.inspect  # noqa: F401
    except ModuleNotFoundError:
        args = parser.parse_args(["checkpoint", *argv])
        return args.handler(args)
    return main(["inspect", "checkpoint", *argv])


def test_inspect_json_and_sources(pkl, small_model, tmp_path, capsys):
    path, trace = pkl
    assert run_inspect([str(path), "--json", "--dump-source", str(tmp_path / "src")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["top_level"]["G_ema"].startswith("TriPlaneGenerator") and rep["persistence_versions"] == [6]
    assert rep["rendering_kwargs"]["ray_start"] == 2.25 and rep["attributes"]["plane_axes_kind"].startswith("next3d")
    assert rep["parameters"]["total"] == sum(p.numel() for p in small_model.parameters())
    assert rep["state_check"]["ok"] and rep["state_check"]["ignored_extras"] == ["dataset_label_std"]
    assert rep["released_architecture"] is False
    index = json.loads((tmp_path / "src" / "index.json").read_text())
    files = {e["file"] for e in index}
    assert files and all((tmp_path / "src" / f).read_text().count("write_text") == 1 for f in files)
    assert any("TriPlaneGenerator" in e["classes"] for e in index)
    assert not trace.exists()


def test_inspect_text(pkl, capsys):
    path, _ = pkl
    assert run_inspect([str(path)]) == 0
    out = capsys.readouterr().out
    assert "TriPlaneGenerator" in out and "state check vs sfray Next3D: OK" in out and "ray_end: 3.3" in out


def test_convert_then_inspect_safetensors(pkl, tmp_path, capsys):
    path, trace = pkl
    out = tmp_path / "n3d.safetensors"
    assert main(["convert", "checkpoint", str(path), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and out.is_file()
    rep = inspect_checkpoint(out)
    assert rep["kind"] == "sfray-safetensors" and rep["state_check"]["ok"]
    assert rep["identity"] == inspect_checkpoint(path)["identity"]
    assert not trace.exists()


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x04not really")
    assert main(["convert", "checkpoint", str(bad), str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sfray: error:") and "bad.pkl" in err and "\n" not in err
    assert not (tmp_path / "o.safetensors").exists()
    assert main(["convert", "checkpoint", str(tmp_path / "missing.pkl"), str(tmp_path / "o.safetensors")]) == 2
