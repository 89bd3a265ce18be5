"""Landmark-detector plugin: any callable named by a dotted path in the config.

The quality gate and ``sfray align`` can compare the annotation with what a face-landmark detector
sees in the generated image (the authors used FAN, docs/synthforge.md). sfray ships no detector
and never downloads one: ``quality.detector`` names an importable object, e.g.
``my_pkg.fan_adapter:FanDetector`` or ``my_pkg.fan_adapter.detect``. A class is instantiated once
with no arguments (load weights in ``__init__``); a function is used as is.

Contract of the callable: ``uint8 (B, 3, H, W)`` images in -> ``(B, 68, 2)`` landmarks in pixels
(iBUG-300W order, ``sfray.conventions`` pixel convention), as a tensor/array, or a list of B
entries each ``(68, 2)`` or ``None`` when no face was found. :func:`run_detector` normalises the
answer to a float tensor with NaN rows for faceless samples, and rejects anything else with one
message naming the config key.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from sfray.conventions import NUM_LANDMARKS
from sfray.errors import ConfigError

Detector = Callable[[torch.Tensor], Any]


def _import_object(path: str, key: str) -> Any:
    if ":" in path:
        module_name, attr = path.split(":", 1)
    elif "." in path:
        module_name, attr = path.rsplit(".", 1)
    else:
        raise ConfigError(f"config key '{key}': '{path}' is not a dotted path like 'package.module.callable'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"config key '{key}': cannot import module '{module_name}' of '{path}' ({exc})"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(
                f"config key '{key}': module '{module_name}' has no attribute '{attr}' (from '{path}')"
            )
        obj = getattr(obj, part)
    return obj


def load_detector(path: str, key: str = "quality.detector") -> Detector:
    """Resolve ``path`` to a detector callable (instantiating a class once)."""
    obj = _import_object(path, key)
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:  # the adapter's own failure (e.g. weights not found) is the user's to fix
            raise ConfigError(
                f"config key '{key}': constructing '{path}' failed: {type(exc).__name__}: {exc}"
            ) from exc
    if not callable(obj):
        raise ConfigError(f"config key '{key}': '{path}' is a {type(obj).__name__}, not a callable")
    return obj


def _as_points(value: Any, i: int, key: str) -> torch.Tensor | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[0] >= 1:  # face_alignment style: several faces, take the first
        arr = arr[0]
    if arr.ndim != 2 or arr.shape[0] != NUM_LANDMARKS or arr.shape[1] < 2:
        raise ConfigError(
            f"config key '{key}': the detector returned shape {arr.shape} for sample {i}; "
            f"expected ({NUM_LANDMARKS}, 2) landmarks in pixels or None"
        )
    return torch.from_numpy(arr[:, :2].copy())


def run_detector(detector: Detector, images: torch.Tensor, key: str = "quality.detector") -> torch.Tensor:
    """Detect landmarks on ``images`` uint8 (B, 3, H, W) -> float64 (B, 68, 2); NaN rows = no face."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"run_detector expects uint8 (B, 3, H, W) images, got {images.dtype} {tuple(images.shape)}"
        )
    b = images.shape[0]
    with torch.no_grad():
        answer = detector(images)
    if answer is None:
        rows: Sequence[Any] = [None] * b
    elif isinstance(answer, (torch.Tensor, np.ndarray)):
        arr = answer
        if tuple(arr.shape[:1]) != (b,) or arr.ndim != 3 or arr.shape[1] != NUM_LANDMARKS or arr.shape[2] < 2:
            raise ConfigError(
                f"config key '{key}': the detector returned shape {tuple(arr.shape)} for {b} images; "
                f"expected ({b}, {NUM_LANDMARKS}, 2)"
            )
        rows = list(arr)
    elif isinstance(answer, (list, tuple)):
        if len(answer) != b:
            raise ConfigError(
                f"config key '{key}': the detector returned {len(answer)} results for {b} images"
            )
        rows = answer
    else:
        raise ConfigError(
            f"config key '{key}': the detector returned a {type(answer).__name__}; expected a (B, 68, 2) "
            "tensor/array or a list of (68, 2) arrays / None"
        )
    out = torch.full((b, NUM_LANDMARKS, 2), float("nan"), dtype=torch.float64)
    for i, value in enumerate(rows):
        pts = _as_points(value, i, key)
        if pts is not None:
            out[i] = pts
    return out
