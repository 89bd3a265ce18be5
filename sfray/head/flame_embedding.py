"""FLAME landmark embeddings (RingNet and DECA formats) and vertex masks (``FLAME_masks.pkl``).

Formats read (all through the restricted unpickler; no ``np.load(allow_pickle=True)``):

* RingNet ``flame_static_embedding.pkl``: dict ``lmk_face_idx`` (51,), ``lmk_b_coords`` (51, 3).
  TF_FLAME's ``flame_static_embedding_68.pkl`` has the same keys with 68 points.
* RingNet ``flame_dynamic_embedding.npy``: an ``np.save``-d dict ``lmk_face_idx`` (79, 17),
  ``lmk_b_coords`` (79, 17, 3).
* DECA ``landmark_embedding.npy``: an ``np.save``-d dict with ``static_lmk_faces_idx`` (51,),
  ``static_lmk_bary_coords`` (51, 3), ``dynamic_lmk_faces_idx`` (79, 17) and
  ``dynamic_lmk_bary_coords`` (79, 17, 3) as torch tensors, ``full_lmk_faces_idx`` (68,) and
  ``full_lmk_bary_coords`` (68, 3) (a leading batch axis of 1 is accepted).

With RingNet files the fixed 68 points are the frontal contour (dynamic row 0, yaw 0) followed by the
51 static points. With a 68-point static file and no dynamic table, the contour is the fixed one for
every yaw.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from sfray.conventions import DYNAMIC_CONTOUR_MAX_DEG, NUM_CONTOUR_LANDMARKS, NUM_LANDMARKS
from sfray.errors import AssetError
from sfray.head.assets import LandmarkEmbedding
from sfray.head.flame_pickle import embedding_allowed, load_npy_object, load_pickle_file, to_numpy

NUM_STATIC = NUM_LANDMARKS - NUM_CONTOUR_LANDMARKS  # 51
NUM_ROWS = 2 * DYNAMIC_CONTOUR_MAX_DEG + 1  # 79

DECA_KEYS = ("static_lmk_faces_idx", "static_lmk_bary_coords", "dynamic_lmk_faces_idx",
             "dynamic_lmk_bary_coords", "full_lmk_faces_idx", "full_lmk_bary_coords")
RINGNET_KEYS = ("lmk_face_idx", "lmk_b_coords")
_EXPECTED = (f"DECA's landmark_embedding.npy (keys {', '.join(DECA_KEYS)}) or RingNet's "
             f"flame_static_embedding.pkl (keys lmk_face_idx ({NUM_STATIC},), "
             f"lmk_b_coords ({NUM_STATIC}, 3))")


def _load_any(p: Path, what: str) -> Any:
    """A .npy (np.save-d object) or a pickle, decided by the file's first bytes."""
    if not p.is_file():
        raise AssetError(f"{p}: file not found (expected {what})")
    with open(p, "rb") as fh:
        head = fh.read(6)
    if head == b"\x93NUMPY":
        return load_npy_object(p, embedding_allowed(), what=what)
    return load_pickle_file(p, embedding_allowed(), what=what)


def _pair(d: dict, fkey: str, bkey: str, shape: tuple[int, ...], p: Path,
          num_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """(faces, bary) with faces reshaped to ``shape`` and bary to ``shape + (3,)``, validated."""
    faces = to_numpy(d[fkey], source=str(p), key=fkey)
    bary = to_numpy(d[bkey], source=str(p), key=bkey)
    n = int(np.prod(shape))
    if faces.size != n or bary.size != 3 * n:
        raise AssetError(f"{p}: '{fkey}'/'{bkey}' have shapes {faces.shape}/{bary.shape}, expected {shape}/"
                         f"{shape + (3,)}")
    faces = faces.reshape(shape)
    bary = np.asarray(bary, dtype=np.float64).reshape(shape + (3,))
    if not np.issubdtype(faces.dtype, np.integer) and not np.all(np.equal(np.mod(faces, 1), 0)):
        raise AssetError(f"{p}: '{fkey}' must hold integer face indices")
    faces = faces.astype(np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= num_faces):
        raise AssetError(f"{p}: '{fkey}' indexes faces {faces.min()}..{faces.max()}, but the mesh has "
                         f"{num_faces} faces (is this embedding for a different topology?)")
    if not np.all(np.isfinite(bary)) or np.abs(bary.sum(-1) - 1.0).max() > 1e-3:
        raise AssetError(f"{p}: '{bkey}' rows must be barycentric coordinates summing to 1")
    return faces, bary


def read_landmark_embedding(path: str | os.PathLike, dynamic_path: str | os.PathLike | None,
                            num_faces: int) -> LandmarkEmbedding:
    """Read DECA's combined file, or RingNet's static file plus (optionally) its dynamic file."""
    p = Path(path)
    d = _load_any(p, _EXPECTED)
    if not isinstance(d, dict):
        raise AssetError(f"{p}: holds a {type(d).__name__}; expected {_EXPECTED}")
    if all(k in d for k in DECA_KEYS):
        sf, sb = _pair(d, DECA_KEYS[0], DECA_KEYS[1], (NUM_STATIC,), p, num_faces)
        df, db = _pair(d, DECA_KEYS[2], DECA_KEYS[3], (NUM_ROWS, NUM_CONTOUR_LANDMARKS), p, num_faces)
        ff, fb = _pair(d, DECA_KEYS[4], DECA_KEYS[5], (NUM_LANDMARKS,), p, num_faces)
        return LandmarkEmbedding(sf, sb, df, db, ff, fb)
    if not all(k in d for k in RINGNET_KEYS):
        raise AssetError(f"{p}: keys {sorted(map(str, d))} match neither format; expected {_EXPECTED}")
    n = to_numpy(d["lmk_face_idx"], source=str(p), key="lmk_face_idx").size
    if n not in (NUM_STATIC, NUM_LANDMARKS):
        raise AssetError(f"{p}: has {n} landmarks; expected {NUM_STATIC} (static) or {NUM_LANDMARKS} (fixed)")
    sf, sb = _pair(d, *RINGNET_KEYS, (n,), p, num_faces)
    if dynamic_path is None:
        if n != NUM_LANDMARKS:
            raise AssetError(f"{p}: holds only the {NUM_STATIC} static landmarks; the 17 contour landmarks "
                             "need RingNet's flame_dynamic_embedding.npy (head.dynamic_embedding / "
                             "--dynamic-embedding)")
        c = NUM_CONTOUR_LANDMARKS
        return LandmarkEmbedding(sf[c:], sb[c:], np.repeat(sf[None, :c], NUM_ROWS, 0),
                                 np.repeat(sb[None, :c], NUM_ROWS, 0), sf, sb)
    df, db = read_dynamic_embedding(dynamic_path, num_faces)
    if n == NUM_LANDMARKS:
        sf, sb, ff, fb = sf[NUM_CONTOUR_LANDMARKS:], sb[NUM_CONTOUR_LANDMARKS:], sf, sb
    else:
        ff, fb = np.concatenate([df[0], sf]), np.concatenate([db[0], sb])
    return LandmarkEmbedding(sf, sb, df, db, ff, fb)


def read_dynamic_embedding(path: str | os.PathLike, num_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """RingNet ``flame_dynamic_embedding.npy`` -> faces (79, 17), bary (79, 17, 3)."""
    p = Path(path)
    what = (f"RingNet flame_dynamic_embedding.npy (dict lmk_face_idx ({NUM_ROWS}, 17), "
            f"lmk_b_coords ({NUM_ROWS}, 17, 3))")
    d = _load_any(p, what)
    if not isinstance(d, dict) or not all(k in d for k in RINGNET_KEYS):
        keys = sorted(map(str, d)) if isinstance(d, dict) else type(d).__name__
        raise AssetError(f"{p}: found {keys}; expected {what}")
    return _pair(d, *RINGNET_KEYS, (NUM_ROWS, NUM_CONTOUR_LANDMARKS), p, num_faces)


def read_masks(path: str | os.PathLike, num_vertices: int) -> dict[str, np.ndarray]:
    """``FLAME_masks.pkl``: region name -> int64 vertex indices, validated against the vertex count."""
    p = Path(path)
    what = "FLAME_masks.pkl (a dict: region name -> vertex index array)"
    d = _load_any(p, what)
    if not isinstance(d, dict) or not d:
        raise AssetError(f"{p}: holds a {type(d).__name__}; expected {what}")
    out: dict[str, np.ndarray] = {}
    for name, idx in d.items():
        a = to_numpy(idx, source=str(p), key=str(name)).reshape(-1)
        if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= num_vertices):
            raise AssetError(f"{p}: region '{name}' must list vertex indices 0..{num_vertices - 1}")
        out[str(name)] = a.astype(np.int64)
    return out


def empty_embedding() -> LandmarkEmbedding:
    """A placeholder with no landmarks (inspection of a model whose embedding is missing)."""
    z = np.zeros((0,), dtype=np.int64)
    return LandmarkEmbedding(z, np.zeros((0, 3)), np.zeros((NUM_ROWS, 0), dtype=np.int64),
                             np.zeros((NUM_ROWS, 0, 3)), z, np.zeros((0, 3)))
