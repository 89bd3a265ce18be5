"""Builders of FLAME-format files written the way the real ones are, with random but plausible content.

Nothing here is FLAME data. :func:`write_flame_files` (used by the session fixture in conftest.py) writes:

* ``generic_model.pkl``: FLAME 2020 layout, pickle protocol 2, 5023 vertices, 9976 faces (uint32),
  ``shapedirs`` (5023, 3, 400) pickled as a ``chumpy.ch.Ch`` object through a stand-in class that
  is registered in ``sys.modules`` only while writing, ``J_regressor`` a scipy csc matrix,
  ``kintree_table`` uint32 with the root's parent 2**32-1, plus ``J``/``bs_style``/``bs_type`` extras;
* ``flame2023.pkl``: the same arrays as plain ndarrays (dense regressor), as converted files have;
* RingNet ``flame_static_embedding.pkl`` (a hand-written Python-2 pickle) and
  ``flame_dynamic_embedding.npy`` (a protocol-2 pickle in a .npy),
  DECA ``landmark_embedding.npy`` (``np.save`` of a dict whose dynamic entries are torch tensors);
* ``head_template.obj`` (5023 v, 5118 vt, 9976 f as v/vt pairs), ``FLAME_masks.pkl`` and a UV label
  map that is a JPEG saved under a .png name. ``FLAME_masks.pkl`` is a Python-2 pickle too.

The skinning weights are regional so that tests can reason about them: jaw-weighted vertices are
the only ones the jaw's weights and pose correctives touch.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.spatial import Delaunay

V, F, T = 5023, 9976, 5118
J = 5
N_ROWS, N_CONTOUR, N_STATIC = 79, 17, 51


class FakeCh:
    """Pickles like ``chumpy.ch.Ch``: the class global ``chumpy.ch.Ch`` and a state dict with ``'x'``."""

    def __init__(self, x: np.ndarray | None, extra: dict | None = None):
        self.x = x
        self.extra = extra or {}

    def __getstate__(self) -> dict:
        state = {"_dirty_vars": set(), "_itr": None, "_depth": 0}
        if self.x is not None:
            state["x"] = self.x
        state.update(self.extra)
        return state


def dump_with_fake_chumpy(obj: object, fh, protocol: int = 2, class_name: str = "Ch",
                          module: str = "chumpy.ch") -> None:
    """Pickle ``obj`` with FakeCh posing as ``module.class_name``; sys.modules is restored afterwards."""
    saved = {k: sys.modules.get(k) for k in ("chumpy", module)}
    pkg, mod = types.ModuleType("chumpy"), types.ModuleType(module)
    old = (FakeCh.__module__, FakeCh.__qualname__, FakeCh.__name__)
    FakeCh.__module__, FakeCh.__qualname__, FakeCh.__name__ = module, class_name, class_name
    setattr(mod, class_name, FakeCh)
    sys.modules["chumpy"], sys.modules[module] = pkg, mod
    try:
        pickle.dump(obj, fh, protocol=protocol)
    finally:
        FakeCh.__module__, FakeCh.__qualname__, FakeCh.__name__ = old
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def py2_pickle(arrays: dict[str, np.ndarray]) -> bytes:
    """Hand-written protocol-2 pickle of a dict of little-endian arrays as Python 2 writes it.

    Python 2 stores keys, dtype codes and raw array data as ``str`` (BINSTRING opcodes), which
    Python 3 can only read with ``encoding='latin1'``; Python 3's own pickler cannot produce this.
    """
    def string(b: bytes) -> bytes:
        return b"T" + struct.pack("<i", len(b)) + b

    def integer(i: int) -> bytes:
        return b"J" + struct.pack("<i", i)

    out = [b"\x80\x02}("]
    for key, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        code = {"i": b"i", "u": b"u", "f": b"f"}[arr.dtype.kind] + str(arr.dtype.itemsize).encode()
        out += [string(key.encode()),
                b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n", integer(0), b"\x85", string(b"b"),
                b"\x87R(", integer(1), b"(", *[integer(d) for d in arr.shape], b"t",
                b"cnumpy\ndtype\n", string(code), integer(0), integer(1), b"\x87R(", integer(3), string(b"<"),
                b"NNN", integer(-1), integer(-1), integer(0), b"tb\x89",
                string(arr.astype(arr.dtype.newbyteorder("<")).tobytes()), b"tb"]
    out.append(b"u.")
    return b"".join(out)


def save_npy_object(path: Path, obj: object, protocol: int = 2) -> None:
    """An ``np.save``-style .npy of a 0-d object array, with a chosen pickle protocol (py2-era files)."""
    arr = np.empty((), dtype=object)
    arr[()] = obj
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(arr, fh, protocol=protocol)


@dataclass
class FlameTruth:
    """The arrays the fixture wrote, as plain float64/int64 numpy."""

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray  # (V, 3, 400)
    posedirs: np.ndarray
    j_regressor: np.ndarray
    parents: np.ndarray
    weights: np.ndarray
    regions: dict
    static_faces: np.ndarray
    static_bary: np.ndarray
    dynamic_faces: np.ndarray
    dynamic_bary: np.ndarray
    full_faces: np.ndarray
    full_bary: np.ndarray
    uv_coords: np.ndarray
    uv_faces: np.ndarray


@dataclass
class FlameFiles:
    root: Path
    model: Path
    model_2023: Path
    static: Path
    dynamic: Path
    deca: Path
    obj: Path
    masks: Path
    label_map: Path
    truth: FlameTruth


def _dirichlet(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.dirichlet(np.ones(3), size=shape)


def build_truth(seed: int = 0) -> FlameTruth:
    rng = np.random.default_rng(seed)
    # points on a head-sized ellipsoid (metres), y up, face towards +z
    d = rng.normal(size=(V, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    v = d * np.array([0.08, 0.11, 0.09]) + np.array([0.0, -0.02, 0.0])
    eye_l = np.arange(0, 60)
    eye_r = np.arange(60, 120)
    v[eye_l] = np.array([0.03, 0.03, 0.06]) + 0.012 * d[eye_l]
    v[eye_r] = np.array([-0.03, 0.03, 0.06]) + 0.012 * d[eye_r]
    rest = np.arange(120, V)
    neck = rest[v[rest, 1] < -0.1]
    jaw = rest[(v[rest, 1] < -0.04) & (v[rest, 1] >= -0.1) & (v[rest, 2] > 0.0)]
    head = np.setdiff1d(rest, np.concatenate([neck, jaw]))

    w = np.zeros((V, J))
    w[eye_l, 3] = 1.0
    w[eye_r, 4] = 1.0
    a = rng.uniform(0.2, 0.8, size=neck.size)
    w[neck, 0], w[neck, 1] = a, 1.0 - a
    w[head, 1] = 1.0
    b = rng.uniform(0.3, 1.0, size=jaw.size)
    w[jaw, 2], w[jaw, 1] = b, 1.0 - b

    jreg = np.zeros((J, V))
    for j, idx in enumerate([neck, head, jaw, eye_l, eye_r]):
        pick = rng.choice(idx, size=min(12, idx.size), replace=False)
        jreg[j, pick] = rng.dirichlet(np.ones(pick.size))

    posedirs = rng.normal(scale=2e-3, size=(V, 3, 9 * (J - 1)))
    for j in range(1, J):  # correctives of joint j only where joint j has weight
        posedirs[w[:, j] == 0, :, 9 * (j - 1): 9 * j] = 0.0

    # UV layout: one point per vertex in the unit square, triangulated (Delaunay), so UV triangles are
    # small and disjoint like a real atlas; the 95 extra UV vertices are seam duplicates.
    uv = np.empty((T, 2))
    uv[:V] = rng.uniform(0.02, 0.98, size=(V, 2))
    tri = Delaunay(uv[:V]).simplices
    assert tri.shape[0] >= F
    faces = tri[:F].astype(np.int64)
    uv_faces = faces.copy()
    seam = rng.choice(F, size=T - V, replace=False)
    uv[V:] = uv[faces[seam, 0]]
    uv_faces[seam, 0] = V + np.arange(T - V)

    regions = {"left_eyeball": eye_l, "right_eyeball": eye_r, "neck": neck, "scalp": head[v[head, 2] <= 0],
               "face": head[v[head, 2] > 0], "lips": jaw[: jaw.size // 2], "boundary": neck[:20]}

    return FlameTruth(
        v_template=v, faces=faces, shapedirs=rng.normal(scale=1e-3, size=(V, 3, 400)), posedirs=posedirs,
        j_regressor=jreg, parents=np.array([-1, 0, 1, 1, 1]), weights=w, regions=regions,
        static_faces=rng.integers(0, F, size=N_STATIC), static_bary=_dirichlet(rng, (N_STATIC,)),
        dynamic_faces=rng.integers(0, F, size=(N_ROWS, N_CONTOUR)),
        dynamic_bary=_dirichlet(rng, (N_ROWS, N_CONTOUR)),
        full_faces=rng.integers(0, F, size=68), full_bary=_dirichlet(rng, (68,)),
        uv_coords=uv, uv_faces=uv_faces,
    )


def model_dict(t: FlameTruth, chumpy: bool = True, sparse: bool = True) -> dict:
    kintree = np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32)
    return {
        "f": t.faces.astype(np.uint32),
        "v_template": t.v_template,
        "shapedirs": FakeCh(t.shapedirs) if chumpy else t.shapedirs,
        "posedirs": t.posedirs,
        "J_regressor": sp.csc_matrix(t.j_regressor) if sparse else t.j_regressor,
        "kintree_table": kintree,
        "weights": t.weights,
        "J": t.j_regressor @ t.v_template,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def write_obj(path: Path, t: FlameTruth) -> None:
    lines = ["# test template"]
    lines += [f"v {x:.9f} {y:.9f} {z:.9f}" for x, y, z in t.v_template]
    lines += [f"vt {u:.9f} {w:.9f}" for u, w in t.uv_coords]
    lines += [f"f {a + 1}/{ta + 1} {b + 1}/{tb + 1} {c + 1}/{tc + 1}"
              for (a, b, c), (ta, tb, tc) in zip(t.faces, t.uv_faces)]
    path.write_text("\n".join(lines) + "\n")


def label_map_image(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) colour image of horizontal bands and its (H, W) expected ids (band interiors)."""
    from sfray.conventions import BACKGROUND_ID, SEG_CLASSES, SEG_UNUSED_COLORS

    colors = [c.color for c in SEG_CLASSES[:19]] + list(SEG_UNUSED_COLORS)
    ids = [c.id for c in SEG_CLASSES[:19]] + [BACKGROUND_ID] * len(SEG_UNUSED_COLORS)
    band = 8
    h = band * len(colors)
    img = np.zeros((h, size, 3), dtype=np.uint8)
    lab = np.zeros((h, size), dtype=np.uint8)
    for k, (c, i) in enumerate(zip(colors, ids)):
        img[k * band: (k + 1) * band] = c
        lab[k * band: (k + 1) * band] = i
    return img, lab


def write_jpeg_as_png(path: Path, img: np.ndarray, quality: int = 85) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    path.write_bytes(buf.getvalue())


def write_flame_files(root: Path) -> FlameFiles:
    """Write every fixture file into ``root`` (about 1 s, ~150 MB)."""
    t = build_truth()
    model = root / "generic_model.pkl"
    with open(model, "wb") as fh:
        dump_with_fake_chumpy(model_dict(t), fh, protocol=2)
    model_2023 = root / "flame2023.pkl"
    with open(model_2023, "wb") as fh:
        pickle.dump(model_dict(t, chumpy=False, sparse=False), fh, protocol=4)

    static = root / "flame_static_embedding.pkl"
    static.write_bytes(py2_pickle({"lmk_face_idx": t.static_faces.astype(np.uint32),
                                   "lmk_b_coords": t.static_bary}))
    dynamic = root / "flame_dynamic_embedding.npy"
    save_npy_object(dynamic, {"lmk_face_idx": t.dynamic_faces.astype(np.int64),
                              "lmk_b_coords": t.dynamic_bary})
    deca = root / "landmark_embedding.npy"
    np.save(deca, {
        "static_lmk_faces_idx": t.static_faces.astype(np.int64),
        "static_lmk_bary_coords": t.static_bary,
        "dynamic_lmk_faces_idx": torch.from_numpy(t.dynamic_faces.astype(np.int64)),
        "dynamic_lmk_bary_coords": torch.from_numpy(t.dynamic_bary.astype(np.float32)),
        "full_lmk_faces_idx": t.full_faces.astype(np.int64)[None],
        "full_lmk_bary_coords": t.full_bary[None],
    }, allow_pickle=True)

    obj = root / "head_template.obj"
    write_obj(obj, t)
    masks = root / "FLAME_masks.pkl"
    masks.write_bytes(py2_pickle({k: np.asarray(v, dtype=np.int64) for k, v in t.regions.items()}))
    label_map = root / "flame_seg_tex.png"
    write_jpeg_as_png(label_map, label_map_image()[0])
    return FlameFiles(root, model, model_2023, static, dynamic, deca, obj, masks, label_map, t)
