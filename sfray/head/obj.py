"""A small Wavefront OBJ reader for mesh templates with UVs (``head_template.obj``).

Reads ``v``, ``vt`` and ``f`` records only (normals, groups and materials are ignored). Faces may
be ``v``, ``v/vt``, ``v/vt/vn`` or ``v//vn``, with 1-based or negative (relative) indices; polygons
with more than three corners are fan-triangulated. Malformed input raises AssetError naming the file
and the line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfray.errors import AssetError


@dataclass
class ObjMesh:
    """Geometry of an OBJ file: V vertices, T UV vertices, F triangles."""

    vertices: np.ndarray  # (V, 3) float64
    uv_coords: np.ndarray  # (T, 2) float64, OBJ convention (t = 0 at the bottom of the image)
    faces: np.ndarray  # (F, 3) int64, 0-based indices into vertices
    uv_faces: np.ndarray | None  # (F, 3) int64 into uv_coords, None when faces carry no UV indices


def _index(token: str, count: int, path: Path, lineno: int, what: str) -> int:
    try:
        i = int(token)
    except ValueError:
        raise AssetError(f"{path}:{lineno}: bad {what} index '{token}' in a face record") from None
    j = i - 1 if i > 0 else count + i
    if i == 0 or not 0 <= j < count:
        raise AssetError(f"{path}:{lineno}: {what} index {i} is out of range (only {count} defined so far)")
    return j


def read_obj(path: str | os.PathLike) -> ObjMesh:
    """Parse ``path`` into an :class:`ObjMesh`."""
    p = Path(path)
    if not p.is_file():
        raise AssetError(f"{p}: file not found (expected an OBJ mesh with v/vt/f records)")
    verts: list[list[float]] = []
    uvs: list[list[float]] = []
    faces: list[list[int]] = []
    uv_faces: list[list[int]] = []
    face_has_uv: list[bool] = []
    try:
        text = p.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise AssetError(f"{p}: not a text OBJ file ({exc.reason})") from exc
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        tag = parts[0]
        try:
            if tag == "v":
                verts.append([float(x) for x in parts[1:4]])
                if len(verts[-1]) != 3:
                    raise ValueError("a vertex needs x y z")
            elif tag == "vt":
                uvs.append([float(x) for x in parts[1:3]])
                if len(uvs[-1]) != 2:
                    raise ValueError("a UV vertex needs u v")
        except ValueError as exc:
            raise AssetError(f"{p}:{lineno}: malformed '{tag}' record ({exc})") from None
        if tag != "f":
            continue
        corners = parts[1:]
        if len(corners) < 3:
            raise AssetError(f"{p}:{lineno}: a face needs at least 3 corners")
        vi, ti = [], []
        for c in corners:
            fields = c.split("/")
            vi.append(_index(fields[0], len(verts), p, lineno, "vertex"))
            if len(fields) > 1 and fields[1]:
                ti.append(_index(fields[1], len(uvs), p, lineno, "UV"))
        has_uv = len(ti) == len(vi)
        if ti and not has_uv:
            raise AssetError(f"{p}:{lineno}: some corners of this face have UV indices and some do not")
        for k in range(1, len(vi) - 1):  # fan triangulation
            faces.append([vi[0], vi[k], vi[k + 1]])
            uv_faces.append([ti[0], ti[k], ti[k + 1]] if has_uv else [0, 0, 0])
            face_has_uv.append(has_uv)
    if not verts or not faces:
        raise AssetError(f"{p}: no vertices or no faces found (expected an OBJ mesh with v/vt/f records)")
    if any(face_has_uv) and not all(face_has_uv):
        raise AssetError(f"{p}: only some faces carry UV indices; expected v/vt pairs on every face")
    return ObjMesh(
        vertices=np.asarray(verts, dtype=np.float64),
        uv_coords=np.asarray(uvs, dtype=np.float64).reshape(-1, 2),
        faces=np.asarray(faces, dtype=np.int64),
        uv_faces=np.asarray(uv_faces, dtype=np.int64) if all(face_has_uv) else None,
    )
