"""``sfray preview``: renders in-process and writes a contact sheet of the expected size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sfray.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "configs" / "generate" / "quickstart.yaml"


def test_preview_writes_png_of_expected_size(tmp_path, capsys):
    out_dir = tmp_path / "prev"
    rc = main(["preview", "--panel", "48", "--per-row", "2", str(QUICKSTART), f"output_dir={out_dir}",
               "generate.preview_samples=3", "generate.resolution=64", "generate.batch_size=2"])
    assert rc == 0
    path = out_dir / "preview.png"
    assert capsys.readouterr().out.strip().endswith(str(path))
    img = Image.open(path)
    # 3 samples, 2 per sheet row, 4 panels each (image | landmarks | segmentation | depth), pad 2
    assert img.size == (8 * (48 + 2) + 2, 2 * (48 + 2) + 2)
    arr = np.asarray(img.convert("RGB"))
    # the last row holds one sample: its right half is empty padding colour
    assert arr[60:90, 4 * 50 + 10:].std() < 1.0 and arr[4:50, 4:50].std() > 5.0
    assert (out_dir / "preview_config.yaml").is_file()
    assert "resolution: 64" in (out_dir / "preview_config.yaml").read_text()


def test_preview_bad_override_is_one_clear_error(tmp_path, capsys):
    rc = main(["preview", str(QUICKSTART), f"output_dir={tmp_path}", "generate.preview_sample=3"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "generate.preview_sample" in err and "preview_samples" in err
    assert not (tmp_path / "preview.png").exists()
