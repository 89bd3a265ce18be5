"""Design numbers of the procedural template head, in one place (metres, FLAME's frame).

FLAME's frame: y up, the face looks towards +z, x towards the subject's left. The numbers put the
features where FLAME's template has them (eyes near y = 0.03, nose tip near z = 0.075, neck cut
near y = -0.19), so the head->world constants of :mod:`sfray.conventions` frame both head kinds
alike. Positions are given for the subject's left side (+x); the right side is the mirror image.
"""

from __future__ import annotations

from typing import Final

import numpy as np

#: Ray origins of the radial head surface slide on the vertical line x = 0, z = ORIGIN_Z from
#: ORIGIN_TOP_Y (upper head) to ORIGIN_BOTTOM_Y (chin and neck); see ``surface.ray_origin``.
ORIGIN_Z: Final = -0.035
ORIGIN_TOP_Y: Final = 0.025
ORIGIN_BOTTOM_Y: Final = -0.035

# --- grid -------------------------------------------------------------------------------------
#: Columns around the vertical axis (even, so the front and the back each get one column).
N_COLUMNS: Final = 76
#: Slope of the azimuth warp at the front (< 1 crowds columns on the face).
FRONT_DENSITY: Final = 0.33
#: Polar angle of the mouth slit row (closed lips meet here).
THETA_MOUTH: Final = 2.01
#: Columns from the front column to each mouth corner.
MOUTH_CORNER_COLUMNS: Final = 8
#: Height of the neck cut plane, and the depth of the neck's vertical axis.
NECK_CUT_Y: Final = -0.19
NECK_AXIS_Z: Final = -0.048
#: Rings of the inner-mouth pouch between the upper and the lower lip (pouch rows = this - 1).
POUCH_RINGS: Final = 8
#: Depth (front to back) and height of the inner-mouth pouch behind the lips.
POUCH_DEPTH: Final = 0.036
POUCH_HEIGHT: Final = 0.024

# --- proportions (see proportions.py) -----------------------------------------------------------
#: Local vertical scale of the proportion warp at design heights, top-down (knots blended by
#: smoothsteps): 1 above the lower lids and the eyeballs, the nose and upper lip shortened most,
#: then the chin. With these, eye line -> mouth is ~7 cm and eye line -> chin ~12 cm (design: 8.2
#: and 13.6), typical adult proportions.
PROPORTION_SCALES: Final = np.array([
    [0.018, 1.00],
    [0.009, 0.825],
    [-0.044, 0.825],
    [-0.060, 0.925],
    [-0.112, 0.925],
])
#: Design heights between which the neck is stretched to keep the neck cut in place.
NECK_STRETCH_Y: Final = (-0.126, -0.178)

# --- eyes -------------------------------------------------------------------------------------
EYE_CENTRE: Final = np.array([0.0300, 0.031, 0.029])
EYE_RADIUS: Final = 0.0125
#: Half-width of the palpebral fissure and lid heights above / below the eye centre.
EYE_HALF_WIDTH: Final = 0.0122
EYE_UPPER_LID: Final = 0.0056
EYE_LOWER_LID: Final = 0.0044
#: The outer corner sits this much higher than the inner one (canthal tilt).
EYE_TILT: Final = 0.0016
#: How far the skin of the open palpebral fissure sits behind the eyeball surface.
EYE_SKIN_DEPTH: Final = 0.0022
#: Thickness of the lids over the eyeball.
LID_THICKNESS: Final = 0.0013
#: The lid surface is a sphere this much larger than the eyeball, tangent to it at the front.
LID_BULGE: Final = 0.0080

# --- ears -------------------------------------------------------------------------------------
EAR_CENTRE: Final = np.array([0.083, 0.008, -0.054])
EAR_HEIGHT: Final = 0.060
EAR_WIDTH: Final = 0.034
EAR_THICKNESS: Final = 0.0065
#: Angle between the ear plane and the side of the head (the back edge stands off), radians.
EAR_FLARE: Final = 0.50

# --- joints -----------------------------------------------------------------------------------
#: Where the jaw hinges (temporomandibular joint, on the subject's left side).
JAW_HINGE: Final = np.array([0.066, -0.008, -0.030])
