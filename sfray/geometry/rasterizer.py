"""Pure-PyTorch triangle rasterizer: nearest face, barycentrics and depth at every pixel centre.

Input vertices are already in screen space (``sfray.geometry.projection``): ``verts[..., :2]`` are
pixel coordinates (x right, y down, (0, 0) the top-left corner of the top-left pixel) and
``verts[..., 2]`` is depth, smaller = nearer (camera z > 0 for perspective). Pixel (row i, col j)
is sampled at its centre (j + 0.5, i + 0.5).

Design (vectorised, no compiled extension, no per-face or per-pixel Python loop):

1. *Face setup* (float64, one row per face): each edge gets a line function E(p) = A x + B y + C,
   signed so that E >= 0 inside. The coefficients are computed from the edge's endpoints taken in a
   canonical order (lexicographic on (x, y)) and only then negated for the face's own orientation,
   so two faces sharing an edge evaluate *exactly* opposite numbers at every pixel centre (negation
   is exact in floating point). A pixel exactly on an edge (E = 0) belongs to the face whose inward
   normal (A, B) points right, or straight down (A = 0, B > 0) -- the top-left rule; the two faces
   of a shared edge have opposite normals, so exactly one takes it: no cracks, no double cover.
2. *Sample enumeration*: every face is expanded into the pixel centres of its clipped bounding box
   (``repeat_interleave``), and the edge functions are evaluated there in float32. Unlike binning
   faces into fixed 16x16 tiles, this evaluates only ~2x the triangle's area (tiles cost 256 tests
   per face-tile pair, mostly wasted on a dense 10k-face mesh); see ``bench/raster.py``.
3. *Depth test*: each inside sample packs (depth, face index) into one int64 key (an
   order-preserving integer view of the float32 depth in the high bits), and ``scatter_reduce``
   with ``amin`` keeps the nearest face per pixel; exact depth ties go to the lower face index, so
   the result is deterministic on CPU and CUDA. Faces are processed in chunks of at most
   ``samples_chunk`` samples (a Python loop over chunks only) to bound memory.
4. *Resolve*: barycentrics and depth of the winning face are recomputed per pixel in float64.

Backface culling keeps a face iff its pixel-space signed area
``(x1 - x0) (y2 - y0) - (y1 - y0) (x2 - x0)`` is **negative**, i.e. the triangle is
counter-clockwise as displayed (y down). For a perspective camera with OpenCV axes (x right, y
down, z forward) -- or any screen mapping whose (x, y, depth) frame is right-handed -- this is
exactly "the outward normal (b - a) x (c - a) points towards the viewer" (the formula reads
clockwise for a y-up mind, which is why the sign looks surprising). With ``perspective_correct``
faces with a vertex at z <= 0 (behind the camera) are dropped whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sfray.errors import ConfigError
from sfray.geometry.projection import _image_hw, to_screen_orthographic, to_screen_perspective

__all__ = ["EMPTY_DEPTH", "Fragments", "face_attributes", "get_rasterizer", "interpolate", "rasterize",
           "to_screen_orthographic", "to_screen_perspective"]

#: ``zbuf`` value of pixels no face covers.
EMPTY_DEPTH = float("inf")
#: Default bound on the pixel samples evaluated at once (about 150 MB of temporaries).
SAMPLES_PER_CHUNK = 1 << 21
_INT64_MAX = torch.iinfo(torch.int64).max
_LOW32 = 0xFFFFFFFF
_A, _B, _C, _INCL, _DZ = slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12), slice(12, 15)
_ALPHA, _COL0, _COL1, _NCOLS = 15, 16, 17, 18


@dataclass
class Fragments:
    """Per-pixel rasterization result for a batch of B images of H x W pixels."""

    face_index: Tensor  # (B, H, W) int64 face id within the mesh, -1 where empty
    bary: Tensor  # (B, H, W, 3) barycentrics of the face's corners (0 where empty)
    zbuf: Tensor  # (B, H, W) interpolated depth, EMPTY_DEPTH (+inf) where empty

    @property
    def coverage(self) -> Tensor:
        """(B, H, W) bool: some face covers the pixel centre."""
        return self.face_index >= 0


@dataclass
class _Setup:
    """Per-face rasterization parameters for the B*F faces of a batch (global id = b * F + f)."""

    # (n, _NCOLS) float32 hot-loop table: per edge A, B, C of E = A x + (B y + C) >= 0 inside; the
    # top-left flag (1: pixels exactly on the edge belong to the face); dz with depth key
    # sum_i dz_i E_i (z or -1/z over twice the area); alpha = sum_i dz_i A_i; bounding-box columns.
    table: Tensor
    coef64: Tensor  # (n, 3, 3) float64 edge lines, for the per-pixel resolve
    z64: Tensor  # (n, 3) float64 corner depths
    col0: Tensor  # (n,) int64 clipped bounding box, pixel columns and rows (inclusive)
    col1: Tensor
    row0: Tensor
    row1: Tensor
    count: Tensor  # (n,) int64 pixel centres in the clipped bounding box (0: face skipped)


def _batched_faces(faces: Tensor, b: int) -> Tensor:
    faces = faces.long()
    if faces.dim() == 2:
        faces = faces.unsqueeze(0).expand(b, -1, -1)
    if faces.dim() != 3 or faces.shape[-1] != 3 or faces.shape[0] != b:
        raise ValueError(f"faces must be (F, 3) or (B, F, 3) with B={b}, got {tuple(faces.shape)}")
    return faces


def _face_vertices(verts: Tensor, faces: Tensor) -> Tensor:
    """verts (B, V, C), faces (B, F, 3) -> (B, F, 3, C)."""
    b = verts.shape[0]
    return verts[torch.arange(b, device=verts.device)[:, None, None], faces]


def _setup_faces(tri: Tensor, h: int, w: int, perspective_correct: bool, cull: bool) -> _Setup:
    """tri (n, 3, 3) screen-space corners -> per-face edge lines, depth terms, bounding boxes."""
    t = tri.to(torch.float64)
    x, y, z = t[..., 0], t[..., 1], t[..., 2]
    area2 = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    valid = torch.isfinite(t).all(dim=(1, 2)) & (area2 != 0)
    if cull:
        valid &= area2 < 0
    if perspective_correct:
        valid &= (z > 0).all(dim=1)
    orient = torch.where(area2 < 0, -1.0, 1.0).to(torch.float64)

    lines = []
    for i in range(3):  # edge i is opposite corner i: v[i+1] -> v[i+2]
        ax, ay, cx, cy = x[:, (i + 1) % 3], y[:, (i + 1) % 3], x[:, (i + 2) % 3], y[:, (i + 2) % 3]
        swap = (ax > cx) | ((ax == cx) & (ay > cy))
        ox, oy = torch.where(swap, cx, ax), torch.where(swap, cy, ay)
        dx, dy = torch.where(swap, ax, cx) - ox, torch.where(swap, ay, cy) - oy
        sign = torch.where(swap, -orient, orient)
        # E(p) = dx (py - oy) - dy (px - ox) from the canonical endpoints; orienting only negates
        lines.append(torch.stack([-dy, dx, dy * ox - dx * oy], dim=-1) * sign[:, None])
    coef64 = torch.stack(lines, dim=1)
    coef64 = torch.where(valid[:, None, None], coef64, torch.zeros_like(coef64))
    coef32 = coef64.to(torch.float32)  # rounding commutes with negation: shared edges stay exact opposites
    a32, b32 = coef32[..., 0], coef32[..., 1]
    incl = (a32 > 0) | ((a32 == 0) & (b32 > 0))

    inv_area = 1.0 / area2.abs().clamp_min(1e-300)
    dz = (-1.0 / z.clamp_min(1e-300) if perspective_correct else z) * inv_area[:, None]
    dz = torch.where(valid[:, None], dz, torch.zeros_like(dz)).to(torch.float32)

    def first(v: Tensor, size: int) -> Tensor:  # first pixel centre >= v, clipped
        return torch.ceil(v.clamp(-1, size) - 0.5).clamp(0, size - 1)

    def last(v: Tensor, size: int) -> Tensor:  # last pixel centre <= v, clipped
        return torch.floor(v.clamp(-1, size) - 0.5).clamp(-1, size - 1)

    col0, col1 = first(x.amin(1), w), last(x.amax(1), w)
    row0, row1 = first(y.amin(1), h), last(y.amax(1), h)
    valid &= torch.isfinite(col0 + col1 + row0 + row1)
    zero = torch.zeros_like(col0)
    col0, col1, row0, row1 = (torch.where(valid, v, zero).long() for v in (col0, col1, row0, row1))
    count = torch.where(valid, (col1 - col0 + 1).clamp_min(0) * (row1 - row0 + 1).clamp_min(0), 0)
    alpha = (dz * coef32[..., 0]).sum(1, keepdim=True)
    table = torch.cat([coef32[..., 0], coef32[..., 1], coef32[..., 2], incl.float(), dz, alpha,
                       col0[:, None].float(), col1[:, None].float()], dim=1)
    return _Setup(table.contiguous(), coef64, z, col0, col1, row0, row1, count)


def _ordered_key(depth: Tensor, face: Tensor) -> Tensor:
    """float32 depth and int64 face id -> int64 keys ordered by (depth, face)."""
    bits = depth.contiguous().view(torch.int32)
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits).long()
    return (ordered << 32) | face


def _expand(counts: Tensor) -> tuple[Tensor, Tensor]:
    """counts (n,) -> (owner (S,), rank within owner (S,)) for S = counts.sum() items."""
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts,
                                    output_size=total)
    start = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(total, device=counts.device) - start[owner]


def _edge_inside(e: Tensor, incl: Tensor) -> Tensor:
    """The coverage predicate of one edge: E > 0, or E == 0 on an inclusive (top-left) edge."""
    return (e > 0) | ((e == 0) & incl)


def _row_spans(s: _Setup, ids: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Exact covered column span of every (face, pixel row) pair of the faces ``ids``.

    Along a row each edge test is monotone in x (E = A x + r, and float rounding is monotone), so
    coverage is one interval. Each end comes from the crossing estimate x* = -r / A and is settled
    by the exact float32 predicate at the two pixel centres around x*.
    Returns per pair: face id, row, first and last covered column (last < first: empty), and the
    depth key line (alpha, beta) with key = alpha * x + beta along the row.
    """
    owner, k = _expand(s.row1[ids] - s.row0[ids] + 1)
    g = ids[owner]
    row = s.row0[g] + k
    tab = s.table.index_select(0, g)  # (P, _NCOLS)
    py = row.to(torch.float32)[:, None] + 0.5
    a, incl = tab[:, _A], tab[:, _INCL] > 0
    r = tab[:, _B] * py + tab[:, _C]  # (P, 3): E = a * px + r
    flat = a == 0
    x_star = torch.where(flat, 0.0, -r / torch.where(flat, 1.0, a)).clamp(-4.0, 1e7)
    c = torch.floor(x_star - 0.5)  # pixel centres c + 0.5 <= x* < c + 1.5
    ok = _edge_inside(a * (c + 0.5) + r, incl).to(torch.float32) + _edge_inside(a * (c + 1.5) + r, incl)
    col0, col1 = tab[:, _COL0], tab[:, _COL1]
    lo = torch.where(a > 0, c + 2 - ok, -1.0)  # first passing column (predicate rises with x)
    hi = torch.where(a < 0, c - 1 + ok, 1e9)  # last passing column (predicate falls with x)
    lo = torch.maximum(torch.maximum(lo[:, 0], lo[:, 1]), torch.maximum(lo[:, 2], col0))
    hi = torch.minimum(torch.minimum(hi[:, 0], hi[:, 1]), torch.minimum(hi[:, 2], col1))
    row_ok = torch.where(flat, _edge_inside(r, incl), True)
    hi = torch.where(row_ok[:, 0] & row_ok[:, 1] & row_ok[:, 2], hi, lo - 1)
    dz = tab[:, _DZ]
    alpha = tab[:, _ALPHA]
    beta = dz[:, 0] * r[:, 0] + dz[:, 1] * r[:, 1] + dz[:, 2] * r[:, 2]
    return g, row, lo.long(), hi.long(), alpha, beta


def _splat(s: _Setup, ids: Tensor, f: int, h: int, w: int, keys: Tensor) -> None:
    """Fold every covered pixel of faces ``ids`` into ``keys`` (scatter amin of (depth, face))."""
    g, row, lo, hi, alpha, beta = _row_spans(s, ids)
    n_cols = (hi - lo + 1).clamp_min(0)
    keep = torch.nonzero(n_cols).squeeze(1)
    if keep.numel() == 0:
        return
    g, row, lo, alpha, beta, n_cols = g[keep], row[keep], lo[keep], alpha[keep], beta[keep], n_cols[keep]
    owner, k = _expand(n_cols)
    col = lo[owner] + k
    depth = alpha[owner] * (col.to(torch.float32) + 0.5) + beta[owner]
    pix_row = (g // f * h + row) * w
    key = _ordered_key(depth, (g % f)[owner])
    keys.scatter_reduce_(0, pix_row[owner] + col, key, reduce="amin", include_self=True)


def _chunks(count: Tensor, budget: int, faces_chunk: int | None) -> list[Tensor]:
    """Split the faces with samples into runs of at most ``budget`` bounding-box pixels (and
    ``faces_chunk`` faces); a single larger face gets a run of its own."""
    ids = torch.nonzero(count > 0).squeeze(1)
    if ids.numel() == 0:
        return []
    cum = torch.cumsum(count[ids], 0).cpu()
    out, start, n = [], 0, ids.shape[0]
    while start < n:
        before = int(cum[start - 1]) if start > 0 else 0
        end = max(int(torch.searchsorted(cum, before + budget, right=True)), start + 1)
        if faces_chunk is not None:
            end = min(end, start + max(1, int(faces_chunk)))
        out.append(ids[start:end])
        start = end
    return out


def _resolve(keys: Tensor, setup: _Setup, b: int, f: int, h: int, w: int, perspective_correct: bool,
             dtype: torch.dtype) -> Fragments:
    covered = keys != _INT64_MAX
    pix = torch.nonzero(covered).squeeze(1)
    face = keys[pix] & _LOW32
    g = (pix // (h * w)) * f + face
    rem = pix % (h * w)
    py = (rem // w).to(torch.float64) + 0.5
    px = (rem % w).to(torch.float64) + 0.5
    c = setup.coef64[g]  # (M, 3, 3)
    e = (c[..., 0] * px[:, None] + c[..., 1] * py[:, None] + c[..., 2]).clamp_min(0)
    bary = e / e.sum(dim=1, keepdim=True).clamp_min(1e-300)
    z = setup.z64[g]
    if perspective_correct:
        bary = bary / z
        bary = bary / bary.sum(dim=1, keepdim=True)
    depth = (bary * z).sum(dim=1)

    device = keys.device
    face_index = torch.full((b * h * w,), -1, dtype=torch.int64, device=device)
    face_index[pix] = face
    bary_out = torch.zeros(b * h * w, 3, dtype=dtype, device=device)
    bary_out[pix] = bary.to(dtype)
    zbuf = torch.full((b * h * w,), EMPTY_DEPTH, dtype=dtype, device=device)
    zbuf[pix] = depth.to(dtype)
    return Fragments(face_index.view(b, h, w), bary_out.view(b, h, w, 3), zbuf.view(b, h, w))


def rasterize(verts: Tensor, faces: Tensor, image_size: int | tuple[int, int], *,
              perspective_correct: bool = True, cull_backfaces: bool = False,
              faces_chunk: int | None = None, samples_chunk: int | None = None) -> Fragments:
    """Rasterize a batch of meshes given in screen space (see the module docstring).

    verts (B, V, 3) float: pixel x, pixel y, depth (smaller = nearer); faces (F, 3) shared or
    (B, F, 3), int. ``perspective_correct``: barycentrics and depth are interpolated linearly in
    1/z (verts[..., 2] must be camera z > 0); otherwise linearly in screen space (orthographic).
    ``cull_backfaces`` keeps only faces with negative pixel-space signed area (counter-clockwise on
    screen; the outward normal faces the viewer). ``faces_chunk``/``samples_chunk`` bound how many
    faces / pixel samples are evaluated at once (memory), never the result.
    Returns :class:`Fragments`; ``face_index`` counts faces within one mesh (0..F-1).
    """
    if verts.dim() != 3 or verts.shape[-1] != 3:
        raise ValueError(f"verts must be (B, V, 3), got {tuple(verts.shape)}")
    h, w = _image_hw(image_size)
    b = verts.shape[0]
    faces = _batched_faces(faces.to(verts.device), b)
    f = faces.shape[1]
    out_dtype = verts.dtype if verts.dtype in (torch.float32, torch.float64) else torch.float32
    keys = torch.full((b * h * w,), _INT64_MAX, dtype=torch.int64, device=verts.device)
    if f > 0:
        tri = _face_vertices(verts.detach(), faces).reshape(b * f, 3, 3)
    else:
        tri = verts.new_zeros(0, 3, 3)
    setup = _setup_faces(tri, h, w, perspective_correct, cull_backfaces)
    for ids in _chunks(setup.count, int(samples_chunk or SAMPLES_PER_CHUNK), faces_chunk):
        _splat(setup, ids, f, h, w, keys)
    return _resolve(keys, setup, b, f, h, w, perspective_correct, out_dtype)


def face_attributes(vert_attrs: Tensor, faces: Tensor) -> Tensor:
    """Per-vertex attributes (B, V, C) -> per-face-corner attributes (B, F, 3, C)."""
    return _face_vertices(vert_attrs, _batched_faces(faces.to(vert_attrs.device), vert_attrs.shape[0]))


def interpolate(fragments: Fragments, face_attrs: Tensor) -> Tensor:
    """Barycentric interpolation of per-face-corner attributes at every pixel.

    face_attrs (F, 3, C) shared or (B, F, 3, C). Returns (B, H, W, C); empty pixels get 0.
    """
    b, h, w = fragments.face_index.shape
    attrs = face_attrs if face_attrs.dim() == 4 else face_attrs.unsqueeze(0).expand(b, -1, -1, -1)
    idx = fragments.face_index.clamp_min(0).reshape(b, h * w)
    corners = attrs[torch.arange(b, device=idx.device)[:, None], idx]  # (B, H*W, 3, C)
    bary = fragments.bary.reshape(b, h * w, 3, 1).to(corners.dtype)
    out = (bary * corners).sum(dim=2)
    out = torch.where(fragments.coverage.reshape(b, h * w, 1), out, torch.zeros_like(out))
    return out.reshape(b, h, w, -1)


def get_rasterizer(name: str):
    """The ``rasterize`` function of a backend: ``"torch"`` (this module) or ``"pytorch3d"``.

    Selected by ``annotate.raster_backend``; ``pytorch3d`` raises :class:`ConfigError` when the
    package is not installed.
    """
    if name == "torch":
        return rasterize
    if name == "pytorch3d":
        from sfray.geometry.pytorch3d_backend import rasterize as rasterize_p3d, require_pytorch3d

        require_pytorch3d()
        return rasterize_p3d
    raise ConfigError(f"bad value for config key 'annotate.raster_backend': '{name}' is not torch | pytorch3d")
