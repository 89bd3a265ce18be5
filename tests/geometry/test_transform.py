"""Head -> world transform, the alignment map and the misalign similarity."""

import math

import numpy as np
import pytest
import torch

from sfray.conventions import ORTH_SCALE, ORTH_SHIFT, WORLD_Z_OFFSET
from sfray.errors import AssetError
from sfray.geometry.alignment_map import AlignmentMap
from sfray.geometry.transform import head_to_world_matrix, similarity_matrix, transform_points


def test_head_to_world_matches_the_release_formula():
    rng = np.random.default_rng(0)
    p = rng.normal(scale=0.1, size=(2, 7, 3))
    m = head_to_world_matrix(2, dtype=torch.float64)
    assert m.shape == (2, 4, 4)
    got = transform_points(m, torch.as_tensor(p)).numpy()
    want = (p + np.array(ORTH_SHIFT)) * ORTH_SCALE / 2 + np.array([0.0, 0.0, WORLD_Z_OFFSET])
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_alignment_identity_and_apply():
    a = AlignmentMap()
    assert a.is_identity
    pts = torch.randn(3, 5, 3)
    assert torch.equal(a.apply(pts), pts)
    shift = torch.eye(4, dtype=torch.float64)
    shift[:3, 3] = torch.tensor([0.1, -0.2, 0.3])
    b = AlignmentMap(shift)
    assert not b.is_identity
    torch.testing.assert_close(b.apply(pts), pts + torch.tensor([0.1, -0.2, 0.3]))
    # compose == apply after mesh_to_world
    m = head_to_world_matrix(3, dtype=torch.float64)
    via_compose = transform_points(b.compose(m), pts.double())
    via_apply = b.apply(transform_points(m, pts.double()))
    torch.testing.assert_close(via_compose, via_apply)


def test_alignment_rejects_non_affine():
    bad = torch.eye(4)
    bad[3, 0] = 1.0
    with pytest.raises(AssetError, match="last row"):
        AlignmentMap(bad)
    with pytest.raises(AssetError, match="4x4"):
        AlignmentMap(torch.eye(3))


def test_similarity_rotation_scale_translation():
    assert torch.equal(similarity_matrix([0, 0, 0, 0, 0, 0, 1]), torch.eye(4, dtype=torch.float64))
    m = similarity_matrix([0, 90, 0, 1.0, 2.0, 3.0, 2.0])
    # +90 deg about y maps +x to -z (right-handed), then scale 2, then translate
    p = transform_points(m, torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(p, torch.tensor([[1.0, 2.0, 1.0]], dtype=torch.float64))
    r = m[:3, :3] / 2.0
    torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=torch.float64))
    assert math.isclose(float(torch.linalg.det(r)), 1.0, abs_tol=1e-12)
