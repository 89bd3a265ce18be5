"""A JSON-ready description of a head model and its text rendering (``sfray inspect head``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sfray.conventions import NUM_CONTOUR_LANDMARKS, NUM_SEG_CLASSES, SEG_NAMES

if TYPE_CHECKING:
    from sfray.head.layer import HeadModel

CONTOUR_ROW_CONVENTION = ("y = -(head yaw) in degrees; row y for y in 0..39, row 39-y for y in -39..-1 "
                          "(RingNet/FLAME_PyTorch/DECA)")


def label_shares(label_map: np.ndarray) -> list[dict[str, Any]]:
    """Pixel share of every SEG class present in a UV label map, in id order."""
    lm = np.asarray(label_map)
    if lm.size == 0:
        return []
    counts = np.bincount(lm.reshape(-1).astype(np.int64), minlength=NUM_SEG_CLASSES)
    return [{"id": i, "name": SEG_NAMES[i], "pixels": int(c), "share": float(c) / lm.size}
            for i, c in enumerate(counts[:NUM_SEG_CLASSES]) if c > 0]


def head_summary(model: HeadModel) -> dict[str, Any]:
    """Vertex/face counts, joints, parameter dims, landmark embedding and label regions of ``model``."""
    lm_map = model.uv_label_map.detach().cpu().numpy()
    n_static = int(model.static_lmk_faces.numel())
    return {
        "kind": model.kind,
        "source": model.source,
        "dtype": str(model.dtype).replace("torch.", ""),
        "vertices": model.num_vertices,
        "faces": model.num_faces,
        "uv_vertices": int(model.uv_coords.shape[0]),
        "joints": [{"name": n, "parent": (model.joint_names[p] if p >= 0 else None)}
                   for n, p in zip(model.joint_names, model.parents_list)],
        "parameters": {
            "shape": model.n_shape, "shape_available": model.max_shape,
            "expression": model.n_expression, "expression_available": model.max_expression,
            "pose": 3 * model.num_joints,
        },
        "landmarks": {
            "available": bool(model.has_landmarks),
            "count": NUM_CONTOUR_LANDMARKS + n_static if model.has_landmarks else 0,
            "contour": int(model.dynamic_lmk_faces.shape[1]) if model.dynamic_lmk_faces.dim() == 2 else 0,
            "static": n_static,
            "dynamic_rows": int(model.dynamic_lmk_faces.shape[0]),
            "fixed": int(model.full_lmk_faces.numel()),
            "contour_rows": CONTOUR_ROW_CONVENTION,
        },
        "label_map": {"size": list(lm_map.shape), "regions": label_shares(lm_map)},
        "vertex_regions": {k: int(v.size) for k, v in sorted(model.vertex_regions.items())},
    }


def format_summary(s: dict[str, Any]) -> str:
    """Human-readable rendering of :func:`head_summary` (plus an optional ``missing`` dict)."""
    p, lm, lab = s["parameters"], s["landmarks"], s["label_map"]
    chain = ", ".join(f"{j['name']}<-{j['parent']}" if j["parent"] else j["name"] for j in s["joints"])
    lines = [
        f"head model: {s['kind']} ({s['source']})",
        f"  mesh:        {s['vertices']} vertices, {s['faces']} faces, {s['uv_vertices']} UV vertices",
        f"  joints:      {len(s['joints'])} ({chain})",
        f"  parameters:  shape {p['shape']}/{p['shape_available']}, expression {p['expression']}/"
        f"{p['expression_available']}, pose {p['pose']} (axis-angle per joint); dtype {s['dtype']}",
    ]
    if lm["available"]:
        lines.append(f"  landmarks:   {lm['count']} = {lm['contour']} contour + {lm['static']} static; "
                     f"{lm['fixed']} fixed")
        lines.append(f"  contour:     {lm['dynamic_rows']} yaw rows, {lm['contour_rows']}")
    else:
        lines.append("  landmarks:   none (no embedding loaded)")
    if lab["regions"]:
        h, w = lab["size"]
        lines.append(f"  label map:   {h}x{w} UV pixels, {len(lab['regions'])} classes")
        for r in lab["regions"]:
            lines.append(f"    {r['id']:>2} {r['name']:<20} {100 * r['share']:6.2f}%")
    else:
        lines.append("  label map:   none")
    if s["vertex_regions"]:
        lines.append("  vertex regions: " + ", ".join(f"{k} ({v})" for k, v in s["vertex_regions"].items()))
    for part, why in s.get("missing", {}).items():
        lines.append(f"  missing {part}: {why}")
    return "\n".join(lines)
