"""Optional rasterizer backend on PyTorch3D's ``rasterize_meshes``, same interface as ``rasterize``.

Selected with ``annotate.raster_backend=pytorch3d`` through ``sfray.geometry.rasterizer.get_rasterizer``.
Screen-space inputs are mapped to PyTorch3D's NDC (+x left, +y up, the shorter image side spanning
[-1, 1], square pixels): x_ndc = (W/2 - x) * 2/min(H, W), y_ndc = (H/2 - y) * 2/min(H, W); depth is
passed through. Negating both axes is a rotation, so PyTorch3D's culling rule (drop faces whose
area in its edge-function convention is negative) keeps the same faces as the torch backend
(negative pixel-space signed area). Differences: PyTorch3D has no top-left tie rule (a pixel
centre exactly on an edge belongs to neither face), and ``faces_chunk``/``samples_chunk`` are
ignored. As in the torch backend, faces with a vertex at z <= 0 are dropped when
``perspective_correct``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sfray.errors import ConfigError
from sfray.geometry.projection import _image_hw
from sfray.geometry.rasterizer import EMPTY_DEPTH, Fragments, _batched_faces


def require_pytorch3d() -> None:
    """Raise :class:`ConfigError` with the fix when ``pytorch3d`` cannot be imported."""
    try:
        import pytorch3d.renderer.mesh.rasterize_meshes  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "config key 'annotate.raster_backend' is 'pytorch3d' but the pytorch3d package is not "
            "installed; install it (pip install 'sfray[pytorch3d]', or PyTorch3D's INSTALL.md for "
            "your CUDA/torch build) or set annotate.raster_backend=torch") from exc


def rasterize(verts: Tensor, faces: Tensor, image_size: int | tuple[int, int], *,
              perspective_correct: bool = True, cull_backfaces: bool = False,
              faces_chunk: int | None = None, samples_chunk: int | None = None) -> Fragments:
    """Same contract as :func:`sfray.geometry.rasterizer.rasterize`, computed by PyTorch3D."""
    require_pytorch3d()
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
    from pytorch3d.structures import Meshes

    h, w = _image_hw(image_size)
    b = verts.shape[0]
    faces_b = _batched_faces(faces.to(verts.device), b)
    f = faces_b.shape[1]
    dtype = verts.dtype if verts.dtype in (torch.float32, torch.float64) else torch.float32
    if f == 0:
        return Fragments(torch.full((b, h, w), -1, dtype=torch.long, device=verts.device),
                         torch.zeros(b, h, w, 3, dtype=dtype, device=verts.device),
                         torch.full((b, h, w), EMPTY_DEPTH, dtype=dtype, device=verts.device))
    if perspective_correct:  # drop faces reaching behind the camera, like the torch backend
        z = torch.gather(verts[..., 2], 1, faces_b.reshape(b, -1)).reshape(b, f, 3)
        faces_b = torch.where((z > 0).all(-1, keepdim=True), faces_b, torch.zeros_like(faces_b))
    scale = 2.0 / min(h, w)
    ndc = torch.stack([(w / 2 - verts[..., 0]) * scale, (h / 2 - verts[..., 1]) * scale, verts[..., 2]], -1)
    meshes = Meshes(verts=list(ndc.float()), faces=list(faces_b))
    pix_to_face, zbuf, bary, _ = rasterize_meshes(
        meshes, image_size=(h, w), blur_radius=0.0, faces_per_pixel=1, max_faces_per_bin=f,
        perspective_correct=perspective_correct, cull_backfaces=cull_backfaces)
    p2f = pix_to_face[..., 0]
    covered = p2f >= 0
    offset = (torch.arange(b, device=p2f.device) * f).view(b, 1, 1)
    face_index = torch.where(covered, p2f - offset, -1)
    bary_out = torch.where(covered[..., None], bary[..., 0, :], 0.0).to(dtype)
    zbuf_out = torch.where(covered, zbuf[..., 0], EMPTY_DEPTH).to(dtype)
    return Fragments(face_index, bary_out, zbuf_out)
