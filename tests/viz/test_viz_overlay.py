"""Overlays and contact sheets draw where they are told to."""

import numpy as np
import pytest

from sfray.conventions import BACKGROUND_ID, SEG_CLASSES, SEG_ID
from sfray.viz import colorize_depth, contact_sheet, draw_landmarks, overlay_segmentation, to_hwc
from sfray.viz.overlay import OCCLUDED_COLOR, VISIBLE_COLOR


def test_landmark_dots_colour_by_visibility():
    img = np.zeros((40, 40, 3), np.uint8)
    out = draw_landmarks(img, np.array([[10.0, 10.0], [30.0, 30.0]]), np.array([True, False]), radius=1)
    assert tuple(out[10, 10]) == VISIBLE_COLOR
    assert tuple(out[30, 30]) == OCCLUDED_COLOR
    assert out[20, 20].sum() == 0 and img.sum() == 0  # input untouched
    # scale maps annotation pixels onto a resized panel
    half = draw_landmarks(np.zeros((20, 20, 3), np.uint8), np.array([[30.0, 10.0]]), scale=0.5, radius=1)
    assert tuple(half[5, 15]) == VISIBLE_COLOR


def test_segmentation_overlay_only_on_foreground():
    img = np.full((4, 4, 3), 100, np.uint8)
    seg = np.full((4, 4), BACKGROUND_ID, np.uint8)
    seg[1, 1] = SEG_ID["nose"]
    out = overlay_segmentation(img, seg, alpha=1.0)
    assert tuple(out[1, 1]) == SEG_CLASSES[SEG_ID["nose"]].color
    assert (out[0, 0] == 100).all()


def test_depth_near_is_brighter_and_background_black():
    d = np.array([[0.0, 2.0, 3.0]], np.float32)
    out = colorize_depth(d)
    assert out[0, 0].sum() == 0
    assert out[0, 1].sum() > out[0, 2].sum()


def test_contact_sheet_size_and_layout():
    tiles = [np.full((10, 12, 3), v, np.uint8) for v in (10, 20, 30, 40, 50)]
    sheet = contact_sheet(tiles, ncols=2, pad=1)
    assert sheet.size == (2 * 13 + 1, 3 * 11 + 1)
    arr = np.asarray(sheet)
    assert tuple(arr[1, 1]) == (10, 10, 10) and tuple(arr[1 + 11, 1 + 13]) == (40, 40, 40)
    with pytest.raises(ValueError):
        contact_sheet([], ncols=2)


def test_to_hwc_accepts_chw():
    chw = np.zeros((3, 5, 7), np.uint8)
    assert to_hwc(chw).shape == (5, 7, 3)
