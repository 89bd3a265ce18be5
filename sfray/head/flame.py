"""Assemble a FLAME :class:`~sfray.head.assets.HeadAssets` from the user's files (``HeadConfig``).

FLAME files are licensed and never shipped (docs/synthforge.md); the user points ``head.path`` at
``generic_model.pkl`` and, for annotations, at a landmark embedding, ``head_template.obj`` (UVs) and a
UV label map or ``FLAME_masks.pkl``. Every file is read without executing code
(:mod:`sfray.head.flame_pickle`). FLAME space is metres, y up, face towards +z, as HeadAssets wants.

File readers live in :mod:`sfray.head.flame_model` and :mod:`sfray.head.flame_embedding`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfray.config.schema import HeadConfig
from sfray.errors import AssetError, ConfigError
from sfray.head.assets import HeadAssets
from sfray.head.flame_embedding import empty_embedding, read_landmark_embedding, read_masks
from sfray.head.flame_model import read_flame_model
from sfray.head.label_map import label_map_from_regions, load_label_map
from sfray.head.obj import ObjMesh, read_obj

#: Resolution of a label map derived from vertex masks (the authors' painted map is 4096^2).
DERIVED_LABEL_MAP_SIZE = 1024

WHY = {
    "landmark_embedding": "landmarks need an embedding: head.landmark_embedding=landmark_embedding.npy "
                          "(DECA) or flame_static_embedding.pkl with "
                          "head.dynamic_embedding=flame_dynamic_embedding.npy (RingNet)",
    "template_obj": "segmentation needs the UV layout: head.template_obj=head_template.obj",
    "label_map": "segmentation needs a UV label map: head.label_map=<UV label image> or "
                 "head.masks=FLAME_masks.pkl (with head.template_obj)",
}


def align_uv_faces(obj: ObjMesh, faces: np.ndarray, num_vertices: int, path: str) -> np.ndarray:
    """UV indices ``(F, 3)`` matching ``faces`` corner by corner, from an OBJ of the same topology."""
    if obj.uv_faces is None:
        raise AssetError(f"{path}: faces carry no UV indices; expected 'f v/vt ...' records")
    if obj.vertices.shape[0] != num_vertices:
        raise AssetError(f"{path}: has {obj.vertices.shape[0]} vertices but the model has {num_vertices}; "
                         "expected the template mesh of the same model (head_template.obj for FLAME)")
    if obj.faces.shape == faces.shape and np.array_equal(obj.faces, faces):
        return obj.uv_faces
    if obj.faces.shape != faces.shape:
        raise AssetError(f"{path}: has {obj.faces.shape[0]} triangles but the model has {faces.shape[0]}; "
                         "expected the template mesh of the same model (head_template.obj for FLAME)")
    lookup = {tuple(sorted(t)): dict(zip(t, u)) for t, u in zip(obj.faces.tolist(), obj.uv_faces.tolist())}
    out = np.empty_like(faces)
    for i, tri in enumerate(faces.tolist()):
        corner_uv = lookup.get(tuple(sorted(tri)))
        if corner_uv is None:
            raise AssetError(f"{path}: the model's triangle {i} {tri} is not in the OBJ; "
                             "expected the same topology")
        out[i] = [corner_uv[v] for v in tri]
    return out


def load_flame_parts(cfg: HeadConfig) -> tuple[HeadAssets, dict[str, str]]:
    """All FLAME assets the config names, plus ``missing``: part -> what it is needed for.

    Missing optional parts are filled with empty placeholders (no landmarks, no UVs, an empty label
    map), so the result can be inspected; :func:`load_flame_assets` refuses an incomplete set.
    """
    if not cfg.path:
        raise ConfigError("head.path: head.kind=flame needs head.path=<FLAME generic_model.pkl>")
    model = read_flame_model(cfg.path)
    if cfg.n_expression > model.exprdirs.shape[2]:
        raise ConfigError(f"head.n_expression={cfg.n_expression}: {cfg.path} has only "
                          f"{model.exprdirs.shape[2]} expression components")
    nv, nf = model.v_template.shape[0], model.faces.shape[0]
    missing: dict[str, str] = {}

    if cfg.landmark_embedding:
        emb = read_landmark_embedding(cfg.landmark_embedding, cfg.dynamic_embedding, nf)
    else:
        emb = empty_embedding()
        missing["landmark_embedding"] = WHY["landmark_embedding"]

    uv_coords, uv_faces = np.zeros((0, 2)), np.zeros((0, 3), dtype=np.int64)
    if cfg.template_obj:
        obj = read_obj(cfg.template_obj)
        uv_faces, uv_coords = align_uv_faces(obj, model.faces, nv, cfg.template_obj), obj.uv_coords
    else:
        missing["template_obj"] = WHY["template_obj"]

    regions = read_masks(cfg.masks, nv) if cfg.masks else {}
    if cfg.label_map:
        label_map = load_label_map(cfg.label_map)
    elif regions and uv_faces.size:
        label_map = label_map_from_regions(regions, model.v_template, model.faces, uv_coords, uv_faces,
                                           DERIVED_LABEL_MAP_SIZE)
    else:
        label_map = np.zeros((0, 0), dtype=np.uint8)
        missing["label_map"] = WHY["label_map"]

    assets = HeadAssets(
        kind="flame",
        source=str(Path(cfg.path)),
        v_template=model.v_template,
        faces=model.faces,
        shapedirs=model.shapedirs,
        exprdirs=model.exprdirs,
        posedirs=model.posedirs,
        j_regressor=model.j_regressor,
        parents=model.parents,
        lbs_weights=model.weights,
        landmarks=emb,
        uv_coords=uv_coords,
        uv_faces=uv_faces,
        uv_label_map=label_map,
        vertex_regions=regions,
    )
    return assets, missing


def load_flame_assets(cfg: HeadConfig) -> HeadAssets:
    """FLAME HeadAssets ready for generation and annotation; AssetError if a needed file is not set.

    All 300 identity and all expression directions are kept; ``HeadModel`` uses the first
    ``cfg.n_shape``/``cfg.n_expression`` of them.
    """
    assets, missing = load_flame_parts(cfg)
    if missing:
        raise AssetError(f"{cfg.path}: the FLAME head is incomplete: " + "; ".join(missing.values()))
    return assets
