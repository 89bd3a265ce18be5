"""Fixed jaw curves on a head mesh, and the point of each curve on the outline a camera sees.

Annotators of 2D benchmarks put the 17 jaw points on the *visible* outline of the face
(docs/conventions.md). FLAME's dynamic table approximates that for head yaw alone; a camera above
the head, or a head that is tilted, moves the outline in ways a yaw-indexed table cannot express.
So each jaw point gets a fixed curve on the mesh, built once from the template:

* it starts at the point's anatomical position ``p_k`` (the head's frontal contour, the dynamic
  table's yaw-0 row: what RingNet/DECA embeddings and the procedural head both provide);
* it follows the surface's intersection with the plane through ``p_k`` that contains the face's
  forward axis (+z in FLAME's frame) and the frontal direction from the face centre to ``p_k``,
  inwards (towards the centre), until it has covered ``reach`` of the way to the centre or would
  enter a region no jaw point belongs to (the lips, the nose; from the UV label map).

For a camera centre ``c`` (head-model space, per sample, on the posed mesh) the chosen point is the
first point of the curve, from ``p_k`` inwards, whose surface faces the camera (``n . (c - p) > 0``)
and, given the rendered z-buffer, is shown by the image: ``p_k`` itself when it is, otherwise the
point where the surface turns away (``n . (c - p) = 0``, the occluding contour) or comes out from
behind an occluder. A curve is a chain of segments, each inside one mesh face, so the chosen point
is a face and barycentric coordinates like any landmark of the embedding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sfray.conventions import SEG_ID

#: Share of the way from ``p_k`` to the face centre that a curve covers.
DEFAULT_REACH = 0.5
#: Upper bound on segments per curve (a curve crosses one mesh face per segment).
MAX_SEGMENTS = 400
#: The regions a jaw curve may cross (SEG_CLASSES names): it ends at the lips, the nose, an ear...
JAW_REGIONS = frozenset(SEG_ID[name] for name in ("face", "neck", "neck_back"))
#: Bisection steps locating where a hidden stretch of a curve comes out from behind an occluder.
BISECTION_STEPS = 8
#: Signed plane distances below this (metres) count as positive, so a vertex lying exactly on a
#: cutting plane (the midline of a mirror-symmetric mesh) is on one side consistently.
_ON_PLANE = 1e-12


@dataclass
class JawCurves:
    """K curves of up to M segments; segment j of curve k lies in face ``faces[k, j]`` and runs from
    barycentrics ``start[k, j]`` to ``end[k, j]``. Segments past ``lengths[k]`` repeat the last end
    point (zero length), so every curve has M segments."""

    faces: np.ndarray  # (K, M) int64
    start: np.ndarray  # (K, M, 3)
    end: np.ndarray  # (K, M, 3)
    lengths: np.ndarray  # (K,) int64, real segments (>= 1)


def _edge_faces(faces: np.ndarray) -> dict[tuple[int, int], list[int]]:
    out: dict[tuple[int, int], list[int]] = {}
    for fi, f in enumerate(faces.tolist()):
        for k in range(3):
            a, b = f[k], f[(k + 1) % 3]
            out.setdefault((min(a, b), max(a, b)), []).append(fi)
    return out


def _crossings(face: np.ndarray, sd: np.ndarray) -> list[tuple[int, int, float]]:
    """Edges ``(a, b, t)`` of one face that the plane cuts, at ``(1 - t) v_a + t v_b``."""
    out = []
    for k in range(3):
        a, b = int(face[k]), int(face[(k + 1) % 3])
        if (sd[a] > 0) != (sd[b] > 0):
            out.append((a, b, float(sd[a] / (sd[a] - sd[b]))))
    return out


def _bary(face: np.ndarray, a: int, b: int, t: float) -> np.ndarray:
    w = np.zeros(3)
    w[int(np.flatnonzero(face == a)[0])] = 1.0 - t
    w[int(np.flatnonzero(face == b)[0])] = t
    return w


def _across(faces: np.ndarray, edges: dict, face0: int, bary0: np.ndarray) -> tuple[int, np.ndarray]:
    """The other face on the edge of ``face0`` that holds its point ``bary0`` (or ``face0`` itself
    when the point is inside), with the point's barycentrics in it."""
    order = np.argsort(bary0)
    if bary0[order[0]] > 1e-9:
        return face0, bary0
    a, b = int(faces[face0][order[1]]), int(faces[face0][order[2]])
    for f in edges[(min(a, b), max(a, b))]:
        if f != face0:
            w = np.zeros(3)
            w[int(np.flatnonzero(faces[f] == a)[0])] = bary0[order[1]]
            w[int(np.flatnonzero(faces[f] == b)[0])] = bary0[order[2]]
            return f, w
    return face0, bary0


def _walk(vertices: np.ndarray, faces: np.ndarray, edges: dict, face0: int, bary0: np.ndarray,
          centre: np.ndarray, reach: float, allowed: np.ndarray | None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Segments ``(face, start bary, end bary)`` of one curve (see the module docstring); with
    ``allowed`` (F,) bool the curve ends where it would enter a face outside the jaw's regions."""
    p = bary0 @ vertices[faces[face0]]
    u = np.array([p[0] - centre[0], p[1] - centre[1], 0.0])
    u /= max(np.linalg.norm(u), 1e-12)
    sd = (vertices - p) @ np.cross(np.array([0.0, 0.0, 1.0]), u)
    sd = np.where(np.abs(sd) < _ON_PLANE, _ON_PLANE, sd)
    progress = lambda q: float((q[:2] - centre[:2]) @ u[:2])  # noqa: E731
    point = lambda a, b, t: (1.0 - t) * vertices[a] + t * vertices[b]  # noqa: E731
    stop = reach * progress(p)

    cuts = _crossings(faces[face0], sd)
    if len(cuts) != 2:  # the plane only touches face0 (an anchor on an edge in the plane, e.g. the
        # midline of a mirror-symmetric mesh): start in the face across that edge instead
        face0, bary0 = _across(faces, edges, face0, bary0)
        cuts = _crossings(faces[face0], sd)
        if len(cuts) != 2:
            return [(face0, bary0, bary0)]  # a curve of one point
    # the inward side: towards the face centre (in 3D: at the frontal outline the cut runs front to
    # back, and only the front way leads to the face)
    a, b, t = min(cuts, key=lambda c: float(np.linalg.norm(point(*c) - centre)))
    segments = [(face0, bary0, _bary(faces[face0], a, b, t))]
    visited, current = {face0}, face0
    while len(segments) < MAX_SEGMENTS and progress(point(a, b, t)) > stop:
        nxt = [f for f in edges[(min(a, b), max(a, b))] if f != current and f not in visited]
        if not nxt:
            break  # the mesh ends (boundary edge) or the curve came back on itself
        if allowed is not None and not allowed[nxt[0]]:
            break  # the lips, the nose, an ear: no jaw point lies there
        current = nxt[0]
        visited.add(current)
        f = faces[current]
        exits = [c for c in _crossings(f, sd) if {c[0], c[1]} != {a, b}]
        if not exits:
            break
        entry = _bary(f, a, b, t)
        a, b, t = exits[0]
        segments.append((current, entry, _bary(f, a, b, t)))
    return segments


def build_jaw_curves(vertices: np.ndarray, faces: np.ndarray, anchor_faces: np.ndarray, anchor_bary: np.ndarray,
                     centre: np.ndarray, face_labels: np.ndarray | None = None,
                     reach: float = DEFAULT_REACH) -> JawCurves:
    """Curves from the anchors (K,) faces / (K, 3) barycentrics on the template ``vertices`` (V, 3)
    towards the face ``centre`` (3,): see the module docstring. ``face_labels`` (F,) SEG ids (from
    the UV label map) end each curve where it would leave the jaw's regions (``JAW_REGIONS``)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    edges = _edge_faces(faces)
    allowed = None if face_labels is None else np.isin(np.asarray(face_labels), list(JAW_REGIONS))
    walks = [_walk(vertices, faces, edges, int(f), np.asarray(b, dtype=np.float64),
                   np.asarray(centre, dtype=np.float64), reach, allowed)
             for f, b in zip(np.asarray(anchor_faces), np.asarray(anchor_bary))]
    m = max(len(w) for w in walks)
    k = len(walks)
    out_f = np.zeros((k, m), np.int64)
    out_s, out_e = np.zeros((k, m, 3)), np.zeros((k, m, 3))
    for i, w in enumerate(walks):
        for j in range(m):
            f, s, e = w[min(j, len(w) - 1)]
            if j >= len(w):
                s = e  # padding: the last end point again
            out_f[i, j], out_s[i, j], out_e[i, j] = f, s, e
    return JawCurves(out_f, out_s, out_e, np.array([len(w) for w in walks], np.int64))


def closest_surface_points(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Faces (N,) and barycentrics (N, 3) of the mesh points nearest to ``points`` (N, 3).

    The closest point on each triangle by its Voronoi regions (vertex, edge or face), vectorised
    over the faces; then the nearest triangle.
    """
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, ac = b - a, c - a
    out_f, out_b = [], []
    for p in np.asarray(points, dtype=np.float64):
        ap, bp, cp = p - a, p - b, p - c
        d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
        d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
        d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
        va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
        den = np.where(np.abs(va + vb + vc) > 1e-30, va + vb + vc, 1e-30)
        v, w = vb / den, vc / den  # inside the face
        bary = np.stack([1.0 - v - w, v, w], axis=1)
        regions = [  # (condition, barycentrics), later ones take precedence where they hold
            ((vb <= 0) & (d2 >= 0) & (d6 <= 0), None),  # edge ac
            ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), None),  # edge bc
            ((vc <= 0) & (d1 >= 0) & (d3 <= 0), None),  # edge ab
            ((d6 >= 0) & (d5 <= d6), np.array([0.0, 0.0, 1.0])),  # vertex c
            ((d3 >= 0) & (d4 <= d3), np.array([0.0, 1.0, 0.0])),  # vertex b
            ((d1 <= 0) & (d2 <= 0), np.array([1.0, 0.0, 0.0])),  # vertex a
        ]
        t_ac = np.clip(d2 / np.where(np.abs(d2 - d6) > 1e-30, d2 - d6, 1e-30), 0, 1)
        t_bc = np.clip((d4 - d3) / np.where(np.abs((d4 - d3) + (d5 - d6)) > 1e-30, (d4 - d3) + (d5 - d6), 1e-30), 0, 1)
        t_ab = np.clip(d1 / np.where(np.abs(d1 - d3) > 1e-30, d1 - d3, 1e-30), 0, 1)
        edge = [np.stack([1 - t_ac, 0 * t_ac, t_ac], 1), np.stack([0 * t_bc, 1 - t_bc, t_bc], 1),
                np.stack([1 - t_ab, t_ab, 0 * t_ab], 1)]
        for (cond, fixed), e in zip(regions, edge + [None] * 3):
            bary = np.where(cond[:, None], fixed if fixed is not None else e, bary)
        q = np.einsum("fk,fkc->fc", bary, tri)
        i = int(np.argmin(((q - p) ** 2).sum(1)))
        out_f.append(i)
        out_b.append(bary[i])
    return np.asarray(out_f, np.int64), np.asarray(out_b)


def connected_faces(faces: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """(F,) bool: the faces connected (through shared edges) to any face of ``seeds``."""
    edges = _edge_faces(np.asarray(faces))
    keep = np.zeros(len(faces), bool)
    stack = [int(s) for s in np.asarray(seeds)]
    while stack:
        f = stack.pop()
        if keep[f]:
            continue
        keep[f] = True
        tri = faces[f]
        for k in range(3):
            a, b = int(tri[k]), int(tri[(k + 1) % 3])
            stack.extend(g for g in edges[(min(a, b), max(a, b))] if not keep[g])
    return keep


def densify(vertices: np.ndarray, faces: np.ndarray, anchor_faces: np.ndarray, anchor_bary: np.ndarray,
            per_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_gap - 1`` more anchors between each two consecutive ones: the points of the anchors'
    surface (the faces connected to them; not an eyeball or a separate ear) nearest to evenly
    spaced points of the straight line between them. (K,) -> ((K - 1) * per_gap + 1,)."""
    v, f = np.asarray(vertices, dtype=np.float64), np.asarray(faces)
    p = np.einsum("kcx,kc->kx", v[f[anchor_faces]], anchor_bary)
    t = np.arange(1, per_gap)[None, :, None] / per_gap
    mid = ((1 - t) * p[:-1, None] + t * p[1:, None]).reshape(-1, 3)
    surface = np.flatnonzero(connected_faces(f, anchor_faces))
    mf, mb = closest_surface_points(v, f[surface], mid)
    mf = surface[mf]
    k = len(anchor_faces)
    faces_out = np.zeros((k - 1) * per_gap + 1, np.int64)
    bary_out = np.zeros(((k - 1) * per_gap + 1, 3))
    faces_out[::per_gap], bary_out[::per_gap] = anchor_faces, anchor_bary
    rest = np.ones(len(faces_out), bool)
    rest[::per_gap] = False
    faces_out[rest], bary_out[rest] = mf, mb
    return faces_out, bary_out


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) unit area-weighted vertex normals of meshes (B, V, 3) with faces (F, 3)."""
    tri = vertices[:, faces]  # (B, F, 3, 3)
    fn = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    n = torch.zeros_like(vertices)
    for k in range(3):
        n.index_add_(1, faces[:, k], fn)
    return torch.nn.functional.normalize(n, dim=-1)


class JawOutline:
    """Per-sample choice of the point on each jaw curve that lies on the camera's outline (torch)."""

    def __init__(self, curves: JawCurves, faces: np.ndarray | torch.Tensor):
        self.faces = torch.as_tensor(np.asarray(faces), dtype=torch.int64)
        self.seg_faces = torch.as_tensor(curves.faces)
        self.seg_start = torch.as_tensor(curves.start, dtype=torch.float64)
        self.seg_end = torch.as_tensor(curves.end, dtype=torch.float64)
        # curve points: the start of segment 0, then the end of every segment
        self.pt_faces = torch.cat([self.seg_faces[:, :1], self.seg_faces], dim=1)  # (K, M + 1)
        self.pt_bary = torch.cat([self.seg_start[:, :1], self.seg_end], dim=1)  # (K, M + 1, 3)

    def _to(self, device: torch.device) -> None:
        if self.faces.device != device:
            for name in ("faces", "seg_faces", "seg_start", "seg_end", "pt_faces", "pt_bary"):
                setattr(self, name, getattr(self, name).to(device))

    def points(self, vertices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions and unit normals (B, K, M + 1, 3) of the curve points on ``vertices`` (B, V, 3)."""
        self._to(vertices.device)
        v = vertices.to(torch.float64)
        if v.shape[0] > 1 and vertices.stride(0) == 0:  # one mesh seen by many cameras (expanded)
            normals = vertex_normals(v[:1], self.faces).expand_as(v)
        else:
            normals = vertex_normals(v, self.faces)
        corners = self.faces[self.pt_faces]  # (K, M + 1, 3)
        pos = torch.einsum("bkmcx,kmc->bkmx", v[:, corners], self.pt_bary)
        nrm = torch.einsum("bkmcx,kmc->bkmx", normals[:, corners], self.pt_bary)
        return pos, torch.nn.functional.normalize(nrm, dim=-1)

    def choose(self, vertices: torch.Tensor, camera_centre: torch.Tensor,
               visible: Callable[[torch.Tensor], torch.Tensor] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Faces (B, K) and barycentrics (B, K, 3) of each curve's outline point for cameras at
        ``camera_centre`` (B, 3), head-model space, on the posed ``vertices`` (B, V, 3), and (B, K)
        bool: whether the curve had a point that passed the test (else its fallback).

        Without ``visible`` the point is the first one from the anchor inwards that faces the
        camera (where the surface turns, interpolated), or the curve's inner end. ``visible``
        (head-space points (B, N, 3) -> (B, N) bool, a rendered z-buffer's
        :class:`~sfray.geometry.visibility.ZBufferVisibility`) also demands that the image show it:
        a point that faces the camera but hides behind another part of the head (an ear, the
        cheekbone) slides on to where it comes out; a curve the image shows nowhere (a jaw hidden
        behind the lips) keeps its anchor, which the annotator then flags as hidden.
        """
        pos, nrm = self.points(vertices)
        to_cam = torch.nn.functional.normalize(camera_centre.to(torch.float64)[:, None, None] - pos, dim=-1)
        s = (nrm * to_cam).sum(-1)  # (B, K, M + 1): > 0 where the surface faces the camera
        b, k, n = s.shape
        ok = s > 0.0
        if visible is not None:
            ok = ok & visible(pos.reshape(b, k * n, 3)).reshape(b, k, n)
        found = ok.any(dim=-1)
        first = torch.argmax(ok.to(torch.int8), dim=-1)  # first good point (0 if none)
        # the segment holding the point: the one ending at the first good point; none found: the
        # inner end without a visibility test, the anchor with one
        last = torch.full_like(first, n - 2)
        seg = torch.where(found, (first - 1).clamp_min(0), last if visible is None else torch.zeros_like(first))
        prev = torch.gather(s, 2, seg[..., None])[..., 0]
        nxt = torch.gather(s, 2, (seg + 1)[..., None])[..., 0]
        # where the previous point turned away, the outline is where the surface turns (n . v = 0);
        # where it faced the camera it was hidden, so the search starts at it
        turn = (prev / (prev - nxt).clamp_max(-1e-12)).clamp(0.0, 1.0)
        w = torch.where(prev > 0.0, torch.zeros_like(turn), turn)
        inside = found & (first > 0)
        if visible is not None and bool(inside.any()):
            # the point must be seen too: bisect from the start (hidden: behind an occluder, or a
            # turning point seen edge-on between pixel centres) to the next curve point (seen)
            a = torch.gather(pos, 2, seg[..., None, None].expand(b, k, 1, 3))[:, :, 0]
            c = torch.gather(pos, 2, (seg + 1)[..., None, None].expand(b, k, 1, 3))[:, :, 0]
            at = lambda t: a + t[..., None] * (c - a)  # noqa: E731
            refine = inside & ~visible(at(w))
            lo, hi = w, torch.ones_like(w)
            for _ in range(BISECTION_STEPS):
                mid = 0.5 * (lo + hi)
                seen = visible(at(mid))
                lo, hi = torch.where(seen, lo, mid), torch.where(seen, mid, hi)
            w = torch.where(refine, hi, w)
        w = torch.where(found & (first == 0), torch.zeros_like(w), w)  # the anchor itself is seen
        if visible is None:
            w = torch.where(found, w, torch.ones_like(w))  # the inner end
        else:
            w = torch.where(found, w, torch.zeros_like(w))  # the anchor
        rows = torch.arange(k, device=s.device)[None].expand(b, k)
        faces = self.seg_faces[rows, seg]
        bary = (1.0 - w)[..., None] * self.seg_start[rows, seg] + w[..., None] * self.seg_end[rows, seg]
        return faces, bary, found
