"""The annotation-fidelity targets (docs/annotation.md) pinned on a fixed seed of quickstart samples.

Each measure is computed here from the stored records with the rules docs/annotation.md states, not
with sfray's own code: a smooth jaw, flags that agree with the rendered surface, jaw points seen
with the camera above the head, and a quality gate that drops misaligned samples but not hair.
The thresholds are the targets; the margins below them were measured (docs/annotation.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The targets are stated at 256^2 (the contour's trace is read off the rendered z-buffer, so it is
#: coarser at lower resolutions); the gate checks run at 128^2 to stay quick.
RES = 256
GATE_RES = 128
#: 8 mm of head-model space in world units (docs/conventions.md).
SURFACE_TOLERANCE = 0.02


def _records(n: int, overrides: list[str], ids_from: int = 0, res: int = RES) -> list[dict]:
    from sfray.config.loader import load_config
    from sfray.config.schema import GenerateJobConfig
    from sfray.data.record import decode_record
    from sfray.generation.producer import SampleProducer

    cfg = load_config(GenerateJobConfig, ROOT / "configs/generate/quickstart.yaml",
                      ["seed=0", f"generate.resolution={res}", "generate.batch_size=8", *overrides])
    produced = SampleProducer(cfg, device="cpu").produce(np.arange(ids_from, ids_from + n), keep_dropped=True)
    return [decode_record(p.record) for p in produced]


@pytest.fixture(scope="module")
def quickstart() -> list[dict]:
    return _records(32, [])


def _angles(camera: np.ndarray) -> tuple[float, float]:
    c = camera[:16].astype(np.float64).reshape(4, 4)[:3, 3]
    return math.degrees(math.atan2(c[0], c[2])), math.degrees(math.atan2(c[1], math.hypot(c[0], c[2])))


def _surface_seen(r: dict) -> tuple[np.ndarray, np.ndarray]:
    lm, z, depth, mask = r["landmarks_2d"], r["landmarks_3d"][:, 2], r["depth"], r["mask"]
    inside = (lm[:, 0] >= 0) & (lm[:, 0] < RES) & (lm[:, 1] >= 0) & (lm[:, 1] < RES)
    seen = np.zeros(68, bool)
    for i in np.flatnonzero(inside):
        c, row = int(lm[i, 0]), int(lm[i, 1])
        block = (slice(max(row - 1, 0), row + 2), slice(max(c - 1, 0), c + 2))
        seen[i] = bool(np.any(mask[block] & (np.abs(depth[block] - z[i]) <= SURFACE_TOLERANCE)))
    return inside, seen


def test_jaw_contour_has_no_kinks(quickstart):
    ratios = []
    for r in quickstart:
        lm, vis = r["landmarks_2d"].astype(np.float64), r["landmarks_visible"]
        for k in range(1, 16):
            if vis[k - 1] and vis[k] and vis[k + 1]:
                chord = np.linalg.norm(lm[k + 1] - lm[k - 1])
                if chord > 3.0:
                    ratios.append(np.linalg.norm(lm[k] - 0.5 * (lm[k - 1] + lm[k + 1])) / chord)
    assert len(ratios) > 300
    assert np.percentile(ratios, 99) <= 0.3, np.percentile(ratios, 99)  # measured 0.28 here (0.65 before the fixes)


def test_visibility_flags_agree_with_the_stored_depth(quickstart):
    n_in = n_bad = 0
    for r in quickstart:
        inside, seen = _surface_seen(r)
        n_in += int(inside.sum())
        n_bad += int((inside & (seen != r["landmarks_visible"])).sum())
    assert n_in > 2000 and n_bad / n_in <= 0.02, (n_bad, n_in)  # measured 0.14 % here (5.3 % before the fixes)


def test_jaw_points_are_seen_from_above(quickstart):
    flags, above = [], 0
    for r in quickstart:
        yaw, el = _angles(r["camera"])
        if abs(yaw) < 20.0:
            _, seen = _surface_seen(r)
            flags.append((r["landmarks_visible"][:17].mean(), seen[:17].mean()))
            above += el > 17.0
    assert above >= 3 and len(flags) >= 10  # the seed covers the camera above the head
    mean = np.mean(flags, axis=0)
    assert mean[0] >= 0.9 and mean[1] >= 0.9, mean  # measured 1.0 / 1.0 here (0.73 / 0.62 before)


@pytest.mark.parametrize("overrides, dropped", [
    (["generator.procedural.hair_cap_prob=0.0"], False),
    (["generator.procedural.hair_cap_prob=1.0"], False),
    (["faults.misalign=[0,0,3,0,0,0,1]"], True),  # the weakest rotation (about the view axis)
    (["faults.misalign=[0,0,0,0.02,0,0,1]"], True),
    (["faults.misalign=[0,0,0,0,0,0,1.04]"], True),
])
def test_strict_gate_drops_misaligned_samples_not_hair(overrides, dropped):
    recs = _records(6, ["quality.preset=strict", *overrides], ids_from=100, res=GATE_RES)
    statuses = {r["status"] for r in recs}
    assert statuses == ({"dropped"} if dropped else {"ok"}), [(r["status"], r["quality"]["face_depth"]) for r in recs]
    if not dropped and "hair_cap_prob=1.0" in overrides[0]:
        assert min(r["quality"]["mask_iou"] for r in recs) < 0.95  # the hair the old mask gate dropped
