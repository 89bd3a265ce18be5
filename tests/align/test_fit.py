"""``sfray align`` end to end on the procedural renderer's misalignment knob (CPU, small).

Convention under test: the knob S moves the *rendered* head in world space; the fitted map A maps
the annotation onto it, so A = S, i.e. A @ inv(S) = I (and A is not inv(S)).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sfray.align.model import describe
from sfray.cli import main
from sfray.errors import AssetError, ConfigError
from sfray.geometry.alignment_map import load_alignment_map
from sfray.geometry.transform import similarity_matrix

ROOT = Path(__file__).resolve().parents[2]
KNOB = [2.0, -3.0, 1.5, 0.02, -0.015, 0.01, 1.03]  # degrees, world units, scale
SMALL = ["generate.resolution=128", "generate.batch_size=4", "align.resolution=64"]


def _report(out_dir: Path) -> dict:
    return json.loads((out_dir / "align_report.json").read_text())


def test_cli_recovers_the_knob(tmp_path, capsys):
    out_dir = tmp_path / "align"
    knob = "[" + ",".join(str(v) for v in KNOB) + "]"
    rc = main(["align", str(ROOT / "configs/align/misalign.yaml"), f"output_dir={out_dir}", *SMALL,
               "align.num_samples=8", "align.num_holdout=4", "align.iterations=6",
               f"faults.misalign={knob}", "--quiet"])
    assert rc == 0
    assert "landmark px" in capsys.readouterr().out
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "align_report.json", "align_report.md", "alignment_map.safetensors", "config.yaml"]
    rep = _report(out_dir)
    assert rep["samples"] == 4 and rep["fit_landmarks"] == "none"  # geometry only
    assert rep["landmark_reference"] == "ground_truth"
    # several pixels at 128^2 before (about twice that at 256^2), well under half a pixel at 256^2 after
    assert rep["before"]["landmark_px"] > 3.0
    assert rep["after"]["landmark_px"] < 0.25
    assert rep["after"]["depth_abs"] < rep["before"]["depth_abs"] / 4
    assert rep["after"]["mask_iou"] > rep["before"]["mask_iou"]

    a = load_alignment_map(out_dir / "alignment_map.safetensors").matrix
    s = similarity_matrix(KNOB)
    assert torch.allclose(a, torch.tensor(rep["map"], dtype=torch.float64))
    fit = describe(a @ torch.linalg.inv(s))  # stated tolerance: 0.25 deg, 0.5 % scale, 0.01 any entry
    assert fit["rotation_deg"] < 0.25 and abs(fit["scale"] - 1) < 0.005
    assert fit["max_abs_minus_identity"] < 0.01
    assert describe(a @ s)["max_abs_minus_identity"] > 0.05  # the other convention is clearly wrong
    reported = rep["map_times_knob_inverse"]["max_abs_minus_identity"]
    assert reported == pytest.approx(fit["max_abs_minus_identity"])
    assert "| landmark error" in (out_dir / "align_report.md").read_text()
    _annotate_with_map_file(out_dir / "alignment_map.safetensors", knob)


def _annotate_with_map_file(path: Path, knob: str) -> None:
    """``annotate.alignment_map=PATH`` makes the annotator land on the misaligned renders."""
    import numpy as np

    from sfray.annotate.annotator import Annotator
    from sfray.config import GenerateJobConfig, load_config
    from sfray.conventions import Extra
    from sfray.generators.factory import build_generator
    from sfray.head import build_head
    from sfray.sampling import make_specs

    cfg = load_config(GenerateJobConfig, None, ["generate.resolution=128", f"faults.misalign={knob}",
                                                f"annotate.alignment_map={path}"])
    head = build_head(cfg.head)
    specs = make_specs(np.arange(500, 502), 9, cfg.sampling, cfg.camera, n_shape=head.n_shape,
                       n_expression=head.n_expression, latent_dim=0)
    out = build_generator(cfg, head, "cpu").generate(specs)
    truth = out.extras[Extra.LANDMARKS_2D_RENDERED]
    err = (Annotator(head, 128, cfg.annotate).annotate(out).landmarks_2d - truth).norm(dim=-1)
    # the fixed points move with the map alone; the jaw contour is re-traced on the annotation's own
    # render, so a map within the tolerance above can shift where the traced outline ends and with it
    # the spacing of the contour points (with the exact map both agree to 1e-5 px)
    assert err[:, 17:].mean() < 0.25, err
    assert err[:, :17].median() < 1.0, err


def test_identity_knob_stays_at_identity(tmp_path):
    from sfray.align.job import run_align
    from sfray.config import AlignJobConfig, load_config

    cfg = load_config(AlignJobConfig, ROOT / "configs/align/procedural.yaml",
                      [f"output_dir={tmp_path}", *SMALL, "align.num_samples=4", "align.num_holdout=2",
                       "align.iterations=4"])
    rep = run_align(cfg, stream=None).report
    m = describe(torch.tensor(rep["map"], dtype=torch.float64))
    assert m["max_abs_minus_identity"] < 0.01 and m["rotation_deg"] < 0.25
    assert rep["before"]["landmark_px"] < 1e-3  # the renderer draws the reported mesh
    assert rep["after"]["landmark_px"] < 0.25


def _no_outputs(out_dir: Path) -> bool:
    names = [p.name for p in out_dir.iterdir()] if out_dir.exists() else []
    return not any(n.startswith(("align_report", "alignment_map")) for n in names)


def test_bad_initial_map_fails_before_writing(tmp_path):
    bad = tmp_path / "map.safetensors"
    bad.write_bytes(b"not a safetensors file")
    out_dir = tmp_path / "out"
    with pytest.raises(AssetError, match=r"map\.safetensors"):
        from sfray.align.job import run_align
        from sfray.config import AlignJobConfig, load_config

        run_align(load_config(AlignJobConfig, None, [f"output_dir={out_dir}", f"align.init={bad}", *SMALL]),
                  stream=None)
    assert _no_outputs(out_dir)


def test_cli_errors_name_the_culprit(tmp_path, capsys):
    out_dir = tmp_path / "out"
    rc = main(["align", str(ROOT / "configs/align/procedural.yaml"), f"output_dir={out_dir}",
               "align.landmarks=detector", "quality.detector=no_such_pkg_q.fan.detect", *SMALL])
    assert rc == 2 and "quality.detector" in capsys.readouterr().err and _no_outputs(out_dir)
    rc = main(["align", str(ROOT / "configs/align/procedural.yaml"), f"output_dir={out_dir}",
               "align.landmarks=detector"])
    assert rc == 2 and "align.landmarks=detector needs quality.detector" in capsys.readouterr().err
    rc = main(["align", str(ROOT / "configs/align/procedural.yaml"), "align.loss.depth_scale=0"])
    assert rc == 2 and "align.loss.depth_scale" in capsys.readouterr().err


def test_detector_with_wrong_shape_mid_run_writes_nothing(tmp_path, monkeypatch):
    from sfray.align.job import run_align
    from sfray.config import AlignJobConfig, load_config

    (tmp_path / "shape_plugin_q.py").write_text(
        "import torch\n\ndef detect(images):\n    return torch.zeros(images.shape[0], 5, 2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out_dir = tmp_path / "out"
    cfg = load_config(AlignJobConfig, None, [f"output_dir={out_dir}", "align.landmarks=detector",
                                             "quality.detector=shape_plugin_q.detect", *SMALL,
                                             "align.num_samples=2", "generate.resolution=64"])
    with pytest.raises(ConfigError, match=r"quality\.detector.*shape \(2, 5, 2\)"):
        run_align(cfg, stream=None)
    assert _no_outputs(out_dir)
