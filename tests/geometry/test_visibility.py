"""Point visibility against a hand-made z-buffer: the rendered surface must be the point's own."""

import torch

from sfray.geometry.visibility import landmark_visibility

INF = float("inf")


def _zbuf():
    z = torch.full((1, 12, 12), INF)
    z[0, 2:10, 2:10] = 1.0  # a square surface at depth 1
    z[0, 4:8, 4:8] = 0.5  # with a nearer 4x4 bump in the middle
    return z


def test_front_points_visible_hidden_points_not():
    pix = torch.tensor([[[2.5, 2.5], [6.0, 6.0], [6.0, 6.0], [2.6, 2.6]]])
    depth = torch.tensor([[1.0, 0.5, 1.0, 1.5]])  # on surface, on bump, behind bump, behind surface
    vis = landmark_visibility(pix, depth, _zbuf(), tolerance=0.01)
    assert vis.tolist() == [[True, True, False, False]]


def test_tolerance_is_a_depth_band_on_both_sides():
    pix = torch.tensor([[[6.0, 6.0], [6.0, 6.0], [6.0, 6.0]]])
    depth = torch.tensor([[0.52, 0.48, 0.6]])  # just behind, just in front of, well behind the bump
    assert landmark_visibility(pix, depth, _zbuf(), 0.0).tolist() == [[False, False, False]]
    assert landmark_visibility(pix, depth, _zbuf(), 0.05).tolist() == [[True, True, False]]


def test_one_pixel_of_reach_sees_the_outline():
    """A point on the bump's edge pixel sees the surface behind within its 3x3 block; two pixels
    inside the bump it does not."""
    behind = torch.tensor([[1.0, 1.0]])
    pix = torch.tensor([[[4.5, 6.5], [5.5, 6.5]]])  # the bump's first column, then its second
    assert landmark_visibility(pix, behind, _zbuf(), 0.01).tolist() == [[True, False]]
    # a window of 1 demands the point's own pixel
    assert landmark_visibility(pix, behind, _zbuf(), 0.01, window=1).tolist() == [[False, False]]


def test_outside_behind_camera_or_off_the_surface_invisible():
    pix = torch.tensor([[[-0.1, 4.0], [12.0, 4.0], [4.0, 12.2], [3.0, 3.0], [float("nan"), 3.0]]])
    depth = torch.tensor([[1.0, 1.0, 1.0, -1.0, 1.0]])
    assert not landmark_visibility(pix, depth, _zbuf(), 0.01).any()
    # nothing rendered near the point: no surface shows it
    assert not landmark_visibility(torch.tensor([[[0.5, 0.5]]]), torch.tensor([[3.0]]), _zbuf(), 0.1).any()
