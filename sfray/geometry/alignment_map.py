"""The global alignment map: head-model space (after the generator's mesh transform) -> world.

A generator's neural density never sits exactly where its driving mesh says it does; SynthForge's
release corrects this with one learned affine map (``fixMapMLP01.pth``: ``Linear(3, 4)`` then
``Linear(4, 3)`` with no activation, docs/synthforge.md). sfray keeps that map as a plain 4x4
matrix ``A`` applied to every world-space point the annotator produces::

    annotated_world = A @ mesh_to_world @ p_head

Convention (used by ``sfray align`` and its tests): a misalignment ``S`` that moves the *rendered*
head in world space is undone by the map ``A = S`` (the map moves the annotation onto the image),
so a perfect fit gives ``A @ inv(S) = I``.

Two file formats load here, both without running any code from the file:

* sfray's own ``.safetensors`` (tensor ``matrix`` (4, 4), metadata ``format=sfray-alignment-map``);
* the authors' torch file: either a state dict of the two linear layers or the whole pickled
  ``MLP`` module as their trainer saved it. It is read with ``torch.load(weights_only=True)``;
  the module classes it names are mapped to inert stand-ins that only collect tensors, and any
  other global (a callable smuggled into the pickle) is refused before anything is called.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sfray.errors import AssetError, UnsafePickleError
from sfray.geometry.transform import is_identity, transform_points
from sfray.io.atomic import atomic_path
from sfray.io.paths import require_file

#: ``format`` metadata of sfray's own map files.
MAP_FORMAT = "sfray-alignment-map"
MAP_VERSION = "1"
#: Tensor name of the 4x4 matrix inside the safetensors file.
MAP_TENSOR = "matrix"
#: Module paths under which the authors' trainer class may have been pickled.
_AUTHOR_MODULES = ("__main__", "train_alignment_mlp", "generate_synthforge_data")
#: Layer-name pairs of plausible two-layer layouts (first linear, second linear), tried in order.
_LAYER_PAIRS = (("fc1", "fc2"), ("0", "1"), ("0", "2"), ("linear1", "linear2"), ("l1", "l2"))
_PREFIXES = ("", "module.", "net.", "mlp.", "model.", "layers.", "layer.", "seq.")


class AlignmentMap:
    """A global affine map in generator world, applied after the generator's ``mesh_to_world``.

    It stands for the paper's alignment process: whatever residual the generator's density has
    with respect to the mesh, one affine map fitted once corrects it for every sample.
    ``matrix`` is (4, 4) float64 with last row (0, 0, 0, 1). Construction validates it with
    :class:`AssetError` naming ``source`` (the file it came from), because a bad map is a user's
    file to fix.
    """

    #: Which head -> world transform the map was fitted on: ``"generator"`` (the generator's own
    #: ``GeneratorOutput.mesh_to_world``) or ``"synthforge"`` (the release's annotation transform,
    #: ``Extra.MESH_TO_WORLD_SYNTHFORGE`` of a Next3D generator; the authors' fixMapMLP01.pth).
    BASES = ("generator", "synthforge")

    def __init__(self, matrix: torch.Tensor | None = None, *, source: str = "identity",
                 base: str = "generator"):
        if base not in self.BASES:
            raise AssetError(f"{source}: alignment map base '{base}' is not one of {self.BASES}")
        self.base = base
        m = torch.eye(4, dtype=torch.float64) if matrix is None else torch.as_tensor(matrix)
        m = m.detach().to("cpu", torch.float64)
        if m.shape != (4, 4):
            raise AssetError(f"{source}: alignment map must be a 4x4 matrix, got shape {tuple(m.shape)}")
        if not torch.isfinite(m).all():
            raise AssetError(f"{source}: alignment map holds non-finite values")
        if not torch.allclose(m[3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)):
            raise AssetError(f"{source}: alignment map's last row must be [0, 0, 0, 1], got {m[3].tolist()}")
        if abs(float(torch.linalg.det(m[:3, :3]))) < 1e-9:
            raise AssetError(f"{source}: alignment map is singular (its 3x3 part has zero determinant)")
        self.matrix = m
        self.source = source

    @classmethod
    def identity(cls) -> AlignmentMap:
        return cls()

    @classmethod
    def from_affine(cls, linear: torch.Tensor, offset: torch.Tensor, *,
                    source: str = "affine") -> AlignmentMap:
        """Build from ``y = linear @ x + offset`` with ``linear`` (3, 3) and ``offset`` (3,)."""
        m = torch.eye(4, dtype=torch.float64)
        m[:3, :3] = torch.as_tensor(linear, dtype=torch.float64)
        m[:3, 3] = torch.as_tensor(offset, dtype=torch.float64)
        return cls(m, source=source)

    @property
    def is_identity(self) -> bool:
        return is_identity(self.matrix)

    def apply(self, points: torch.Tensor) -> torch.Tensor:
        """World points (..., N, 3) -> aligned world points, same shape and dtype."""
        flat = points.reshape(-1, 3)
        out = transform_points(self.matrix.to(device=points.device), flat)
        return out.reshape(points.shape)

    def compose(self, mesh_to_world: torch.Tensor) -> torch.Tensor:
        """``matrix @ mesh_to_world`` for (B, 4, 4): head space straight to aligned world."""
        return self.matrix.to(device=mesh_to_world.device, dtype=mesh_to_world.dtype) @ mesh_to_world

    def then(self, other: AlignmentMap) -> AlignmentMap:
        """The map that applies ``self`` first, then ``other`` (``other.matrix @ self.matrix``)."""
        name = f"{self.source}->{getattr(other, 'source', 'map')}"
        return AlignmentMap(other.matrix @ self.matrix, source=name, base=self.base)

    def inverse(self) -> AlignmentMap:
        return AlignmentMap(torch.linalg.inv(self.matrix), source=f"inv({self.source})", base=self.base)

    def __repr__(self) -> str:
        return f"AlignmentMap(source={self.source!r}, matrix={self.matrix.tolist()})"


# ------------------------------------------------------------------------------------------------
# folding the authors' MLP
# ------------------------------------------------------------------------------------------------


def fold_linear_pair(w1: torch.Tensor, b1: torch.Tensor | None, w2: torch.Tensor,
                     b2: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``W2 (W1 x + b1) + b2 = (W2 W1) x + (W2 b1 + b2)``: two linear layers as one affine.

    ``w1`` (H, 3), ``w2`` (3, H); returns ``linear`` (3, 3) and ``offset`` (3,), float64.
    """
    w1, w2 = w1.to(torch.float64), w2.to(torch.float64)
    b1 = torch.zeros(w1.shape[0], dtype=torch.float64) if b1 is None else b1.to(torch.float64)
    b2 = torch.zeros(w2.shape[0], dtype=torch.float64) if b2 is None else b2.to(torch.float64)
    return w2 @ w1, w2 @ b1 + b2


def affine_from_mlp_state(state: Mapping[str, Any], *, source: str) -> AlignmentMap:
    """Find the two linear layers of the authors' MLP in a state dict and fold them.

    Accepted layouts: ``fc1``/``fc2`` (the authors' class; its unused ``bn1`` is ignored),
    ``torch.nn.Sequential`` indices ``0``/``1`` or ``0``/``2``, optionally under one common prefix
    such as ``module.`` or ``net.``. Anything else is refused with the keys found.
    """
    keys = sorted(str(k) for k in state)
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    for prefix in _PREFIXES:
        for first, second in _LAYER_PAIRS:
            k1, k2 = f"{prefix}{first}.weight", f"{prefix}{second}.weight"
            if k1 not in tensors or k2 not in tensors:
                continue
            own = {k for k in keys if k.startswith(prefix)} if prefix else set(keys)
            layer_names = {k[len(prefix):].split(".", 1)[0] for k in own}
            extra = layer_names - {first, second, "bn1" if first == "fc1" else first}
            if extra:
                continue  # more layers than a 3 -> H -> 3 affine: not this layout
            w1, w2 = tensors[k1], tensors[k2]
            shapes_ok = w1.ndim == 2 and w2.ndim == 2 and w1.shape[1] == 3 and w2.shape[0] == 3
            if not shapes_ok or w2.shape[1] != w1.shape[0]:
                raise AssetError(
                    f"{source}: alignment MLP layers have shapes {tuple(w1.shape)} and {tuple(w2.shape)}; "
                    "expected Linear(3, H) then Linear(H, 3) (weights (H, 3) and (3, H))"
                )
            linear, offset = fold_linear_pair(
                w1, tensors.get(f"{prefix}{first}.bias"), w2, tensors.get(f"{prefix}{second}.bias")
            )
            return AlignmentMap.from_affine(linear, offset, source=source)
    raise AssetError(
        f"{source}: not an alignment MLP state dict; expected two linear layers named fc1/fc2 "
        f"(or Sequential 0/1, 0/2) with weights (H, 3) and (3, H), found keys {keys}"
    )


class _ModuleStub:
    """Inert stand-in for a pickled ``nn.Module``: keeps its ``__dict__``, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = dict(state) if isinstance(state, Mapping) else {}


def _stub_globals() -> list[tuple[type, str]]:
    names = [f"{m}.MLP" for m in _AUTHOR_MODULES]
    names += [
        "torch.nn.modules.linear.Linear",
        "torch.nn.modules.batchnorm.BatchNorm1d",
    ]
    # one subclass per name: torch's allow-list maps each name to a distinct object
    return [(type(f"_Stub_{i}", (_ModuleStub,), {}), name) for i, name in enumerate(names)]


def _stub_to_state(obj: _ModuleStub, prefix: str = "") -> dict[str, Any]:
    """Flatten a tree of stubs into a state dict (``fc1.weight`` ...)."""
    out: dict[str, Any] = {}
    for group in ("_parameters", "_buffers"):
        for k, v in (obj.state.get(group) or {}).items():
            if v is not None:
                out[f"{prefix}{k}"] = v.detach() if isinstance(v, torch.Tensor) else v
    for name, child in (obj.state.get("_modules") or {}).items():
        if isinstance(child, _ModuleStub):
            out.update(_stub_to_state(child, f"{prefix}{name}."))
    return out


def load_torch_mlp(path: str | os.PathLike) -> AlignmentMap:
    """Load the authors' ``fixMapMLP01.pth`` (state dict or pickled module) without running code."""
    p = Path(path)
    label = str(p)
    try:
        with torch.serialization.safe_globals(_stub_globals()):
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError/RuntimeError for refused globals
        text = str(exc)
        msg = text.splitlines()[0] if text else type(exc).__name__
        if re.search(r"WeightsUnpickler error|unsupported global", text, re.IGNORECASE):
            found = re.search(r"GLOBAL (\S+)", text)
            what = f"'{found.group(1)}'" if found else "a callable"
            raise UnsafePickleError(
                f"{label}: refused to load the alignment map: the pickle asks for {what}, which is not "
                "a tensor or one of the authors' MLP layers (nothing in the file was executed)"
            ) from exc
        raise AssetError(
            f"{label}: not a readable torch alignment map ({type(exc).__name__}: {msg})"
        ) from exc
    if isinstance(obj, _ModuleStub):
        state = _stub_to_state(obj)
    elif isinstance(obj, Mapping):
        inner = obj.get("state_dict", None)
        state = dict(inner) if isinstance(inner, Mapping) else dict(obj)
    else:
        raise AssetError(
            f"{label}: expected a state dict or the authors' pickled MLP, found {type(obj).__name__}"
        )
    amap = affine_from_mlp_state(state, source=label)
    amap.base = "synthforge"  # the authors fitted it on top of their annotation transform
    return amap


# ------------------------------------------------------------------------------------------------
# sfray's own format
# ------------------------------------------------------------------------------------------------


def load_safetensors_map(path: str | os.PathLike) -> AlignmentMap:
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    label = str(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            names = list(fh.keys())
            if meta.get("format") != MAP_FORMAT or MAP_TENSOR not in names:
                raise AssetError(
                    f"{label}: not an sfray alignment map (metadata format={meta.get('format')!r}, "
                    f"tensors {names}); expected format={MAP_FORMAT!r} and a '{MAP_TENSOR}' tensor"
                )
            matrix = fh.get_tensor(MAP_TENSOR)
    except SafetensorError as exc:
        raise AssetError(f"{label}: not a readable safetensors file ({exc})") from exc
    return AlignmentMap(matrix, source=label, base=meta.get("base", "generator"))


def save_alignment_map(amap: AlignmentMap, path: str | os.PathLike,
                       info: Mapping[str, Any] | None = None) -> Path:
    """Write ``amap`` as safetensors atomically (``sfray.io.atomic``); ``info`` goes into metadata."""
    from safetensors.torch import save_file

    meta = {"format": MAP_FORMAT, "version": MAP_VERSION, "convention": "annotated = A @ mesh_to_world @ p",
            "base": amap.base}
    if info:
        meta["info"] = json.dumps(dict(info), sort_keys=True, default=str)
    with atomic_path(path) as tmp:
        save_file({MAP_TENSOR: amap.matrix.contiguous()}, str(tmp), metadata=meta)
    return Path(path)


def load_alignment_map(path: str | os.PathLike | None) -> AlignmentMap:
    """``annotate.alignment_map``: None -> identity; ``.safetensors`` -> sfray; torch file -> authors'."""
    if path is None or str(path) == "":
        return AlignmentMap.identity()
    p = require_file(path, "an alignment map (sfray .safetensors or the authors' fixMapMLP01.pth)",
                     key="annotate.alignment_map")
    with open(p, "rb") as fh:
        head = fh.read(16)
    if p.suffix == ".safetensors":
        return load_safetensors_map(p)
    if zipfile.is_zipfile(p) or head[:1] == b"\x80":  # torch zip archive or a legacy pickle stream
        return load_torch_mlp(p)
    raise AssetError(
        f"{p}: unknown alignment map format; expected sfray's .safetensors or the authors' torch "
        "file (fixMapMLP01.pth: Linear(3, 4) -> Linear(4, 3))"
    )
