"""Test-only: write one of our models as an official-format Next3D pickle (docs/next3d.md §5).

Reproduces the record structure of ``torch_utils.persistence`` version 6: every decorated class as
``_reconstruct_persistent_obj({'type': 'class', 'version': 6, 'module_src', 'class_name', 'state'})``,
the non-decorated ones (OSGDecoder, renderer, ray marcher/sampler, torch containers) as NEWOBJ +
BUILD, tensors through ``torch._utils._rebuild_tensor_v2`` + ``torch.storage._load_from_bytes``, and
plain tensor attributes (``uv_face_mask``, ``orth_*``, ``renderer.plane_axes``) outside the state
dict. Used by the tests to prove that the loader reads such files without running anything; it
never touches real checkpoints. ``module_src`` is whatever text the caller supplies.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sfray.generators.next3d.generator import Next3DTriPlane
from sfray.generators.next3d.layers import Conv2dLayer, FullyConnectedLayer, SynthesisLayer, ToRGBLayer
from sfray.generators.next3d.renderer import ImportanceRenderer
from sfray.generators.next3d.stylegan2 import MappingNetwork, StyleGAN2Generator, SynthesisBlock, SynthesisNetwork
from sfray.generators.next3d.styleunet import EncoderResBlock, StyleUNetGenerator, StyleUNetSynthesis
from sfray.generators.next3d.superres import SuperresolutionHybrid8XDC

from .official_dump import _DictProxy, _PersistentProxy, _PlainProxy, dump_official
from sfray.generators.next3d.triplane import OSGDecoder

PKG = "training_avatar_texture"
SG2, UNET = f"{PKG}.networks_stylegan2", f"{PKG}.networks_stylegan2_styleunet"
RENDER, SAMPLER, MARCHER = (f"{PKG}.volumetric_rendering.renderer", f"{PKG}.volumetric_rendering.ray_sampler",
                            f"{PKG}.volumetric_rendering.ray_marcher")

#: our class -> (released class name, defining module) for decorated classes; order matters (subclasses first).
PERSISTENT: list[tuple[type, str, str]] = [
    (Next3DTriPlane, "TriPlaneGenerator", f"{PKG}.triplane_next3d"),
    (StyleUNetGenerator, "Generator", UNET),
    (StyleUNetSynthesis, "SynthesisNetwork", UNET),
    (EncoderResBlock, "EncoderResBlock", UNET),
    (StyleGAN2Generator, "Generator", SG2),
    (SynthesisNetwork, "SynthesisNetwork", SG2),
    (MappingNetwork, "MappingNetwork", SG2),
    (SynthesisBlock, "SynthesisBlock", SG2),
    (SynthesisLayer, "SynthesisLayer", SG2),
    (ToRGBLayer, "ToRGBLayer", SG2),
    (FullyConnectedLayer, "FullyConnectedLayer", SG2),
    (Conv2dLayer, "Conv2dLayer", SG2),
    (SuperresolutionHybrid8XDC, "SuperresolutionHybrid8XDC", f"{PKG}.superresolution"),
]
PLAIN: dict[type, tuple[str, str]] = {
    OSGDecoder: (f"{PKG}.triplane_next3d", "OSGDecoder"),
    ImportanceRenderer: (RENDER, "ImportanceRenderer"),
}
FAKE_GLOBALS: dict[str, dict[str, tuple[type, ...]]] = {
    f"{PKG}.triplane_next3d": {"OSGDecoder": ()},
    RENDER: {"ImportanceRenderer": ()},
    SAMPLER: {"RaySampler": ()},
    MARCHER: {"MipRayMarcher2": ()},
    "dnnlib.util": {"EasyDict": (dict,)},
}
_HOOK_DICTS = ("_backward_hooks", "_forward_hooks", "_forward_pre_hooks", "_state_dict_hooks",
               "_load_state_dict_pre_hooks")


def _base_state(m: nn.Module | None, children: collections.OrderedDict, extra: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    st: dict[str, Any] = {"training": False}
    for name in _HOOK_DICTS:
        st[name] = collections.OrderedDict()
    params, buffers = collections.OrderedDict(), collections.OrderedDict()
    if m is not None:
        params.update((k, v) for k, v in m._parameters.items())
        for k, v in m._buffers.items():
            if k in m._non_persistent_buffers_set:
                st[k] = v  # a plain tensor attribute in the released classes
            else:
                buffers[k] = v
        for k, v in m.__dict__.items():
            if k.startswith("_") or k == "training":
                continue
            if isinstance(v, float):
                st[k] = np.float64(v)  # the released layers store numpy scalars (exercise numpy globals)
            elif isinstance(v, (int, str, bool, tuple, list, dict, type(None))):
                st[k] = v
    st.update(_parameters=params, _buffers=buffers, _non_persistent_buffers_set=set(), _modules=children)
    st.update(extra or {})
    return st


def _convert(m: nn.Module, source_for: Callable[[str], str]) -> Any:
    children = collections.OrderedDict()
    for name, child in m.named_children():
        children[name] = _convert(child, source_for)
    if isinstance(m, ImportanceRenderer):
        children["ray_marcher"] = _PlainProxy((MARCHER, "MipRayMarcher2"), _base_state(None, collections.OrderedDict()))
    if isinstance(m, Next3DTriPlane):
        children = _top_level_children(children, source_for)
    for cls, class_name, module in PERSISTENT:
        if isinstance(m, cls):
            extra = {"_init_args": (), "_init_kwargs": {}}
            if isinstance(m, Next3DTriPlane):
                extra.update(_top_level_attrs(m))
            return _PersistentProxy(class_name, source_for(module), _base_state(m, children, extra))
    for cls, (module, name) in PLAIN.items():
        if isinstance(m, cls):
            return _PlainProxy((module, name), _base_state(m, children))
    if isinstance(m, (nn.Sequential, nn.ModuleList, nn.Softplus)):
        return _PlainProxy(type(m), _base_state(m, children))
    raise TypeError(f"no official counterpart for {type(m).__name__}")


def _top_level_children(children: collections.OrderedDict, source_for: Callable[[str], str]) -> collections.OrderedDict:
    """Released order: renderer, ray_sampler, texture, mouth, backbone, SR, decoder, rasterizer, blending."""
    out = collections.OrderedDict()
    out["renderer"] = children["renderer"]
    out["ray_sampler"] = _PlainProxy((SAMPLER, "RaySampler"), _base_state(None, collections.OrderedDict()))
    for name in ("texture_backbone", "mouth_backbone", "backbone", "superresolution", "decoder"):
        if name in children:
            out[name] = children[name]
    raster_state = _base_state(None, collections.OrderedDict(), {"image_size": 256})
    out["rasterizer"] = _PersistentProxy("Pytorch3dRasterizer", source_for(RENDER), raster_state)
    if "neural_blending" in children:
        out["neural_blending"] = children["neural_blending"]
    return out


def _top_level_attrs(m: Next3DTriPlane) -> dict[str, Any]:
    cfg = m.cfg
    return {
        "z_dim": cfg.z_dim, "c_dim": cfg.c_dim, "w_dim": cfg.w_dim, "img_resolution": cfg.img_resolution,
        "img_channels": cfg.img_channels, "topology_path": "data/ffhq/head_template.obj",
        "uv_resolution": cfg.uv_resolution, "load_lms": True, "fill_mouth": True, "_last_planes": None,
        "_init_kwargs": {"z_dim": cfg.z_dim, "c_dim": cfg.c_dim, "w_dim": cfg.w_dim,
                         "img_resolution": cfg.img_resolution, "img_channels": cfg.img_channels,
                         "sr_num_fp16_res": 4, "mapping_kwargs": {"num_layers": cfg.mapping_layers},
                         "rendering_kwargs": dict(m.rendering_kwargs)},
    }


def write_official_pickle(model: Next3DTriPlane, path: str | os.PathLike, source_for: Callable[[str], str],
                          dataset_label_std: torch.Tensor | None = None) -> Path:
    """Write ``{'training_set_kwargs', 'G', 'D', 'G_ema', 'augment_pipe'}`` for ``model`` to ``path``."""
    g_ema = _convert(model, source_for)
    if dataset_label_std is not None:
        g_ema.meta["state"]["_buffers"]["dataset_label_std"] = dataset_label_std
    g = _convert(model, source_for)
    d_state = _base_state(None, collections.OrderedDict(),
                          {"_init_kwargs": {"c_dim": 25, "img_resolution": model.cfg.img_resolution}})
    d_state["_parameters"]["b4_out_weight"] = nn.Parameter(torch.randn(4, 4))
    d = _PersistentProxy("DualDiscriminator", source_for(f"{PKG}.dual_discriminator"), d_state)
    top = {
        "training_set_kwargs": _DictProxy(("dnnlib.util", "EasyDict"), {"path": "ffhq512.zip", "use_labels": True}),
        "G": g, "D": d, "G_ema": g_ema, "augment_pipe": None,
    }
    data = dump_official(top, FAKE_GLOBALS)
    path = Path(path)
    path.write_bytes(data)
    return path
