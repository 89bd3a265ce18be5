"""Landmark visibility against a hand-made z-buffer."""

import torch

from sfray.annotate.visibility import landmark_visibility

INF = float("inf")


def _zbuf():
    z = torch.full((1, 8, 8), INF)
    z[0, 2:6, 2:6] = 1.0  # a square surface at depth 1
    z[0, 3:5, 3:5] = 0.5  # with a nearer bump in the middle
    return z


def test_front_points_visible_hidden_points_not():
    pix = torch.tensor([[[2.5, 2.5], [4.0, 4.0], [4.0, 4.0], [2.6, 2.6]]])
    depth = torch.tensor([[1.0, 0.5, 1.0, 1.5]])  # on surface, on bump, behind bump, behind surface
    vis = landmark_visibility(pix, depth, _zbuf(), tolerance=0.01)
    assert vis.tolist() == [[True, True, False, False]]


def test_tolerance_and_edges():
    pix = torch.tensor([[[4.0, 4.0], [3.0, 4.0]]])
    # slightly behind the bump: hidden without slack, visible with it
    depth = torch.tensor([[0.52, 0.9]])
    assert landmark_visibility(pix, depth, _zbuf(), 0.0).tolist() == [[False, True]]
    assert landmark_visibility(pix, depth, _zbuf(), 0.05).tolist() == [[True, True]]


def test_outside_or_behind_camera_invisible():
    pix = torch.tensor([[[-0.1, 4.0], [8.0, 4.0], [4.0, 8.2], [1.0, 1.0], [float("nan"), 1.0]]])
    depth = torch.tensor([[1.0, 1.0, 1.0, -1.0, 1.0]])
    assert not landmark_visibility(pix, depth, _zbuf(), 0.01).any()
    # empty pixels count as far: a point over the background (e.g. on the silhouette) is visible
    assert landmark_visibility(torch.tensor([[[0.5, 0.5]]]), torch.tensor([[3.0]]), _zbuf(), 0.0).all()
