"""A model on disk: ``model.safetensors`` (weights and buffers) + ``model.json`` (size and spec).

Loading needs nothing but the directory: the spec in ``model.json`` rebuilds the architecture,
safetensors holds only tensors (no code runs on load). A directory whose size differs from the
one asked for, or whose tensors do not fit the spec, fails with one line naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sfray.errors import AssetError
from sfray.io.atomic import atomic_path, atomic_write_text
from sfray.models.multitask import MODEL_SIZES, ModelSpec, MultiTaskModel

#: Sub-folder of a training output_dir that holds its final model (Stage I and Stage II).
MODEL_DIR = "model"
WEIGHTS_FILE = "model.safetensors"
MODEL_JSON = "model.json"
MODEL_FORMAT = "sfray-multitask"
MODEL_FORMAT_VERSION = 1


def write_model_files(model: torch.nn.Module, directory: str | Path, weights_file: str, json_file: str,
                      meta: dict[str, Any]) -> Path:
    """Weights (safetensors) and ``meta`` (JSON) into ``directory``, each file atomically."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(d / weights_file) as tmp:
        save_file(state, str(tmp))
    atomic_write_text(d / json_file, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return d


def read_model_json(directory: str | Path, weights_file: str, json_file: str, fmt: str, what: str,
                    hint: str) -> dict[str, Any]:
    """The JSON of a model directory holding both files, checked to be of format ``fmt``."""
    d = Path(directory)
    path = d / json_file
    if not path.is_file() or not (d / weights_file).is_file():
        raise AssetError(f"{d}: not {what} (needs {json_file} and {weights_file}); {hint}")
    try:
        meta = json.loads(path.read_text())
    except ValueError as exc:
        raise AssetError(f"{path}: not valid JSON ({exc})") from exc
    if meta.get("format") != fmt:
        raise AssetError(f"{path}: format '{meta.get('format')}' is not {fmt}")
    return meta


def load_model_weights(model: torch.nn.Module, path: Path, what: str) -> None:
    """Load the safetensors file ``path`` into ``model``; tensors must match by name and shape."""
    from safetensors.torch import load_file

    state = load_file(str(path), device="cpu")
    own = model.state_dict()
    wrong = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    extra = [k for k in state if k not in own]
    if wrong or extra:
        raise AssetError(f"{path}: tensors do not fit {what} "
                         f"({len(wrong)} missing or reshaped, {len(extra)} unexpected, e.g. {(wrong + extra)[0]})")
    model.load_state_dict(state)


def save_model(model: MultiTaskModel, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the weights and the spec into ``directory`` (atomically, file by file)."""
    meta = {"format": MODEL_FORMAT, "version": MODEL_FORMAT_VERSION, "size": model.spec.name,
            "spec": model.spec.to_dict(), **(extra or {})}
    return write_model_files(model, directory, WEIGHTS_FILE, MODEL_JSON, meta)


def read_model_meta(directory: str | Path) -> dict[str, Any]:
    return read_model_json(directory, WEIGHTS_FILE, MODEL_JSON, MODEL_FORMAT, "an sfray model directory",
                           "pass a training output_dir, its model/ or one of its checkpoints/")


def spec_from_meta(meta: dict[str, Any], source: str) -> ModelSpec:
    try:
        return ModelSpec(**meta["spec"])
    except (KeyError, TypeError) as exc:
        raise AssetError(f"{source}: model spec unreadable ({exc}); was it written by another sfray version?") from exc


def check_size(meta: dict[str, Any], expected: str | None, source: str) -> None:
    """Refuse a model of another size than ``expected`` (``model.size`` of the config)."""
    if expected is None:
        return
    MODEL_SIZES.check(expected)
    if meta.get("size") != expected:
        raise AssetError(f"{source}: holds a model of size '{meta.get('size')}', but model.size={expected}; "
                         f"set model.size={meta.get('size')} or use a checkpoint of size '{expected}'")


def load_weights(model: MultiTaskModel, directory: str | Path) -> None:
    """Load ``directory``'s weights into ``model`` (same architecture required)."""
    load_model_weights(model, Path(directory) / WEIGHTS_FILE, f"model size '{model.spec.name}'")


def find_model_dir(path: str | Path, marker: str = MODEL_JSON) -> Path | None:
    """``path`` itself or its ``model/`` when it holds ``marker`` (a model's JSON), else None."""
    p = Path(path)
    for cand in (p, p / MODEL_DIR):
        if (cand / marker).is_file():
            return cand
    return None


def load_model(directory: str | Path, expected_size: str | None = None,
               device: torch.device | str = "cpu") -> MultiTaskModel:
    """Rebuild a model from a model directory (any checkpoint dir works too), in eval mode."""
    meta = read_model_meta(directory)
    check_size(meta, expected_size, str(directory))
    model = MultiTaskModel(spec_from_meta(meta, str(Path(directory) / MODEL_JSON)))
    load_weights(model, directory)
    return model.to(device).eval()
