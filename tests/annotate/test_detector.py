"""The landmark-detector plugin: dotted paths, result normalisation and one clear error per misuse."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from sfray.annotate.detector import load_detector, run_detector
from sfray.errors import ConfigError

PLUGIN = textwrap.dedent(
    """
    import numpy as np
    import torch

    CALLS = []

    def grid(images):
        # a face everywhere except in images whose first pixel is 0: (B, 68, 2) or None per sample
        out = []
        for img in images:
            if int(img[0, 0, 0]) == 0:
                out.append(None)
            else:
                out.append(np.stack([np.arange(68.0), np.full(68, float(img.shape[-1]) / 2)], axis=1))
        return out

    def as_tensor(images):
        return torch.ones(images.shape[0], 68, 2) * 3.0

    def wrong_shape(images):
        return torch.zeros(images.shape[0], 5, 2)

    def wrong_count(images):
        return [None]

    class Stateful:
        def __init__(self):
            CALLS.append("init")

        def __call__(self, images):
            return torch.zeros(images.shape[0], 68, 2)

    class Broken:
        def __init__(self):
            raise FileNotFoundError("weights 3DFAN4.pth not in ~/.cache/torch/hub/checkpoints")

    NOT_CALLABLE = 3
    """
)


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    (tmp_path / "my_detector_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    import sys

    sys.modules.pop("my_detector_plugin", None)
    return importlib.import_module("my_detector_plugin")


def _images(b: int = 3, first: tuple[int, ...] = (1, 0, 1)) -> torch.Tensor:
    img = torch.full((b, 3, 16, 16), 7, dtype=torch.uint8)
    for i, v in enumerate(first[:b]):
        img[i, 0, 0, 0] = v
    return img


def test_list_with_none_becomes_nan_rows(plugin):
    det = load_detector("my_detector_plugin.grid")
    out = run_detector(det, _images())
    assert out.shape == (3, 68, 2) and out.dtype == torch.float64
    assert torch.isnan(out[1]).all() and torch.isfinite(out[[0, 2]]).all()
    assert torch.equal(out[0, :, 0], torch.arange(68, dtype=torch.float64))
    assert torch.all(out[0, :, 1] == 8.0)


def test_colon_path_tensor_result_and_class_instantiated_once(plugin):
    out = run_detector(load_detector("my_detector_plugin:as_tensor"), _images(2))
    assert torch.all(out == 3.0)
    det = load_detector("my_detector_plugin.Stateful")
    run_detector(det, _images(2))
    run_detector(det, _images(2))
    assert plugin.CALLS == ["init"]


@pytest.mark.parametrize("path,pattern", [
    ("no_such_module_xyz.detect", r"quality\.detector.*cannot import module 'no_such_module_xyz'"),
    ("my_detector_plugin.missing", r"quality\.detector.*has no attribute 'missing'"),
    ("detect", r"quality\.detector.*not a dotted path"),
    ("my_detector_plugin.NOT_CALLABLE", r"quality\.detector.*is a int, not a callable"),
    ("my_detector_plugin.Broken", r"quality\.detector.*constructing.*FileNotFoundError.*3DFAN4"),
])
def test_bad_paths_name_the_key(plugin, path, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_detector(path)


@pytest.mark.parametrize("name,pattern", [
    ("wrong_shape", r"quality\.detector.*returned shape \(3, 5, 2\).*expected \(3, 68, 2\)"),
    ("wrong_count", r"quality\.detector.*returned 1 results for 3 images"),
])
def test_wrong_results_name_the_key(plugin, name, pattern):
    with pytest.raises(ConfigError, match=pattern):
        run_detector(load_detector(f"my_detector_plugin.{name}"), _images())


def test_numpy_multi_face_result_takes_first_face():
    faces = np.zeros((2, 68, 3))  # face_alignment style: all faces of one image, 2.5D points
    faces[0, :, :2] = 5.0
    out = run_detector(lambda imgs: [faces], _images(1))
    assert torch.all(out == 5.0)
