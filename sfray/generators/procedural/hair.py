"""The optional hair cap: a thin shell over the scalp region, rendered in the image only.

A bald head with a painted scalp has no hair volume at all; real hair (and Next3D's) sticks out of
the mesh. The shell is a copy of the scalp faces pushed out along the vertex normals, tapering to
zero at the hairline so it meets the skin there. It belongs to the *generator's* geometry (it
shows in the image, the generator's depth and mask) and never to the head mesh, so the
annotation (mask, segmentation, landmarks) is unchanged by it: hair outside the scalp is not
labelled, exactly as in SynthForge where the label comes from the FLAME mesh alone.
"""

from __future__ import annotations

import numpy as np
import torch

from sfray.conventions import SEG_ID


class HairShell:
    """Precomputed shell topology for one head: which faces, and each vertex's taper weight."""

    def __init__(self, faces: np.ndarray, face_region: np.ndarray, num_vertices: int, taper_rings: int = 2):
        faces = np.asarray(faces, dtype=np.int64)
        scalp = np.asarray(face_region) == SEG_ID["scalp"]
        self.faces = torch.as_tensor(faces[scalp])  # (Fs, 3) indices of the head's vertices
        self.source_faces = torch.as_tensor(np.nonzero(scalp)[0])  # (Fs,) head face each copies
        self.vertices = torch.as_tensor(np.unique(faces[scalp]))  # (Vs,) head vertices used
        # a vertex touching any non-scalp face is on the hairline: weight 0 there, rising inwards
        touches_other = np.zeros(num_vertices, dtype=bool)
        touches_other[faces[~scalp].reshape(-1)] = True
        w = np.zeros(num_vertices, dtype=np.float64)
        w[self.vertices.numpy()] = 1.0
        w[touches_other] = 0.0
        sf = faces[scalp]
        for _ in range(taper_rings):  # average over the scalp faces around each vertex
            acc = np.zeros(num_vertices)
            cnt = np.zeros(num_vertices)
            face_mean = w[sf].mean(axis=1)
            for k in range(3):
                np.add.at(acc, sf[:, k], face_mean)
                np.add.at(cnt, sf[:, k], 1.0)
            w = np.where(cnt > 0, acc / np.maximum(cnt, 1), 0.0)
            w[touches_other] = 0.0
        w = w / max(w.max(), 1e-12)
        self.weight = torch.as_tensor(w * w * (3.0 - 2.0 * w), dtype=torch.float32)  # smoothstep
        self.available = bool(scalp.any())

    def shell_faces(self, num_vertices: int) -> torch.Tensor:
        """(Fs, 3) shell faces indexing the shell block of :meth:`build`'s vertices (head first)."""
        return self.faces + num_vertices

    def build(self, vertices: torch.Tensor, normals: torch.Tensor, thickness: torch.Tensor) -> torch.Tensor:
        """Head vertices (B, V, 3) followed by the shell's (B, 2V, 3); pair with :meth:`shell_faces`.

        ``thickness`` (B,) in the units of ``vertices``; a sample with thickness <= 0 gets NaN
        shell vertices, which the rasterizer skips (no cap for that sample).
        """
        w = self.weight.to(vertices.device, vertices.dtype)[None, :, None]
        t = thickness.to(vertices.device, vertices.dtype)[:, None, None]
        shell = vertices + normals * w * t
        shell = torch.where(t > 0, shell, torch.full_like(shell, float("nan")))
        return torch.cat([vertices, shell], dim=1)
