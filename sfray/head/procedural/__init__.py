"""The embedded procedural head: a FLAME stand-in built in code (docs/architecture.md).

``build_procedural_assets(seed)`` returns :class:`~sfray.head.assets.HeadAssets` with exactly
FLAME's layout (5 joints, LBS weights, shape/expression/pose bases, UVs, a 19-region UV label map,
a 68-point landmark embedding with a 79-row dynamic contour), in FLAME's frame and scale, so the
same head->world transform and cameras work for both head kinds. It is deterministic and pure
numpy/scipy: the template comes from fixed design numbers (:mod:`.anatomy`); ``seed`` only draws
the smooth random identity directions that follow the named ones.

Modules: :mod:`.surface` (the skin as a radial function), :mod:`.grid` (vertex sampling),
:mod:`.parts` (eyeballs, ears), :mod:`.mesh` (topology and UVs), :mod:`.proportions` (the
vertical warp from design space to the final template), :mod:`.skinning` (joints,
weights, pose correctives), :mod:`.bases` (blendshapes), :mod:`.labels` (label map, regions),
:mod:`.landmarks` (iBUG-68 embedding).
"""

from __future__ import annotations

import numpy as np

from sfray.conventions import JOINT_NAMES
from sfray.head.assets import HeadAssets
from sfray.head.procedural import bases, labels, landmarks, proportions, skinning
from sfray.head.procedural.grid import build_grid
from sfray.head.procedural.mesh import build_mesh

#: Bumped whenever the generated assets change, so datasets can record which head drew them.
PROCEDURAL_HEAD_VERSION = "procedural-head-v3"
#: Smooth random identity directions appended after the named ones.
N_RANDOM_SHAPE = 9

__all__ = ["PROCEDURAL_HEAD_VERSION", "build_procedural_assets"]


def build_procedural_assets(seed: int = 0) -> HeadAssets:
    """Build the procedural head's assets (about a second; bitwise identical for the same seed).

    Weights, bases, labels and the static landmarks are built on the design-space mesh; the
    proportion warp then maps positions and displacement fields to the final template, on which
    the contour landmarks (silhouettes, so geometry-dependent) are found.
    """
    design = build_mesh(build_grid())
    mesh = proportions.warp_mesh(design)
    weights = skinning.skinning_weights(design)
    jaw = weights[:, skinning.JAW]
    shape_names, shapedirs = bases.shape_basis(design, jaw, N_RANDOM_SHAPE, seed)
    expr_names, exprdirs = bases.expression_basis(design, jaw)
    vertex_labels = labels.vertex_labels(design)
    label_map = labels.build_label_map(design)
    warp = lambda d: proportions.warp_directions(design.vertices, d)  # noqa: E731
    source = (f"{PROCEDURAL_HEAD_VERSION} (sfray.head.procedural, seed={seed}): {mesh.vertices.shape[0]} vertices, "
              f"{len(shape_names)} shape [{', '.join(shape_names[:4])}, ...], "
              f"{len(expr_names)} expression [{', '.join(expr_names[:4])}, ...]")
    return HeadAssets(
        kind="procedural",
        source=source,
        v_template=mesh.vertices.astype(np.float64),
        faces=mesh.faces.astype(np.int64),
        shapedirs=warp(shapedirs),
        exprdirs=warp(exprdirs),
        posedirs=warp(skinning.pose_correctives(design, weights)),
        j_regressor=skinning.joint_regressor(design),
        parents=skinning.PARENTS.copy(),
        lbs_weights=weights,
        landmarks=landmarks.build_embedding(design, mesh, vertex_labels),
        uv_coords=mesh.uv_coords.astype(np.float64),
        uv_faces=mesh.uv_faces.astype(np.int64),
        uv_label_map=label_map,
        vertex_regions=labels.vertex_regions(vertex_labels),
        joint_names=tuple(JOINT_NAMES),
    )
