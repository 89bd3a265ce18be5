"""Assemble the template mesh: skin grid with a cut mouth and an inner-mouth pouch, eyeballs, ears.

Topology. The skin is a (row, column) grid closed at the crown by one pole vertex and open at the
neck cut. Along the mouth slit (a grid row between the mouth corners) the lower lip gets its own
copies of the slit vertices, and a pouch of ``POUCH_RINGS - 1`` extra rows joins the upper-lip edge
to the lower-lip edge behind the lips. The pouch is just more grid rows, so the skin + pouch is one
consistently wound surface whose only boundary is the neck cut, and opening the jaw shows the
pouch instead of a hole. Eyeballs and ears are separate closed shells.

UV layout (OBJ convention, t up): the skin grid fills ``t >= UV_SKIN_BOTTOM`` with ``u = column / N``
(seam at the back of the head, the face in the middle, the subject's right on the image left) and
``t`` by row; the bottom strip holds round islands for the right and left eyeball, the pouch, and
the right and left ear, in that order from left to right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sfray.head.procedural import anatomy as A
from sfray.head.procedural import parts
from sfray.head.procedural import surface as S
from sfray.head.procedural.grid import HeadGrid

UV_SKIN_BOTTOM = 0.25
#: Island placement in the bottom strip: (u centre, t centre, radius) of each round island.
UV_ISLANDS = {
    "right_eyeball": (0.115, 0.12, 0.105),
    "left_eyeball": (0.335, 0.12, 0.105),
    "right_ear": (0.665, 0.12, 0.105),
    "left_ear": (0.885, 0.12, 0.105),
}
#: The pouch island is a rectangle (u0, u1, t0, t1).
UV_POUCH = (0.455, 0.545, 0.02, 0.22)

#: Part codes of :attr:`ProceduralMesh.part`.
SKIN, POUCH, LEFT_EYEBALL, RIGHT_EYEBALL, LEFT_EAR, RIGHT_EAR = range(6)


@dataclass
class ProceduralMesh:
    """The assembled template and the index bookkeeping later build steps need.

    ``grid_ids`` (R, N) vertex id of each skin grid node (row 0 is all the crown pole);
    ``slit_cols`` (M,) grid columns of the slit interior; ``lower_lip_ids`` (M,) the lower-lip
    copies of the slit vertices ``grid_ids[mouth_row, slit_cols]``; ``pouch_ids`` (P - 1, M) with
    ``pouch_alpha`` (P - 1,) the angle around the pouch (0 at the upper lip, 2 pi at the lower);
    ``part`` (V,) part code per vertex; ``shells`` the eyeball and ear shells by part code.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv_coords: np.ndarray
    uv_faces: np.ndarray
    grid: HeadGrid
    grid_ids: np.ndarray
    slit_cols: np.ndarray
    lower_lip_ids: np.ndarray
    pouch_ids: np.ndarray
    pouch_alpha: np.ndarray
    part: np.ndarray
    shells: dict[int, parts.Shell] = field(default_factory=dict)

    @property
    def mouth_row(self) -> int:
        return self.grid.mouth_row

    @property
    def corner_ids(self) -> np.ndarray:
        """(2,) vertex ids of the mouth corners: subject's right (-x) then left (+x)."""
        n = self.grid.n_cols
        kc = A.MOUTH_CORNER_COLUMNS
        return self.grid_ids[self.mouth_row, [n // 2 - kc, n // 2 + kc]]


def pouch_points(grid: HeadGrid, cols: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Pouch positions (P - 1, M, 3): a tear-drop tube behind the slit, shrinking to the corners.

    The cross-section leaves the slit straight backwards (so the lip edges stay crisp), rises to
    the palate, reaches ``POUCH_DEPTH`` behind the lips and returns along the floor.
    """
    slit = grid.points[grid.mouth_row, cols]
    prof = np.sqrt(np.clip(1.0 - (grid.phi[cols] / S.mouth_corner_phi()) ** 2, 0.0, None))
    depth = 0.5 * A.POUCH_DEPTH * (0.35 + 0.65 * prof)
    height = 0.5 * A.POUCH_HEIGHT * prof ** 0.5
    a = alpha[:, None]
    out = np.broadcast_to(slit, (alpha.shape[0],) + slit.shape).copy()
    out[..., 1] += height * np.sin(a) * (1.0 - np.cos(a)) / 1.3
    out[..., 2] -= depth * (1.0 - np.cos(a))
    return out


def _quads_to_faces(vid: np.ndarray, uvid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate consecutive rows of the (S, N) vertex table and (S, N + 1) UV table.

    Quads on the subject's left (phi > 0) are split along one diagonal and their mirror images
    along the other, so the triangulation is mirror-symmetric. Faces with a repeated vertex
    (pole fans, collapsed pouch columns) are dropped.
    """
    n = vid.shape[1]
    k = np.arange(n)
    tl, tr = vid[:-1, k], vid[:-1, (k + 1) % n]
    bl, br = vid[1:, k], vid[1:, (k + 1) % n]
    utl, utr, ubl, ubr = uvid[:-1, :-1], uvid[:-1, 1:], uvid[1:, :-1], uvid[1:, 1:]
    left_half = np.broadcast_to(k >= n // 2, tl.shape)
    f1 = np.where(left_half[..., None], np.stack([tl, bl, br], -1), np.stack([tl, bl, tr], -1))
    f2 = np.where(left_half[..., None], np.stack([tl, br, tr], -1), np.stack([tr, bl, br], -1))
    u1 = np.where(left_half[..., None], np.stack([utl, ubl, ubr], -1), np.stack([utl, ubl, utr], -1))
    u2 = np.where(left_half[..., None], np.stack([utl, ubr, utr], -1), np.stack([utr, ubl, ubr], -1))
    faces = np.stack([f1, f2], axis=2).reshape(-1, 3)
    uv_faces = np.stack([u1, u2], axis=2).reshape(-1, 3)
    ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return faces[ok], uv_faces[ok]


def build_mesh(grid: HeadGrid) -> ProceduralMesh:
    """Vertices, faces and UVs of the template (see the module docstring for the layout)."""
    rows, n = grid.n_rows, grid.n_cols
    m, kc, p = grid.mouth_row, A.MOUTH_CORNER_COLUMNS, A.POUCH_RINGS
    cols = np.arange(n // 2 - kc + 1, n // 2 + kc)
    corners = np.array([n // 2 - kc, n // 2 + kc])
    n_slit = cols.shape[0]

    grid_ids = np.zeros((rows, n), np.int64)
    grid_ids[1:] = 1 + np.arange((rows - 1) * n).reshape(rows - 1, n)
    n_grid = 1 + (rows - 1) * n
    lower_ids = n_grid + np.arange(n_slit)
    pouch_ids = n_grid + n_slit + np.arange((p - 1) * n_slit).reshape(p - 1, n_slit)
    alpha = 2.0 * np.pi * np.arange(1, p) / p
    skin = np.concatenate([grid.points[:1, 0], grid.points[1:].reshape(-1, 3)])
    verts = [skin, grid.points[m, cols], pouch_points(grid, cols, alpha).reshape(-1, 3)]
    part = [np.full(n_grid + n_slit, SKIN), np.full(pouch_ids.size, POUCH)]

    # UV ids: skin grid (rows x (n + 1)), then the pouch island (p + 1 rings x slit + 2 corners).
    skin_uv_ids = np.arange(rows * (n + 1)).reshape(rows, n + 1)
    su, st = np.meshgrid(np.arange(n + 1) / n, 1.0 - (1.0 - UV_SKIN_BOTTOM) * np.arange(rows) / (rows - 1))
    uv = [np.stack([su, st], -1).reshape(-1, 2)]
    n_uv = rows * (n + 1)
    pouch_uv_ids = n_uv + np.arange((p + 1) * n_slit).reshape(p + 1, n_slit)
    corner_uv = n_uv + (p + 1) * n_slit + np.arange(2)
    u0, u1, t0, t1 = UV_POUCH
    pu, pt = np.meshgrid(u0 + (u1 - u0) * np.arange(1, n_slit + 1) / (n_slit + 1),
                         t1 - (t1 - t0) * np.arange(p + 1) / p)
    uv += [np.stack([pu, pt], -1).reshape(-1, 2), np.array([[u0, 0.5 * (t0 + t1)], [u1, 0.5 * (t0 + t1)]])]

    def vrow(inner: np.ndarray | None) -> np.ndarray:
        r = grid_ids[m].copy()
        if inner is not None:
            r[cols] = inner
        return r

    def urow(inner: np.ndarray) -> np.ndarray:
        r = skin_uv_ids[m].copy()
        r[cols] = inner
        r[corners] = corner_uv
        r[n] = r[0]
        return r

    vseq = [grid_ids[i] for i in range(m + 1)] + [vrow(None)]
    useq = [skin_uv_ids[i] for i in range(m + 1)] + [urow(pouch_uv_ids[0])]
    for r in range(1, p):
        vseq.append(vrow(pouch_ids[r - 1]))
        useq.append(urow(pouch_uv_ids[r]))
    vseq += [vrow(lower_ids), vrow(lower_ids)]
    lower_skin_uv = skin_uv_ids[m].copy()
    useq += [urow(pouch_uv_ids[p]), lower_skin_uv]
    vseq += [grid_ids[i] for i in range(m + 1, rows)]
    useq += [skin_uv_ids[i] for i in range(m + 1, rows)]
    faces, uv_faces = _quads_to_faces(np.stack(vseq), np.stack(useq))
    face_list, uv_face_list = [faces], [uv_faces]

    shells = {
        LEFT_EYEBALL: parts.eyeball(S.eye_centres()[0]),
        RIGHT_EYEBALL: parts.eyeball(S.eye_centres()[1]),
        LEFT_EAR: parts.ear(0),
        RIGHT_EAR: parts.ear(1),
    }
    island = {LEFT_EYEBALL: "left_eyeball", RIGHT_EYEBALL: "right_eyeball", LEFT_EAR: "left_ear",
              RIGHT_EAR: "right_ear"}
    n_v = sum(v.shape[0] for v in verts)
    n_uv = sum(u.shape[0] for u in uv)
    for code, shell in shells.items():
        cu, ct, rad = UV_ISLANDS[island[code]]
        verts.append(shell.vertices)
        part.append(np.full(shell.vertices.shape[0], code))
        face_list.append(shell.faces + n_v)
        uv_face_list.append(shell.uv_faces + n_uv)
        uv.append(np.array([cu, ct]) + rad * shell.uv)
        n_v += shell.vertices.shape[0]
        n_uv += shell.uv.shape[0]

    return ProceduralMesh(
        vertices=np.concatenate(verts),
        faces=np.concatenate(face_list).astype(np.int64),
        uv_coords=np.concatenate(uv),
        uv_faces=np.concatenate(uv_face_list).astype(np.int64),
        grid=grid,
        grid_ids=grid_ids,
        slit_cols=cols,
        lower_lip_ids=lower_ids,
        pouch_ids=pouch_ids,
        pouch_alpha=alpha,
        part=np.concatenate(part),
        shells=shells,
    )
