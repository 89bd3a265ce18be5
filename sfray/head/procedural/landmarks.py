"""The iBUG-68 landmark embedding of the template (face index + barycentric per point).

* Static points (iBUG 17..67) are frontal targets placed from the template's own anatomy (brow
  line, lid margins, nose profile, lip borders) and dropped onto the skin along -z, so each sits
  where an annotator looking at the face would click. Mouth corners are the slit's corner vertices;
  the inner-lip points lie on the slit edges, upper points on upper-lip faces and lower points on
  lower-lip faces, so opening the jaw separates them.
* Contour points (iBUG 0..16) are the outline of the face in a frontal image: along a direction
  per point, aimed from the face centre at where annotators put that point on a frontal face
  (cheek edge level with the eyes down to the chin), the point is the last one whose view ray
  from sfray's frontal camera meets the face (beyond it: the neck below the jaw, an ear, or
  nothing). One smooth curve, every point on the surface that camera sees. Each row of the
  dynamic table moves the points of the side turned away from the camera for that head yaw along
  the fixed jaw curves (``sfray.head.jaw_curves``) onto that view's outline; the other side keeps
  the frontal points, as annotators do.

The static points are placed on the design-space mesh (frontal drops survive the vertical
proportion warp); the contour is found on the final (warped) template, since it depends on the
final surface.
"""

from __future__ import annotations

import numpy as np
import torch

from sfray.conventions import (
    DEFAULT_CAMERA_RADIUS,
    DYNAMIC_CONTOUR_MAX_DEG,
    NUM_CONTOUR_LANDMARKS,
    ORTH_SCALE,
    ORTH_SHIFT,
    SEG_ID,
    WORLD_Z_OFFSET,
)
from sfray.head.assets import LandmarkEmbedding
from sfray.head.jaw_curves import JawCurves, JawOutline, build_jaw_curves
from sfray.head.procedural import anatomy as A
from sfray.head.procedural import surface as S
from sfray.head.procedural.labels import brow_line
from sfray.head.procedural.mesh import LEFT_EAR, RIGHT_EAR, SKIN, ProceduralMesh

#: Distance (head-model metres) of the eyes the dynamic table is computed for: sfray's default
#: camera radius (generator world) in head units. Contours are silhouettes seen from a real
#: camera, which sit in front of the orthographic ones (a camera a metre away sees the cheek
#: edge, not the widest point of the head behind it).
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


def _edge_face(mesh: ProceduralMesh) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = {}
    for fi in skin_faces(mesh):
        f = mesh.faces[fi]
        for k in range(3):
            out.setdefault((int(f[k]), int(f[(k + 1) % 3])), int(fi))
    return out


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

#: Centre (frontal x, y) from which the contour directions fan out.
_CONTOUR_CENTRE = np.array([0.0, -0.015])
#: Where points 0..8 sit on a typical annotated frontal face (rounded from a mean iBUG-68 shape):
#: x as a fraction of the face's half-width (towards the subject's right), y as a fraction of the
#: way from the eye line down to the chin. Point 0 is a little below the eye line (in front of the
#: ear, below the sideburn), 4 near the jaw angle a little below the mouth corners, 8 the chin;
#: 9..16 mirror 7..0.
_CONTOUR_TARGET_X = np.array([1.00, 0.99, 0.96, 0.905, 0.80, 0.645, 0.455, 0.24, 0.0])
_CONTOUR_TARGET_Y = np.array([0.10, 0.225, 0.37, 0.515, 0.66, 0.795, 0.91, 0.975, 1.0])
#: Outline search along each direction: start (frontal metres from the centre), end, step, and
#: bisection steps on the last step.
_SEARCH = (0.02, 0.16, 0.002, 24)
#: How far (metres) a contour point may lie behind the mean depth of its neighbours.
_DEPTH_STEP = 0.005


def frontal_eye() -> np.ndarray:
    """Head-model position of sfray's default frontal camera (world (0, 0, radius), docs/conventions.md):
    the inverse of ``world = (p + ORTH_SHIFT) * ORTH_SCALE / 2 + (0, 0, WORLD_Z_OFFSET)``."""
    world = np.array([0.0, 0.0, DEFAULT_CAMERA_RADIUS - WORLD_Z_OFFSET])
    return world / (ORTH_SCALE / 2.0) - np.asarray(ORTH_SHIFT)


def cast_rays(mesh: ProceduralMesh, origin: np.ndarray, dirs: np.ndarray, fids: np.ndarray,
              chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of rays ``origin + t dirs`` (n, 3) among faces ``fids``: face (n,) (-1 on a miss)
    and barycentrics (n, 3) (Moller-Trumbore, vectorised over faces and a chunk of rays)."""
    tri = mesh.vertices[mesh.faces[fids]]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    tv = origin - tri[:, 0]  # (F, 3)
    qv = np.cross(tv, e1)
    t_num = np.einsum("fi,fi->f", e2, qv)
    faces = np.full(len(dirs), -1, np.int64)
    barys = np.zeros((len(dirs), 3))
    for i in range(0, len(dirs), chunk):
        d = dirs[i:i + chunk]  # (R, 3)
        pv = np.cross(d[:, None, :], e2[None])  # (R, F, 3)
        det = np.einsum("fi,rfi->rf", e1, pv)
        ok = np.abs(det) > 1e-14
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        u = np.einsum("fi,rfi->rf", tv, pv) * inv
        v = np.einsum("ri,fi->rf", d, qv) * inv
        t = t_num[None] * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
        t = np.where(hit, t, np.inf)
        k = np.argmin(t, axis=1)
        rows = np.arange(len(d))
        found = np.isfinite(t[rows, k])
        faces[i:i + chunk] = np.where(found, fids[k], -1)
        barys[i:i + chunk] = np.stack([1.0 - u[rows, k] - v[rows, k], u[rows, k], v[rows, k]], axis=1)
    return faces, barys


def contour_targets(mesh: ProceduralMesh, face: np.ndarray) -> np.ndarray:
    """(17, 2) frontal (x, y) aims of the contour directions from this template's own frame.

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


def frontal_outline(mesh: ProceduralMesh, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Faces (17,) and barycentrics (17, 3) of the jaw contour as the frontal camera sees it.

    Along each direction from the centre towards its target, the point is the outermost one whose
    view ray (from :func:`frontal_eye`) first meets the face region: beyond it the ray meets the
    neck (the lower jaw, whose edge then occludes the neck), an ear or nothing (the cheeks). It
    is the outline of the face in a frontal image, one smooth curve round the whole jaw, and the
    front-most surface point there, so every point is seen by the frontal camera.
    """
    eye = frontal_eye()
    part = mesh.part[mesh.faces]
    corners = mesh.vertices[mesh.faces]
    low_front = (corners[..., 1].min(axis=1) < 0.06) & (corners[..., 2].max(axis=1) > -0.09)  # the jaw's side
    visible = np.flatnonzero(np.isin(part, (SKIN, LEFT_EAR, RIGHT_EAR)).all(axis=1) & low_front)
    corner_labels = labels[mesh.faces[visible]]  # (F, 3)
    on_face = (part[visible] == SKIN).all(axis=1)
    start, stop, step, bisect = _SEARCH
    ts = np.arange(start, stop, step)
    targets = contour_targets(mesh, labels == SEG_ID["face"])
    dirs = (targets - _CONTOUR_CENTRE) / np.linalg.norm(targets - _CONTOUR_CENTRE, axis=1, keepdims=True)

    def probe(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rays through ``_CONTOUR_CENTRE + t * dirs`` (t: (17, n)): good, faces, barycentrics."""
        xy = _CONTOUR_CENTRE + t[..., None] * dirs[:, None, :]
        target = np.concatenate([xy, np.zeros(xy.shape[:-1] + (1,))], axis=-1).reshape(-1, 3)
        f, b = cast_rays(mesh, eye, target - eye, visible)
        k = np.searchsorted(visible, f)
        nearest = corner_labels[k, np.argmax(b, axis=1)]
        good = (f >= 0) & on_face[k] & (nearest == SEG_ID["face"])
        shape = t.shape
        return good.reshape(shape), f.reshape(shape), b.reshape(shape + (3,))

    good, f, b = probe(np.broadcast_to(ts, (len(dirs), len(ts))))
    if not good.any(axis=1).all():
        raise AssertionError("no face surface towards some contour target")
    last = np.array([np.flatnonzero(g)[-1] for g in good])
    if (last + 1 >= len(ts)).any():
        raise AssertionError("the face does not end towards some contour target")
    rows = np.arange(len(dirs))
    lo, hi = ts[last], ts[last + 1]
    best_f, best_b = f[rows, last].copy(), b[rows, last].copy()
    for _ in range(bisect):
        mid = 0.5 * (lo + hi)
        g, fm, bm = probe(mid[:, None])
        g, fm, bm = g[:, 0], fm[:, 0], bm[:, 0]
        lo, hi = np.where(g, mid, lo), np.where(g, hi, mid)
        best_f, best_b = np.where(g, fm, best_f), np.where(g[:, None], bm, best_b)
    return best_f.astype(np.int64), best_b


def smooth_depths(vertices: np.ndarray, faces: np.ndarray, curves: JawCurves, anchor_faces: np.ndarray,
                  anchor_bary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Anchors moved inwards along their jaw curves where they lie deeper than their neighbours.

    The frontal outline has one corner the jaw line must not follow: where the back of the jaw
    flares out wider than the cheek, the outline runs ~3 cm back along the ramus (iBUG 5 and 11).
    A landmark there zig-zags in every turned view. So a point more than ``_DEPTH_STEP`` behind
    the mean depth (z) of its two neighbours slides along its curve (inwards, onto the side of the
    jaw) to that depth; in the frontal image it then lies between its neighbours on the face.
    """
    pts = lambda f, b: np.einsum("...kc,...k->...c", vertices[faces[f]], b)  # noqa: E731
    out_f, out_b = anchor_faces.copy(), anchor_bary.copy()
    for _ in range(len(out_f)):  # points only move forwards: a few passes settle it
        z = pts(out_f, out_b)[:, 2]
        moved = False
        for k in range(1, len(z) - 1):
            target = 0.5 * (z[k - 1] + z[k + 1]) - _DEPTH_STEP
            if z[k] >= target - 1e-9:
                continue
            n = int(curves.lengths[k])
            ends = pts(curves.faces[k, :n], curves.end[k, :n])[:, 2]
            starts = pts(curves.faces[k, :n], curves.start[k, :n])[:, 2]
            j = int(np.argmax(ends >= target)) if (ends >= target).any() else n - 1
            w = float(np.clip((target - starts[j]) / max(ends[j] - starts[j], 1e-12), 0.0, 1.0))
            f_new, b_new = curves.faces[k, j], (1.0 - w) * curves.start[k, j] + w * curves.end[k, j]
            if pts(f_new, b_new)[2] > z[k] + 1e-9:  # only ever forwards along the curve
                out_f[k], out_b[k], z[k], moved = f_new, b_new, pts(f_new, b_new)[2], True
        if not moved:
            break
    return out_f, out_b


def contour_embedding(mesh: ProceduralMesh, labels: np.ndarray, static_points: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frontal contour (17,), (17, 3) and the dynamic table (79, 17), (79, 17, 3) of the final
    template ``mesh``; ``labels`` (V,) are its vertex SEG ids, ``static_points`` (51, 3) the static
    landmarks on it (their mean is the face centre of the jaw curves).

    Row y of the table holds, for the side turned away from an eye at head yaw y (on a circle
    round the head-model origin at sfray's camera distance, as FLAME's table is indexed), the
    points where the fixed jaw curves (``sfray.head.jaw_curves``) cross that eye's outline; the
    side turned towards it keeps the frontal points, as annotators do.
    """
    f0, b0 = frontal_outline(mesh, labels)
    centre = static_points.mean(axis=0)
    curves = build_jaw_curves(mesh.vertices, mesh.faces, f0, b0, centre)
    f0, b0 = smooth_depths(mesh.vertices, mesh.faces, curves, f0, b0)
    curves = build_jaw_curves(mesh.vertices, mesh.faces, f0, b0, centre)
    outline = JawOutline(curves, mesh.faces)
    n_rows = 2 * DYNAMIC_CONTOUR_MAX_DEG + 1
    yaws = np.deg2rad([row_yaw_degrees(row) for row in range(n_rows)])
    eyes = _EYE_DISTANCE * np.stack([-np.sin(yaws), np.zeros_like(yaws), np.cos(yaws)], axis=1)
    verts = torch.as_tensor(mesh.vertices, dtype=torch.float64)[None].expand(n_rows, -1, -1)
    faces, bary, _ = (x.numpy() for x in outline.choose(verts, torch.as_tensor(eyes)))
    k = np.arange(NUM_CONTOUR_LANDMARKS)
    deg = np.rad2deg(yaws)[:, None]
    away = ((k > 8) & (deg > 0)) | ((k < 8) & (deg < 0))  # +x side turns away for yaw > 0
    dyn_f = np.where(away, faces, f0[None])
    dyn_b = np.where(away[..., None], bary, b0[None])
    return f0, b0, dyn_f.astype(np.int64), dyn_b


def build_embedding(design: ProceduralMesh, mesh: ProceduralMesh, labels: np.ndarray) -> LandmarkEmbedding:
    """The full :class:`LandmarkEmbedding` (static 51, dynamic 79 x 17, fixed 68).

    ``design`` is the design-space mesh the static targets are placed on (frontal drops survive
    the vertical proportion warp), ``mesh`` the final template whose outline gives the contour,
    ``labels`` (V,) the vertex SEG ids (same topology).
    """
    sf, sb = static_embedding(design)
    static_points = np.einsum("lkc,lk->lc", mesh.vertices[mesh.faces[sf]], sb)
    cf, cb, df, db = contour_embedding(mesh, labels, static_points)
    return LandmarkEmbedding(
        static_faces=sf, static_bary=sb, dynamic_faces=df, dynamic_bary=db,
        full_faces=np.concatenate([cf, sf]), full_bary=np.concatenate([cb, sb]),
    )
