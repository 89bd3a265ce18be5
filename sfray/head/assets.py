"""The arrays that define a FLAME-layout head model, whatever their origin.

Both the FLAME loader (``generic_model.pkl`` + landmark embeddings + UV template + label map) and
the procedural head builder produce a :class:`HeadAssets`; :class:`sfray.head.layer.HeadModel`
turns one into a batched, differentiable FLAME layer. Keeping one container means one LBS
implementation and one landmark code path for both head kinds.

Shapes use V vertices, F faces, T UV vertices, J joints (5 for FLAME), S shape and E expression
components. Coordinates are in head-model space: metres, y up, the face looking towards +z.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LandmarkEmbedding:
    """Landmarks as (face index, barycentric coordinates) on the mesh, as RingNet/DECA store them.

    ``static_*``: the 51 non-contour landmarks (iBUG 17..67), (51,) and (51, 3).
    ``dynamic_*``: the 17 contour landmarks per yaw bin, (79, 17) and (79, 17, 3); RingNet/DECA's
    row order, with y = -(head yaw): row ``y`` for y in 0..39, row ``39 - y`` for y in
    -39..-1 (rows 40..78); see ``sfray.head.layer.dynamic_contour_rows``.
    ``full_*``: 68 fixed landmarks for 3D use, (68,) and (68, 3).
    """

    static_faces: np.ndarray
    static_bary: np.ndarray
    dynamic_faces: np.ndarray
    dynamic_bary: np.ndarray
    full_faces: np.ndarray
    full_bary: np.ndarray


@dataclass
class HeadAssets:
    """Everything a FLAME-compatible head layer needs. float64 arrays unless noted."""

    kind: str  # "flame" or "procedural"
    source: str  # path(s) or a description of how it was built
    v_template: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3) int64, outward normals by the right-hand rule
    shapedirs: np.ndarray  # (V, 3, S) identity basis
    exprdirs: np.ndarray  # (V, 3, E) expression basis
    posedirs: np.ndarray  # (V, 3, 9 * (J - 1)) pose-corrective basis
    j_regressor: np.ndarray  # (J, V) dense
    parents: np.ndarray  # (J,) int64, parents[0] == -1
    lbs_weights: np.ndarray  # (V, J)
    landmarks: LandmarkEmbedding
    uv_coords: np.ndarray  # (T, 2) in [0, 1], OBJ convention (t = 0 at the bottom of the image)
    uv_faces: np.ndarray  # (F, 3) int64 indices into uv_coords
    uv_label_map: np.ndarray  # (H, W) uint8 SEG_CLASSES ids; row 0 is the top of the UV image (t = 1)
    vertex_regions: dict[str, np.ndarray] = field(default_factory=dict)  # name -> vertex indices
    joint_names: tuple[str, ...] = ("global", "neck", "jaw", "left_eye", "right_eye")

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def num_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def num_expression(self) -> int:
        return int(self.exprdirs.shape[2])
