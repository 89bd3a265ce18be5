"""``sfray inspect checkpoint``: what a Next3D checkpoint holds, read without running anything.

Reports the record classes (and persistence versions), the rendering kwargs and plain attributes
the forward pass depends on (docs/next3d.md §8 checklist), parameter counts, the inferred architecture and
the strict name/shape check against our module. ``dump_source`` writes the embedded module sources
(text only) so they can be read and diffed against docs/next3d.md §2 (see its §0).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from sfray.errors import SfrayError
from sfray.io.atomic import atomic_write_text
from sfray.io.paths import child_path, safe_filename
from sfray.generators.next3d.checkpoint import (
    LoadedCheckpoint,
    _plain,
    compare_state,
    infer_config,
    meta_model,
    read_checkpoint,
)
from sfray.generators.next3d.official_pickle import PersistentRecord, StubObject, walk_modules
from sfray.generators.next3d.triplane import eg3d_plane_axes, next3d_plane_axes


def _class_of(obj: Any) -> str:
    if isinstance(obj, PersistentRecord):
        return f"{obj.class_name} (persistent v{obj.version})"
    if isinstance(obj, StubObject):
        return f"{obj.stub_module}.{obj.stub_name}"
    return "None" if obj is None else type(obj).__name__


def _plane_axes_kind(axes: torch.Tensor | None) -> str:
    if axes is None:
        return "absent"
    if torch.allclose(axes.float(), next3d_plane_axes()):
        return "next3d (I; x,z; z,y)"
    if torch.allclose(axes.float(), eg3d_plane_axes()):
        return "eg3d (I; x,z; z,x)"
    return "other"


def _module_tree(ckpt: LoadedCheckpoint) -> list[dict[str, Any]]:
    if ckpt.record is None:
        return []
    return [{"path": p or "<G_ema>", "class": _class_of(m)} for p, m in walk_modules(ckpt.record)]


def dump_sources(ckpt: LoadedCheckpoint, out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Write each distinct embedded module source once, as text; returns the index written to index.json.

    File names come from the pickle's class names, which a hostile file chooses: each is reduced to
    one harmless name (``sfray.io.paths.safe_filename``) and joined with :func:`child_path`, so no
    name can leave ``out_dir`` (``x/../../TRAV``, NUL, ``/``, 300 characters all stay inside)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SfrayError(f"--dump-source {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    roots: list[tuple[str, Any]] = [("G_ema", ckpt.record)]
    if isinstance(ckpt.top_level, dict):
        roots = [(str(k), v) for k, v in ckpt.top_level.items() if isinstance(v, (PersistentRecord, StubObject))]
    by_src: dict[str, dict[str, Any]] = {}
    for root, obj in roots:
        for path, mod in walk_modules(obj):
            if not isinstance(mod, PersistentRecord) or not mod.module_src:
                continue
            digest = hashlib.sha256(mod.module_src.encode()).hexdigest()[:12]
            if digest not in by_src:
                name = safe_filename(f"{len(by_src):02d}_{mod.class_name}_{digest}", max_len=80) + ".py.txt"
                by_src[digest] = {"file": name, "classes": set(), "used_at": [], "src": mod.module_src}
            entry = by_src[digest]
            entry["classes"].add(mod.class_name)
            if len(entry["used_at"]) < 20:
                entry["used_at"].append(f"{root}.{path}" if path else root)
    index = []
    for digest, e in by_src.items():
        # text for reading; ".py.txt" so nothing imports it by accident
        atomic_write_text(child_path(out, e["file"], what="module source"), e["src"], durable=False)
        index.append({"file": e["file"], "sha256_12": digest, "classes": sorted(e["classes"]), "used_at": e["used_at"]})
    atomic_write_text(out / "index.json", json.dumps(index, indent=2), durable=False)
    return index


def inspect_checkpoint(path: str | os.PathLike, dump_source: str | os.PathLike | None = None) -> dict[str, Any]:
    """A JSON-friendly report of a Next3D checkpoint (official .pkl or sfray .safetensors)."""
    ckpt = read_checkpoint(path)
    rep: dict[str, Any] = {"path": str(ckpt.path), "kind": ckpt.kind, "size_bytes": ckpt.path.stat().st_size,
                           "sha256": ckpt.sha256, "identity": ckpt.identity}
    if isinstance(ckpt.top_level, dict):
        rep["top_level"] = {str(k): _class_of(v) for k, v in ckpt.top_level.items()}
        rep["persistence_versions"] = sorted({m.version for _, m in walk_modules(ckpt.record)
                                              if isinstance(m, PersistentRecord)})
    rep["modules"] = _module_tree(ckpt)
    rep["rendering_kwargs"] = _plain(ckpt.rendering_kwargs)
    rep["neural_rendering_resolution"] = ckpt.neural_rendering_resolution
    rep["init_kwargs"] = _plain(ckpt.init_kwargs)
    axes = ckpt.attrs.get("renderer.plane_axes")
    rep["attributes"] = {
        "uv_face_mask": list(ckpt.attrs["uv_face_mask"].shape) if "uv_face_mask" in ckpt.attrs else None,
        "orth_scale": _plain(ckpt.attrs.get("orth_scale")), "orth_shift": _plain(ckpt.attrs.get("orth_shift")),
        "plane_axes": _plain(axes), "plane_axes_kind": _plane_axes_kind(axes),
    }
    per_top: dict[str, int] = collections.defaultdict(int)
    for name, t in ckpt.tensors.items():
        per_top[name.split(".", 1)[0] if "." in name else "<buffers>"] += t.numel()
    rep["tensor_count"] = len(ckpt.tensors)
    rep["tensor_elements"] = dict(per_top)
    try:
        cfg = infer_config(ckpt)
        model = meta_model(cfg)
        params = {n for n, _ in model.named_parameters()}
        counts: dict[str, int] = collections.defaultdict(int)
        for n in params & set(ckpt.tensors):
            counts[n.split(".", 1)[0]] += ckpt.tensors[n].numel()
        rep["parameters"] = {**dict(counts), "total": sum(counts.values())}
        rep["config"] = cfg.to_dict()
        rep["released_architecture"] = cfg.is_released_architecture()
        rep["state_check"] = compare_state(model.state_dict(), ckpt.tensors).to_dict()
    except SfrayError as exc:
        rep["config_error"] = str(exc)
    if dump_source is not None:
        rep["sources"] = dump_sources(ckpt, dump_source) if ckpt.record is not None else []
    return rep


def format_report(rep: dict[str, Any]) -> str:
    """Human-readable summary of :func:`inspect_checkpoint`."""
    lines = [f"{rep['path']}  ({rep['kind']}, {rep['size_bytes'] / 2**20:.1f} MiB)",
             f"  identity: {rep['identity']}   sha256: {rep['sha256']}"]
    if "top_level" in rep:
        lines.append("  top level: " + ", ".join(f"{k}={v}" for k, v in rep["top_level"].items()))
        lines.append(f"  persistence versions: {rep['persistence_versions']}")
    if rep["modules"]:
        lines.append("  G_ema modules:")
        for m in rep["modules"]:
            if m["path"].count(".") == 0:
                lines.append(f"    {m['path']}: {m['class']}")
    lines.append(f"  neural_rendering_resolution: {rep['neural_rendering_resolution']}")
    lines.append("  rendering_kwargs:")
    lines += [f"    {k}: {v}" for k, v in rep["rendering_kwargs"].items()]
    a = rep["attributes"]
    lines.append(f"  uv_face_mask {a['uv_face_mask']}  orth_scale {a['orth_scale']}  orth_shift {a['orth_shift']}")
    lines.append(f"  plane_axes: {a['plane_axes_kind']}")
    if "parameters" in rep:
        lines.append("  parameters: " + ", ".join(f"{k} {v:,}" for k, v in rep["parameters"].items()))
        sc = rep["state_check"]
        status = "OK" if sc["ok"] else (f"{len(sc['missing'])} missing, {len(sc['unexpected'])} unexpected, "
                                        f"{len(sc['mismatched'])} wrong shapes")
        lines.append(f"  state check vs sfray Next3D: {status}; ignored extras {sc['ignored_extras']}")
        for n in sc["missing"][:10]:
            lines.append(f"    missing {n}")
        for n in sc["unexpected"][:10]:
            lines.append(f"    unexpected {n}")
        for m in sc["mismatched"][:10]:
            lines.append(f"    shape {m['name']}: expected {m['expected']}, found {m['found']}")
        lines.append(f"  released architecture: {rep['released_architecture']}")
    else:
        lines.append(f"  architecture: {rep.get('config_error')}")
    if "sources" in rep:
        lines.append(f"  module sources written: {len(rep['sources'])} files (+ index.json)")
    return "\n".join(lines)
