"""Pictures for humans: landmark and segmentation overlays, depth maps, contact sheets (PIL/numpy)."""

from sfray.viz.overlay import colorize_depth, colorize_segmentation, draw_landmarks, overlay_segmentation
from sfray.viz.panels import sample_panels
from sfray.viz.sheet import contact_sheet, titled_grid, to_hwc

__all__ = ["colorize_depth", "colorize_segmentation", "contact_sheet", "draw_landmarks",
           "overlay_segmentation", "sample_panels", "titled_grid", "to_hwc"]
