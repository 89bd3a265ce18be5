"""Read and validate a FLAME ``generic_model.pkl`` (FLAME 2020 or 2023 layout) without chumpy.

Both layouts hold the same keys; what varies is the container of the arrays. FLAME 2020 (and
2023) files written from chumpy hold ``shapedirs`` (and sometimes more) as chumpy objects, files
re-saved by conversion scripts hold plain ndarrays, and ``J_regressor`` may be a scipy sparse
matrix. All of these become float64 ndarrays here; every array is shape-checked, and anything else
(e.g. an SMPL body model) is rejected with one message naming the file and the expected layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sfray.conventions import (
    FLAME_MAX_EXPRESSION,
    FLAME_MAX_SHAPE,
    FLAME_NUM_FACES,
    FLAME_NUM_VERTICES,
    JOINT_NAMES,
)
from sfray.errors import AssetError
from sfray.head.flame_pickle import ChumpyStandIn, SparseStandIn, load_pickle_file, model_allowed, to_numpy

NUM_JOINTS = len(JOINT_NAMES)
EXPECTED_LAYOUT = (
    f"a FLAME generic_model.pkl: a dict with v_template ({FLAME_NUM_VERTICES}, 3), f ({FLAME_NUM_FACES}, 3), "
    f"shapedirs ({FLAME_NUM_VERTICES}, 3, {FLAME_MAX_SHAPE}+E) with E <= {FLAME_MAX_EXPRESSION} expression "
    f"components, posedirs ({FLAME_NUM_VERTICES}, 3, {9 * (NUM_JOINTS - 1)}), J_regressor ({NUM_JOINTS}, "
    f"{FLAME_NUM_VERTICES}), kintree_table (2, {NUM_JOINTS}), weights ({FLAME_NUM_VERTICES}, {NUM_JOINTS})"
)
REQUIRED_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights")
#: Vertex counts of other SMPL-family models, to say what a wrong file probably is.
_OTHER_MODELS = {6890: "an SMPL/SMPL-H body model", 10475: "an SMPL-X body model", 778: "a MANO hand model"}


@dataclass
class FlameModelArrays:
    """The arrays of a FLAME model file, float64 (faces, parents int64)."""

    path: str
    v_template: np.ndarray  # (V, 3) metres
    faces: np.ndarray  # (F, 3)
    shapedirs: np.ndarray  # (V, 3, 300) identity
    exprdirs: np.ndarray  # (V, 3, E) expression
    posedirs: np.ndarray  # (V, 3, 36)
    j_regressor: np.ndarray  # (J, V) dense
    parents: np.ndarray  # (J,) int64, -1 for the root
    weights: np.ndarray  # (V, J)
    containers: dict[str, str]  # key -> how it was stored (ndarray, chumpy.ch.Ch, scipy.sparse...)


def _container(obj: Any) -> str:
    if isinstance(obj, (ChumpyStandIn, SparseStandIn)):
        return obj.pickled_name
    return type(obj).__name__


def _bad(path: Path, what: str) -> AssetError:
    return AssetError(f"{path}: {what}; expected {EXPECTED_LAYOUT}")


def _parents(kintree: np.ndarray, path: Path) -> np.ndarray:
    """Parent column indices from a (2, J) kintree table (row 0 parent ids, row 1 joint ids)."""
    ids = [int(i) for i in kintree[1]]
    col = {j: c for c, j in enumerate(ids)}
    parents = np.full(len(ids), -1, dtype=np.int64)
    for c in range(1, len(ids)):
        pid = int(kintree[0, c])
        if pid not in col or not col[pid] < c:
            raise _bad(path, f"kintree_table column {c} has parent id {pid}, which is not an earlier joint")
        parents[c] = col[pid]
    return parents


def read_flame_model(path: str | os.PathLike) -> FlameModelArrays:
    """Load ``generic_model.pkl`` through the restricted unpickler and check every array's shape."""
    p = Path(path)
    raw = load_pickle_file(p, model_allowed(), what="FLAME model (generic_model.pkl)")
    if not isinstance(raw, dict):
        raise _bad(p, f"the pickle holds a {type(raw).__name__}, not a dict")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise _bad(p, f"missing key(s) {missing} (found {sorted(map(str, raw))[:12]})")
    containers = {k: _container(raw[k]) for k in REQUIRED_KEYS}
    arr = {k: to_numpy(raw[k], source=str(p), key=k) for k in REQUIRED_KEYS}

    v = arr["v_template"]
    if v.ndim != 2 or v.shape[1] != 3:
        raise _bad(p, f"v_template has shape {v.shape}")
    nv = v.shape[0]
    if nv != FLAME_NUM_VERTICES:
        guess = _OTHER_MODELS.get(nv)
        hint = f" (this looks like {guess}, not FLAME)" if guess else ""
        raise _bad(p, f"v_template has {nv} vertices{hint}")

    checks = {
        "f": (FLAME_NUM_FACES, 3),
        "posedirs": (nv, 3, 9 * (NUM_JOINTS - 1)),
        "J_regressor": (NUM_JOINTS, nv),
        "kintree_table": (2, NUM_JOINTS),
        "weights": (nv, NUM_JOINTS),
    }
    for key, shape in checks.items():
        if arr[key].shape != shape:
            raise _bad(p, f"'{key}' has shape {arr[key].shape}, expected {shape}")
    sd = arr["shapedirs"]
    max_dirs = FLAME_MAX_SHAPE + FLAME_MAX_EXPRESSION
    if sd.ndim != 3 or sd.shape[:2] != (nv, 3) or not FLAME_MAX_SHAPE < sd.shape[2] <= max_dirs:
        raise _bad(p, f"'shapedirs' has shape {sd.shape}")

    faces = arr["f"]
    if not np.issubdtype(faces.dtype, np.integer) or faces.min() < 0 or faces.max() >= nv:
        raise _bad(p, f"'f' must hold vertex indices 0..{nv - 1} (got {faces.dtype}, range "
                      f"{faces.min()}..{faces.max()})")
    float_keys = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights")
    floats = {k: np.asarray(arr[k], dtype=np.float64) for k in float_keys}
    for k, a in floats.items():
        if not np.all(np.isfinite(a)):
            raise _bad(p, f"'{k}' contains NaN or infinite values")
    wsum = floats["weights"].sum(axis=1)
    if np.abs(wsum - 1.0).max() > 1e-3:
        raise _bad(p, f"skinning 'weights' rows must sum to 1 (found sums in "
                      f"{wsum.min():.4f}..{wsum.max():.4f})")
    return FlameModelArrays(
        path=str(p),
        v_template=floats["v_template"],
        faces=faces.astype(np.int64),
        shapedirs=floats["shapedirs"][:, :, :FLAME_MAX_SHAPE],
        exprdirs=floats["shapedirs"][:, :, FLAME_MAX_SHAPE:],
        posedirs=floats["posedirs"],
        j_regressor=floats["J_regressor"],
        parents=_parents(np.asarray(arr["kintree_table"]).astype(np.int64), p),
        weights=floats["weights"],
        containers=containers,
    )
