"""Load Next3D weights into our module: official pickles (read safely) and sfray's safetensors format.

Flow: read the file into name -> tensor plus the plain attributes the network needs
(:func:`read_checkpoint`) -> infer the architecture from tensor shapes (:func:`infer_config`) ->
build the module on the ``meta`` device (nothing allocated) -> strict name/shape check with a full
report (:func:`compare_state`) -> assign the tensors (:func:`build_model`). sfray's own format is
one ``.safetensors`` file: the state dict, the plain attributes under ``attr.*``, extras under
``extra.*`` and the config plus provenance as JSON in the header metadata.
"""

from __future__ import annotations

import collections
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sfray.errors import AssetError
from sfray.io.atomic import atomic_path
from sfray.io.digest import file_sha256
from sfray.io.paths import require_file
from sfray.io.space import space_error
from sfray.generators.next3d.config import Next3DConfig, default_rendering_kwargs
from sfray.generators.next3d.generator import Next3DTriPlane
from sfray.generators.next3d.official_pickle import (
    PersistentRecord,
    check_official_pickle,
    extract_tensors,
    find_module,
    module_state,
    read_official_pickle,
)

SAFETENSORS_FORMAT = "sfray-next3d"
SAFETENSORS_VERSION = "1"
#: Entries a real checkpoint holds beyond the constructor's state dict (registered by training).
KNOWN_EXTRAS = ("dataset_label_std",)
#: Plain tensor attributes the forward pass needs: our name -> where the released pickle keeps it.
ATTRIBUTES = {"uv_face_mask": "uv_face_mask", "orth_scale": "orth_scale", "orth_shift": "orth_shift",
              "renderer.plane_axes": "renderer.plane_axes"}


@dataclass
class LoadedCheckpoint:
    """A checkpoint read into plain tensors and values (no network built yet)."""

    path: Path
    kind: str  # "official-pkl" | "sfray-safetensors"
    sha256: str  # of the file
    source_sha256: str  # of the official pickle the weights came from (== sha256 for a .pkl)
    tensors: collections.OrderedDict[str, torch.Tensor]
    attrs: dict[str, torch.Tensor]  # ATTRIBUTES keys
    rendering_kwargs: dict[str, Any]
    neural_rendering_resolution: int | None
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    config: Next3DConfig | None = None  # stored config (safetensors) or None (infer)
    record: PersistentRecord | None = None  # the G_ema record of an official pickle
    top_level: Any = None  # the whole unpickled object of an official pickle

    @property
    def identity(self) -> str:
        return "next3d:" + self.source_sha256[:16]


@dataclass
class StateReport:
    """Differences between a checkpoint's tensors and the module's state dict, in state-dict order."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    ignored_extras: list[str] = field(default_factory=list)
    first: str = ""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        return (f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
                f"{len(self.mismatched)} with the wrong shape")

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "missing": self.missing, "unexpected": self.unexpected,
                "mismatched": [{"name": n, "expected": list(e), "found": list(f)} for n, e, f in self.mismatched],
                "ignored_extras": self.ignored_extras}


def _plain(v: Any) -> Any:
    """numpy scalars / EasyDicts / tuples -> JSON-friendly Python values."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, torch.Tensor):
        return v.tolist() if v.numel() <= 16 else f"tensor{list(v.shape)}"
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

def read_checkpoint(path: str | os.PathLike) -> LoadedCheckpoint:
    """Read an official ``.pkl`` or an sfray ``.safetensors`` (by content, not by extension)."""
    path = require_file(path, "an official Next3D .pkl or an sfray .safetensors")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:1] == b"\x80":  # pickle protocol >= 2
        return _read_official(path)
    if len(head) >= 9 and head[8:9] == b"{":  # safetensors: u64 header length + JSON
        return _read_safetensors(path)
    raise AssetError(f"{path}: not a Next3D checkpoint (neither a pickle nor a safetensors file)")


def scan_checkpoint(path: str | os.PathLike) -> str:
    """Check a checkpoint by content without building a tensor (a preflight): a pickle's globals
    against the allow-list, a safetensors header against sfray's format and the file's size.
    Returns the kind ("official-pkl" | "sfray-safetensors"); AssetError / UnsafePickleError else."""
    path = require_file(path, "an official Next3D .pkl or an sfray .safetensors")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:1] == b"\x80":
        check_official_pickle(path)
        return "official-pkl"
    if len(head) >= 9 and head[8:9] == b"{":
        _check_safetensors_header(path)
        return "sfray-safetensors"
    raise AssetError(f"{path}: not a Next3D checkpoint (neither a pickle nor a safetensors file)")


def _check_safetensors_header(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n > min(size - 8, 100 * 2**20):
            raise AssetError(f"{path}: safetensors header of {n} bytes does not fit the file ({size} bytes)")
        try:
            header = json.loads(fh.read(n))
        except ValueError as exc:
            raise AssetError(f"{path}: safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise AssetError(f"{path}: safetensors header is not a JSON object")
    meta = header.get("__metadata__") or {}
    if meta.get("format") != SAFETENSORS_FORMAT:
        raise AssetError(f"{path}: safetensors file is not an sfray Next3D checkpoint "
                         f"(metadata format={meta.get('format')!r}, expected {SAFETENSORS_FORMAT!r})")
    for name, entry in header.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) and name != "__metadata__" else None
        if offsets is not None and (len(offsets) != 2 or not 0 <= offsets[0] <= offsets[1] <= size - 8 - n):
            raise AssetError(f"{path}: tensor '{name}' lies outside the file (truncated or corrupt)")


def _read_official(path: Path) -> LoadedCheckpoint:
    top = read_official_pickle(path)
    if not isinstance(top, dict) or "G_ema" not in top:
        found = sorted(map(str, top))[:8] if isinstance(top, dict) else type(top).__name__
        raise AssetError(f"{path}: not a Next3D network pickle: expected a dict with 'G_ema' "
                         f"(training_set_kwargs, G, D, G_ema, augment_pipe); found {found}")
    g = top["G_ema"]
    if not isinstance(g, PersistentRecord) or g.class_name != "TriPlaneGenerator":
        name = getattr(g, "class_name", type(g).__name__)
        raise AssetError(f"{path}: G_ema is a '{name}', not a Next3D TriPlaneGenerator")
    st = g.state
    renderer = module_state(find_module(g, "renderer"))
    attrs = {"uv_face_mask": st.get("uv_face_mask"), "orth_scale": st.get("orth_scale"),
             "orth_shift": st.get("orth_shift"), "renderer.plane_axes": renderer.get("plane_axes")}
    attrs = {k: v.detach().float() for k, v in attrs.items() if isinstance(v, torch.Tensor)}
    nrr = st.get("neural_rendering_resolution")
    digest = file_sha256(path)
    return LoadedCheckpoint(
        path=path, kind="official-pkl", sha256=digest, source_sha256=digest, tensors=extract_tensors(g),
        attrs=attrs, rendering_kwargs=_plain(dict(st.get("rendering_kwargs") or {})),
        neural_rendering_resolution=None if nrr is None else int(nrr),
        init_kwargs=_plain(dict(st.get("_init_kwargs") or {})), record=g, top_level=top)


def _read_safetensors(path: Path) -> LoadedCheckpoint:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            raw = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise AssetError(f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from exc
    if meta.get("format") != SAFETENSORS_FORMAT:
        raise AssetError(f"{path}: safetensors file is not an sfray Next3D checkpoint "
                         f"(metadata format={meta.get('format')!r}, expected {SAFETENSORS_FORMAT!r})")
    try:
        cfg = Next3DConfig.from_dict(json.loads(meta["config"]))
    except (KeyError, ValueError) as exc:
        raise AssetError(f"{path}: sfray Next3D checkpoint has no valid 'config' metadata ({exc})") from exc
    tensors = collections.OrderedDict((k, v) for k, v in raw.items() if not k.startswith(("attr.", "extra.")))
    for k, v in raw.items():
        if k.startswith("extra."):
            tensors[k[len("extra."):]] = v
    attrs = {k[len("attr."):]: v for k, v in raw.items() if k.startswith("attr.")}
    digest = file_sha256(path)
    return LoadedCheckpoint(
        path=path, kind="sfray-safetensors", sha256=digest, source_sha256=meta.get("source_sha256") or digest,
        tensors=tensors, attrs=attrs, rendering_kwargs=dict(cfg.rendering),
        neural_rendering_resolution=cfg.neural_rendering_resolution, config=cfg,
        init_kwargs=json.loads(meta.get("init_kwargs", "{}")))


# ---------------------------------------------------------------------------------------------
# Architecture from shapes
# ---------------------------------------------------------------------------------------------

def infer_config(ckpt: LoadedCheckpoint) -> Next3DConfig:
    """The Next3DConfig whose module has the checkpoint's tensors (one primary tensor per size)."""
    if ckpt.config is not None:
        return ckpt.config
    t = ckpt.tensors

    def shape(name: str) -> tuple[int, ...]:
        if name not in t:
            hint = " (an EG3D checkpoint?)" if not any(k.startswith("texture_backbone.") for k in t) else ""
            raise AssetError(f"{ckpt.path}: not a Next3D generator: G_ema has no tensor '{name}'{hint}")
        return tuple(t[name].shape)

    def count(pattern: str) -> int:
        rx = re.compile(pattern)
        return len({m.group(1) for k in t if (m := rx.fullmatch(k))})

    layers = count(r"backbone\.mapping\.fc(\d+)\.weight")
    res = sorted(int(m.group(1)) for k in t if (m := re.fullmatch(r"backbone\.synthesis\.b(\d+)\.conv1\.weight", k)))
    if not res or layers == 0:
        raise AssetError(f"{ckpt.path}: not a Next3D generator: no static backbone (backbone.synthesis / mapping)")
    plane = res[-1]
    ch_max = shape("backbone.synthesis.b4.const")[0]
    base = ch_max * plane
    for r in res:
        ch = shape(f"backbone.synthesis.b{r}.conv1.weight")[0]
        if ch < ch_max:
            base = ch * r
            break
    embed = shape("backbone.mapping.embed.weight")
    w_dim = shape(f"backbone.mapping.fc{layers - 1}.weight")[0]
    n_sr0 = shape("superresolution.block0.conv0.noise_const")[0]
    mask = ckpt.attrs.get("uv_face_mask")
    if mask is None:
        raise AssetError(f"{ckpt.path}: G_ema has no 'uv_face_mask' tensor attribute (needed for rasterization)")
    faces = t.get("faces")
    num_vertices = int(faces.max()) + 1 if faces is not None and faces.numel() else 0
    sr_fp16 = int(ckpt.init_kwargs.get("sr_num_fp16_res", 4) or 0)
    rendering = {**default_rendering_kwargs(), **ckpt.rendering_kwargs}
    cfg = Next3DConfig(
        z_dim=shape("backbone.mapping.fc0.weight")[1] - embed[0], w_dim=w_dim, c_dim=embed[1],
        mapping_layers=layers, channel_base=base, channel_max=ch_max, plane_resolution=plane,
        plane_channels=shape(f"texture_backbone.synthesis.b{plane}.torgb.weight")[0],
        mouth_in_size=plane // 4,  # the crop size is not stored; released ratio 64/256
        mouth_encoder_blocks=count(r"mouth_backbone\.synthesis\.encoder\.(\d+)\.conv1\.weight"),
        blend_encoder_blocks=count(r"neural_blending\.synthesis\.encoder\.(\d+)\.conv1\.weight"),
        decoder_hidden=shape("decoder.net.0.weight")[0],
        decoder_features=shape("superresolution.block0.conv0.weight")[1],
        sr_channels=(shape("superresolution.block0.conv1.weight")[0], shape("superresolution.block1.conv1.weight")[0]),
        sr_input_resolution=n_sr0 // 2, sr_conv_clamp=256.0 if sr_fp16 > 0 else None,
        img_resolution=shape("superresolution.block1.conv0.noise_const")[0],
        neural_rendering_resolution=int(ckpt.neural_rendering_resolution or 64),
        uv_resolution=int(mask.shape[-1]), num_vertices=num_vertices, num_faces=shape("faces")[1],
        num_uv=shape("raw_uvcoords")[1], num_dense_faces=shape("dense_faces")[1], rendering=rendering,
    )
    try:
        cfg.validate()
    except Exception as exc:
        raise AssetError(f"{ckpt.path}: tensor shapes describe no buildable Next3D generator ({exc})") from exc
    return cfg


# ---------------------------------------------------------------------------------------------
# Strict load
# ---------------------------------------------------------------------------------------------

def compare_state(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> StateReport:
    """Names and shapes of ``found`` against ``expected`` (a state dict); KNOWN_EXTRAS are tolerated."""
    rep = StateReport()
    for name, ref in expected.items():
        if name not in found:
            rep.missing.append(name)
            rep.first = rep.first or f"missing tensor '{name}' {list(ref.shape)}"
        elif tuple(found[name].shape) != tuple(ref.shape):
            rep.mismatched.append((name, tuple(ref.shape), tuple(found[name].shape)))
            rep.first = rep.first or (f"'{name}' has shape {list(found[name].shape)}, "
                                      f"expected {list(ref.shape)}")
    for name in found:
        if name in expected:
            continue
        if name in KNOWN_EXTRAS:
            rep.ignored_extras.append(name)
        else:
            rep.unexpected.append(name)
            rep.first = rep.first or f"unexpected tensor '{name}' {list(found[name].shape)}"
    return rep


def meta_model(cfg: Next3DConfig) -> Next3DTriPlane:
    """The module with every tensor on the meta device (no memory, no random init cost)."""
    with torch.device("meta"):
        return Next3DTriPlane(cfg)


def build_model(ckpt: LoadedCheckpoint, device: torch.device | str = "cpu") -> tuple[Next3DTriPlane, StateReport]:
    """Infer the config, check the tensors strictly and assign them; raises AssetError on any mismatch."""
    cfg = infer_config(ckpt)
    model = meta_model(cfg)
    expected = model.state_dict()
    report = compare_state(expected, ckpt.tensors)
    if not report.ok:
        raise AssetError(f"{ckpt.path}: checkpoint does not match the Next3D architecture: {report.first} "
                         f"({report.summary()}; `sfray inspect checkpoint` lists them all)")
    missing_attrs = [k for k in ATTRIBUTES if k not in ckpt.attrs]
    if missing_attrs:
        raise AssetError(f"{ckpt.path}: G_ema lacks the tensor attribute(s) {missing_attrs}")
    sd = {k: ckpt.tensors[k].to(expected[k].dtype) for k in expected}
    model.load_state_dict(sd, strict=True, assign=True)
    model.uv_face_mask = ckpt.attrs["uv_face_mask"].float().reshape(1, 1, cfg.uv_resolution, cfg.uv_resolution)
    model.orth_scale = ckpt.attrs["orth_scale"].float().reshape(1, 1)
    model.orth_shift = ckpt.attrs["orth_shift"].float().reshape(1, 3)
    model.renderer.plane_axes = ckpt.attrs["renderer.plane_axes"].float().reshape(3, 3, 3)
    left = [n for n, x in [*model.named_parameters(), *model.named_buffers()] if x.is_meta]
    if left:
        raise AssetError(f"{ckpt.path}: tensors left unset after loading: {left[:3]}")
    model.rendering_kwargs = dict(cfg.rendering)
    return model.to(device).eval().requires_grad_(False), report


def load_next3d(path: str | os.PathLike, device: torch.device | str = "cpu"
                ) -> tuple[Next3DTriPlane, LoadedCheckpoint]:
    """Read + strictly load an official pickle or an sfray safetensors file."""
    ckpt = read_checkpoint(path)
    model, _ = build_model(ckpt, device)
    return model, ckpt


# ---------------------------------------------------------------------------------------------
# sfray's own format
# ---------------------------------------------------------------------------------------------

def save_safetensors(model: Next3DTriPlane, path: str | os.PathLike, *, source: str = "",
                     source_sha256: str = "", extras: dict[str, torch.Tensor] | None = None,
                     init_kwargs: dict[str, Any] | None = None) -> Path:
    """Write the model (state dict + attributes + config) to one .safetensors file, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise AssetError(f"{path}: sfray Next3D checkpoints are written as .safetensors")
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    tensors["attr.uv_face_mask"] = model.uv_face_mask.detach().cpu().contiguous().clone()
    tensors["attr.orth_scale"] = model.orth_scale.detach().cpu().contiguous().clone()
    tensors["attr.orth_shift"] = model.orth_shift.detach().cpu().contiguous().clone()
    tensors["attr.renderer.plane_axes"] = model.renderer.plane_axes.detach().cpu().contiguous().clone()
    for k, v in (extras or {}).items():
        tensors[f"extra.{k}"] = v.detach().cpu().contiguous().clone()
    cfg = model.cfg
    cfg_dict = {**cfg.to_dict(), "rendering": _plain(model.rendering_kwargs),
                "neural_rendering_resolution": int(model.neural_rendering_resolution)}
    meta = {"format": SAFETENSORS_FORMAT, "format_version": SAFETENSORS_VERSION, "config": json.dumps(cfg_dict),
            "source": source, "source_sha256": source_sha256, "init_kwargs": json.dumps(_plain(init_kwargs or {}))}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def convert_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False
                       ) -> tuple[Path, LoadedCheckpoint, StateReport]:
    """Official .pkl (or sfray file) -> sfray .safetensors, after the strict check.

    The output is written atomically (nothing partial on an error); an existing ``dst`` is replaced
    only with ``overwrite`` and never when it is ``src`` itself."""
    out = Path(dst)
    if out.suffix != ".safetensors":
        raise AssetError(f"{out}: sfray Next3D checkpoints are written as .safetensors")
    if out.is_dir():
        raise AssetError(f"{out}: is a directory; name the output .safetensors file")
    if out.exists() and not overwrite:
        raise AssetError(f"{out}: exists; pass --overwrite to replace it")
    if out.exists() and Path(src).exists() and os.path.samefile(out, src):
        raise AssetError(f"{out}: is the input file; write the conversion elsewhere")
    ckpt = read_checkpoint(src)
    model, report = build_model(ckpt, "cpu")
    extras = {k: ckpt.tensors[k] for k in report.ignored_extras}
    try:
        out = save_safetensors(model, out, source=Path(src).name, source_sha256=ckpt.source_sha256,
                               extras=extras, init_kwargs=ckpt.init_kwargs)
    except OSError as exc:
        need = sum(t.numel() * t.element_size() for t in ckpt.tensors.values())
        full = space_error(exc, out.parent, need)
        if full is not None:
            raise type(full)(f"writing {out}: {full}; nothing was written") from None
        raise AssetError(f"writing {out} failed: {exc.strerror or exc}; nothing was written") from None
    return out, ckpt, report
