"""The iBUG-68 landmark embedding of the template (face index + barycentric per point).

* Static points (iBUG 17..67) are frontal targets placed from the template's own anatomy (brow
  line, lid margins, nose profile, lip borders) and dropped onto the skin along -z, so each sits
  where an annotator looking at the face would click. Mouth corners are the slit's corner vertices;
  the inner-lip points lie on the slit edges, upper points on upper-lip faces and lower points on
  lower-lip faces, so opening the jaw separates them.
* Contour points (iBUG 0..16) are occluding-contour points: along a fixed path of skin vertices
  per point, aimed from the face centre at where annotators put that point on a frontal face
  (cheek edge level with the eyes down to the chin), the point is where the surface turns away
  from an eye at sfray's camera distance (the outline a real camera sees, in front of the
  orthographic one). Where the lower jaw runs into the neck without such a fold (seen from the
  front) the point is the jaw line, the face / neck border. Each row of the dynamic table
  recomputes the points of the side turned away from the camera for that head yaw; the other
  side keeps the frontal points, as annotators do.

The static points are placed on the design-space mesh (frontal drops survive the vertical
proportion warp); the contour is found on the final (warped) template, since it depends on the
final surface normals.
"""

from __future__ import annotations

import numpy as np

from sfray.conventions import (
    DEFAULT_CAMERA_RADIUS,
    DYNAMIC_CONTOUR_MAX_DEG,
    NUM_CONTOUR_LANDMARKS,
    ORTH_SCALE,
    SEG_ID,
)
from sfray.head.assets import LandmarkEmbedding
from sfray.head.procedural import anatomy as A
from sfray.head.procedural import surface as S
from sfray.head.procedural.labels import brow_line
from sfray.head.procedural.mesh import SKIN, ProceduralMesh

#: Distance (head-model metres) of the eye the contours are seen from: sfray's default camera
#: radius (generator world) in head units. Contours are silhouettes seen from a real camera, which
#: sit in front of the orthographic ones (a camera a metre away sees the cheek edge, not the
#: widest point of the head behind it).
_EYE_DISTANCE = DEFAULT_CAMERA_RADIUS / (ORTH_SCALE / 2.0)
#: Outward offset (metres) of eye-margin targets, so the frontal ray lands on the lid, not behind it.
_LID_OFFSET = 0.0005


def row_yaw_degrees(row: int) -> int:
    """Head yaw (degrees, positive turns the face towards +x) that a dynamic-table row stands for.

    The inverse of ``sfray.head.layer.HeadModel.contour_rows``: the table is indexed by the negated
    head yaw y (FLAME's convention), rows 0..39 for y = 0..39 and rows 40..78 for y = -1..-39.
    """
    m = DYNAMIC_CONTOUR_MAX_DEG
    table_yaw = row if row <= m else m - row
    return -table_yaw


# ---------------------------------------------------------------------------------------------
# geometry helpers
# ---------------------------------------------------------------------------------------------


def skin_faces(mesh: ProceduralMesh) -> np.ndarray:
    """Indices of the faces whose three vertices are skin (not pouch, eyeball or ear)."""
    return np.flatnonzero((mesh.part[mesh.faces] == SKIN).all(axis=1))


def drop_onto_skin(mesh: ProceduralMesh, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Front-most skin hit of rays along -z through frontal positions ``xy`` (n, 2).

    Returns face indices (n,) and barycentric coordinates (n, 3) (Moller-Trumbore, vectorised).
    """
    fids = skin_faces(mesh)
    tri = mesh.vertices[mesh.faces[fids]]  # (F, 3, 3)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    d = np.array([0.0, 0.0, -1.0])
    faces, barys = [], []
    for x, y in xy:
        o = np.array([x, y, 1.0])
        pv = np.cross(d, e2)
        det = np.einsum("fi,fi->f", e1, pv)
        ok = np.abs(det) > 1e-14
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        tv = o - tri[:, 0]
        u = np.einsum("fi,fi->f", tv, pv) * inv
        qv = np.cross(tv, e1)
        v = np.einsum("i,fi->f", d, qv) * inv
        t = np.einsum("fi,fi->f", e2, qv) * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
        if not hit.any():
            raise AssertionError(f"landmark target ({x:.4f}, {y:.4f}) misses the skin")
        k = np.flatnonzero(hit)[np.argmin(t[hit])]
        faces.append(fids[k])
        barys.append([1.0 - u[k] - v[k], u[k], v[k]])
    return np.asarray(faces, np.int64), np.asarray(barys)


def vertex_normals(mesh: ProceduralMesh) -> np.ndarray:
    """(V, 3) area-weighted unit normals of the template."""
    v, f = mesh.vertices, mesh.faces
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / (np.linalg.norm(n, axis=1, keepdims=True) + 1e-18)


def _edge_face(mesh: ProceduralMesh) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = {}
    for fi in skin_faces(mesh):
        f = mesh.faces[fi]
        for k in range(3):
            out.setdefault((int(f[k]), int(f[(k + 1) % 3])), int(fi))
    return out


def _on_edge(mesh: ProceduralMesh, edges: dict, a: int, b: int, s: float) -> tuple[int, np.ndarray]:
    """Face and barycentrics of the point ``(1 - s) * v_a + s * v_b`` on edge (a, b)."""
    fi = edges.get((a, b), edges.get((b, a)))
    if fi is None:
        raise AssertionError(f"vertices {a} and {b} share no skin face")
    bary = np.zeros(3)
    f = mesh.faces[fi]
    bary[int(np.flatnonzero(f == a)[0])] = 1.0 - s
    bary[int(np.flatnonzero(f == b)[0])] = s
    return fi, bary


# ---------------------------------------------------------------------------------------------
# static landmarks (iBUG 17..67)
# ---------------------------------------------------------------------------------------------


def _lid_point(u: float, upper: bool, side: float) -> tuple[float, float]:
    """Frontal position on the lid margin; ``u`` in [-1, 1] from the inner to the outer corner."""
    ex, ey = A.EYE_CENTRE[0], A.EYE_CENTRE[1]
    inner = max(1.0 - u * u, 0.0) ** 0.75
    y = ey + 0.5 * A.EYE_TILT * u
    y += (A.EYE_UPPER_LID * inner + _LID_OFFSET) if upper else -(A.EYE_LOWER_LID * inner + _LID_OFFSET)
    x = ex + A.EYE_HALF_WIDTH * u
    if abs(u) >= 1.0:
        x += _LID_OFFSET * np.sign(u)
    return side * x, y


def _midline_profile(mesh: ProceduralMesh) -> tuple[float, float]:
    """(y of the nose tip, y of the subnasale) on the template's midline column."""
    col = mesh.grid_ids[:, mesh.grid.n_cols // 2]
    p = mesh.vertices[col]
    tip = int(np.argmax(p[: mesh.mouth_row, 2]))
    sub = tip + int(np.argmin(p[tip: mesh.mouth_row, 2]))
    return float(p[tip, 1]), float(p[sub, 1])


def _lip_border(phi: np.ndarray, upper: bool) -> np.ndarray:
    """Template points (n, 3) on the upper/lower vermilion border at azimuths ``phi`` (n,)."""
    q = np.clip(1.0 - (phi / S.mouth_corner_phi()) ** 2, 0.0, None)
    dt = -(0.066 * np.sqrt(q) + 0.006) if upper else (0.080 * np.sqrt(q) + 0.006)
    return S.skin_points(A.THETA_MOUTH + dt, phi)


def static_embedding(mesh: ProceduralMesh) -> tuple[np.ndarray, np.ndarray]:
    """Faces (51,) and barycentrics (51, 3) of iBUG points 17..67."""
    targets: list[tuple[float, float]] = []
    # brows 17-21 (subject's right, outer -> inner), 22-26 (left, inner -> outer)
    brow_x = np.array([0.052, 0.044, 0.035, 0.026, 0.016])
    brow_y = brow_line(brow_x)
    targets += [(-x, y) for x, y in zip(brow_x, brow_y)]
    targets += [(x, y) for x, y in zip(brow_x[::-1], brow_y[::-1])]
    # nose bridge 27-30 (top -> tip), nostrils 31-35 (right -> left)
    y_tip, y_sub = _midline_profile(mesh)
    y_top = A.EYE_CENTRE[1] + 0.001
    targets += [(0.0, y_top + (y_tip - y_top) * f) for f in (0.0, 1 / 3, 2 / 3, 1.0)]
    targets += [(-0.0150, y_sub + 0.0030), (-0.0075, y_sub + 0.0008), (0.0, y_sub), (0.0075, y_sub + 0.0008),
                (0.0150, y_sub + 0.0030)]
    # eyes: right 36 (outer), 37, 38 (upper), 39 (inner), 40, 41 (lower); left 42 (inner) .. 47
    for u, up in ((1.0, True), (1 / 3, True), (-1 / 3, True), (-1.0, True), (-1 / 3, False), (1 / 3, False)):
        targets.append(_lid_point(u, up, -1.0))
    for u, up in ((-1.0, True), (-1 / 3, True), (1 / 3, True), (1.0, True), (1 / 3, False), (-1 / 3, False)):
        targets.append(_lid_point(u, up, 1.0))
    faces, barys = drop_onto_skin(mesh, np.asarray(targets))
    faces, barys = list(faces), list(barys)

    # outer lip 48-59: corners are the slit corner vertices, the rest on the vermilion borders
    edges = _edge_face(mesh)
    phi_c = S.mouth_corner_phi()
    right_corner, left_corner = mesh.corner_ids
    upper_phi = np.array([-0.62, -0.25, 0.0, 0.25, 0.62]) * phi_c  # 49..53
    lower_phi = np.array([0.62, 0.25, 0.0, -0.25, -0.62]) * phi_c  # 55..59
    border = np.concatenate([_lip_border(upper_phi, True), _lip_border(lower_phi, False)])
    bf, bb = drop_onto_skin(mesh, border[:, :2])
    corner = {int(right_corner): None, int(left_corner): None}
    for vid in corner:
        fi = next(f for (a, b), f in edges.items() if a == vid)
        corner[vid] = (fi, (mesh.faces[fi] == vid).astype(float))
    outer = ([corner[int(right_corner)]] + list(zip(bf[:5], bb[:5])) + [corner[int(left_corner)]]
             + list(zip(bf[5:], bb[5:])))
    # inner lip 60-67 on the slit: 60 right corner, 61-63 upper, 64 left corner, 65-67 lower
    inner = [corner[int(right_corner)]]
    inner += [_slit_point(mesh, edges, f * phi_c, upper=True) for f in (-0.45, 0.0, 0.45)]
    inner += [corner[int(left_corner)]]
    inner += [_slit_point(mesh, edges, f * phi_c, upper=False) for f in (0.45, 0.0, -0.45)]
    for fi, b in outer + inner:
        faces.append(fi)
        barys.append(b)
    return np.asarray(faces, np.int64), np.asarray(barys)


def _slit_point(mesh: ProceduralMesh, edges: dict, phi: float, upper: bool) -> tuple[int, np.ndarray]:
    """A point on the slit at azimuth ``phi`` on an upper-lip (or lower-lip) face."""
    cols = mesh.slit_cols
    ids = mesh.grid_ids[mesh.mouth_row, cols] if upper else mesh.lower_lip_ids
    phis = mesh.grid.phi[cols]
    j = int(np.clip(np.searchsorted(phis, phi) - 1, 0, len(cols) - 2))
    s = float(np.clip((phi - phis[j]) / (phis[j + 1] - phis[j]), 0.0, 1.0))
    a, b = int(ids[j]), int(ids[j + 1])
    # the slit edge belongs to one lip face on each side; pick the one on the requested lip
    row_next = mesh.grid_ids[mesh.mouth_row + (-1 if upper else 1), cols]
    for fi in (edges.get((a, b)), edges.get((b, a))):
        if fi is not None and (np.isin(mesh.faces[fi], row_next).any()):
            bary = np.zeros(3)
            f = mesh.faces[fi]
            bary[int(np.flatnonzero(f == a)[0])] = 1.0 - s
            bary[int(np.flatnonzero(f == b)[0])] = s
            return fi, bary
    raise AssertionError("slit edge without a lip face")


# ---------------------------------------------------------------------------------------------
# contour landmarks (iBUG 0..16)
# ---------------------------------------------------------------------------------------------

#: Centre (frontal x, y) from which contour paths fan out, and the inner ellipse (half-axes)
#: they start on, which keeps them clear of the nose and the lips.
_CONTOUR_CENTRE = np.array([0.0, -0.015])
_CONTOUR_START = np.array([0.030, 0.065])
#: Where points 0..8 sit on a typical annotated frontal face (rounded from a mean iBUG-68 shape):
#: x as a fraction of the face's half-width (towards the subject's right), y as a fraction of the
#: way from the eye line down to the chin. Point 0 is a little below the eye line (in front of the
#: ear, below the sideburn), 4 near the jaw angle a little below the mouth corners, 8 the chin;
#: 9..16 mirror 7..0.
_CONTOUR_TARGET_X = np.array([1.00, 0.99, 0.96, 0.905, 0.80, 0.645, 0.455, 0.24, 0.0])
_CONTOUR_TARGET_Y = np.array([0.10, 0.225, 0.37, 0.515, 0.66, 0.795, 0.91, 0.975, 1.0])
#: How far (frontal metres, plus 0.6 step lengths) a path may stray from its line; where the skin
#: runs parallel to the view (the flat side of the head) the path ends instead of wandering along it.
_PATH_TOLERANCE = 0.004


def _walk(mesh: ProceduralMesh, edges: dict, direction: np.ndarray, max_steps: int = 80) -> np.ndarray:
    """Skin-grid vertex path hugging the frontal line ``centre + t * direction`` outwards.

    The path moves between grid neighbours that share a mesh edge (the 4-neighbours and one
    diagonal per quad); it starts on the inner ellipse and stops when it has gone round the side
    of the head (z < -0.06), cannot move outwards without leaving the line, or reached the neck cut.
    """
    g = mesh.grid
    pts = g.points
    n = g.n_cols
    r0 = 1.0 / np.sqrt(np.sum((direction / _CONTOUR_START) ** 2))
    start = _CONTOUR_CENTRE + r0 * direction
    d2 = np.sum((pts[1:, :, :2] - start) ** 2, axis=-1) + 1.0 * (pts[1:, :, 2] < 0.0)
    i, j = np.unravel_index(int(np.argmin(d2)), d2.shape)
    i += 1
    path = [(i, j)]
    for _ in range(max_steps):
        best, best_perp = None, np.inf
        for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)):
            ci, cj = i + di, (j + dj) % n
            if not 1 <= ci < g.n_rows or (ci, cj) in path:
                continue
            a, b = int(mesh.grid_ids[i, j]), int(mesh.grid_ids[ci, cj])
            if (a, b) not in edges and (b, a) not in edges:
                continue
            step = pts[ci, cj, :2] - pts[i, j, :2]
            if step @ direction <= 0.0:
                continue
            rel = pts[ci, cj, :2] - _CONTOUR_CENTRE
            perp = abs(rel[0] * direction[1] - rel[1] * direction[0])
            if perp < min(best_perp, _PATH_TOLERANCE + 0.6 * np.linalg.norm(step)):
                best, best_perp = (ci, cj), perp
        if best is None:
            break
        i, j = best
        path.append(best)
        if pts[i, j, 2] < -0.06:
            break
    rows, cols = np.asarray(path).T
    return mesh.grid_ids[rows, cols]


def contour_targets(mesh: ProceduralMesh, face: np.ndarray) -> np.ndarray:
    """(17, 2) frontal (x, y) aims of the contour paths from this template's own frame.

    The face's half-width is the widest ``face`` vertex, its height runs from the eye line to the
    lowest ``face`` vertex on the midline (the chin); ``face`` (V,) bool marks face vertices.
    """
    v = mesh.vertices[face]
    half_width = float(np.abs(v[:, 0]).max())
    chin = float(v[np.abs(v[:, 0]) < 0.004, 1].min())
    eye = float(A.EYE_CENTRE[1])
    right = np.stack([-half_width * _CONTOUR_TARGET_X, eye - (eye - chin) * _CONTOUR_TARGET_Y], axis=1)
    left = right[:8][::-1] * np.array([-1.0, 1.0])
    return np.concatenate([right, left])


def contour_paths(mesh: ProceduralMesh, edges: dict, labels: np.ndarray) -> list[tuple[np.ndarray, bool]]:
    """17 vertex paths, each walked from inside the face outwards; iBUG order 0..16.

    Paths start on the first ``face`` vertex (never on the lips, which stand out of the face and
    form the outline of a steep view near the mouth) and end at the first neck vertex (label map
    regions), so the jaw line is looked for on the face and never on the throat. Each path comes
    with a flag: True when its last edge crosses from the face onto the neck (the jaw line).
    """
    neck = np.isin(labels, [SEG_ID["neck"], SEG_ID["neck_back"]])
    face = labels == SEG_ID["face"]
    paths = []
    for target in contour_targets(mesh, face):
        direction = target - _CONTOUR_CENTRE
        path = _walk(mesh, edges, direction / np.linalg.norm(direction))
        first = int(np.argmax(face[path])) if face[path].any() else 0
        path = path[min(first, len(path) - 2):]
        stop = np.flatnonzero(neck[path])
        if stop.size and stop[0] >= 1:
            paths.append((path[: int(stop[0]) + 1], True))
        else:
            paths.append((path[: max(int(stop[0]), 2)] if stop.size else path, False))
    return paths


def _crossing(mesh: ProceduralMesh, normals: np.ndarray, edges: dict, path: np.ndarray, eye: np.ndarray,
              jaw_line: bool) -> tuple[int, np.ndarray]:
    """Where the skin along ``path`` turns away from the eye at ``eye`` (head-model metres).

    The first point with ``n . (eye - p) = 0`` (interpolated on the path edge) if the path reaches
    one: the outline a camera there sees. Where the face ends on the neck without such a fold
    (``jaw_line``: the jaw seen from the front runs into a neck as wide as itself) the point is the
    jaw line, the face / neck border in the middle of the path's last edge, where an annotator
    follows the jaw bone. Otherwise the most turned-away vertex before the surface turns back
    towards the viewer.
    """
    to_eye = eye - mesh.vertices[path]
    d = np.sum(normals[path] * to_eye, axis=1) / np.linalg.norm(to_eye, axis=1)
    for i in range(len(path) - 1):
        if d[i] > 0.0 >= d[i + 1]:
            return _on_edge(mesh, edges, int(path[i]), int(path[i + 1]), float(d[i] / (d[i] - d[i + 1])))
    if jaw_line:
        return _on_edge(mesh, edges, int(path[-2]), int(path[-1]), 0.5)
    i = 0
    for k in range(1, len(path)):
        if d[k] < d[i]:
            i = k
        elif d[k] > d[i] + 0.25:  # clearly facing the viewer again (the throat): stop
            break
    j = i + 1 if i + 1 < len(path) else i - 1
    return _on_edge(mesh, edges, int(path[i]), int(path[j]), 0.0)


def contour_embedding(mesh: ProceduralMesh, labels: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frontal contour (17,), (17, 3) and the dynamic table (79, 17), (79, 17, 3) of the final
    template ``mesh``; ``labels`` (V,) are its vertex SEG ids."""
    normals = vertex_normals(mesh)
    edges = _edge_face(mesh)
    paths = contour_paths(mesh, edges, labels)

    def contour(yaw_deg: float) -> list[tuple[int, np.ndarray]]:
        a = np.deg2rad(yaw_deg)
        # the eye on a circle round the head-model origin, as sfray.annotate.contour measures it
        eye = _EYE_DISTANCE * np.array([-np.sin(a), 0.0, np.cos(a)])
        return [_crossing(mesh, normals, edges, p, eye, on_neck) for p, on_neck in paths]

    frontal = contour(0.0)
    n_rows = 2 * DYNAMIC_CONTOUR_MAX_DEG + 1
    dyn_f = np.zeros((n_rows, NUM_CONTOUR_LANDMARKS), np.int64)
    dyn_b = np.zeros((n_rows, NUM_CONTOUR_LANDMARKS, 3))
    for row in range(n_rows):
        yaw = row_yaw_degrees(row)
        turned = contour(float(yaw))
        for k in range(NUM_CONTOUR_LANDMARKS):
            away = (k > 8 and yaw > 0) or (k < 8 and yaw < 0)  # +x side turns away for yaw > 0
            dyn_f[row, k], dyn_b[row, k] = turned[k] if away else frontal[k]
    f0 = np.array([f for f, _ in frontal], np.int64)
    b0 = np.array([b for _, b in frontal])
    return f0, b0, dyn_f, dyn_b


def build_embedding(design: ProceduralMesh, mesh: ProceduralMesh, labels: np.ndarray) -> LandmarkEmbedding:
    """The full :class:`LandmarkEmbedding` (static 51, dynamic 79 x 17, fixed 68).

    ``design`` is the design-space mesh the static targets are placed on (frontal drops survive
    the vertical proportion warp), ``mesh`` the final template whose silhouettes give the contour,
    ``labels`` (V,) the vertex SEG ids (same topology).
    """
    sf, sb = static_embedding(design)
    cf, cb, df, db = contour_embedding(mesh, labels)
    return LandmarkEmbedding(
        static_faces=sf, static_bary=sb, dynamic_faces=df, dynamic_bary=db,
        full_faces=np.concatenate([cf, sf]), full_bary=np.concatenate([cb, sb]),
    )
