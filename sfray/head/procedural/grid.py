"""The (row, column) sampling of the head skin: where the vertices go on the radial surface.

Rows run from the crown (row 0, a single pole vertex) down to the neck cut, columns around the
vertical axis. Both are warped so the face gets millimetre-scale spacing while the back of the head
stays coarse; one row lands exactly on the mouth slit, and the last rows bend per column so the
neck ends on the plane ``y = NECK_CUT_Y``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sfray.head.procedural import anatomy as A
from sfray.head.procedural import surface as S

#: Target row spacing (radians of polar angle) at control angles; face bands are the finest.
_ROW_CONTROL = np.array(
    [
        # theta, spacing
        [0.00, 0.140],
        [0.60, 0.100],
        [0.90, 0.060],
        [1.25, 0.042],
        [1.33, 0.026],
        [1.66, 0.026],
        [1.72, 0.030],
        [1.90, 0.030],
        [1.94, 0.025],
        [2.12, 0.025],
        [2.22, 0.040],
        [2.55, 0.055],
        [2.80, 0.080],
    ]
)
#: Polar angle where the neck rows start bending towards the cut plane.
THETA_NECK = 2.62
#: Rows between THETA_NECK and the cut.
NECK_ROWS = 5


@dataclass
class HeadGrid:
    """Vertex positions of the skin grid before the mouth is cut open.

    ``theta`` (R + 1, N) polar angle of each grid vertex (row 0 is the crown pole),
    ``phi`` (N,) column azimuths, ``points`` (R + 1, N, 3) template positions in metres,
    ``mouth_row`` the row index of the closed-lip line.
    """

    theta: np.ndarray
    phi: np.ndarray
    points: np.ndarray
    mouth_row: int

    @property
    def n_rows(self) -> int:
        return int(self.theta.shape[0])

    @property
    def n_cols(self) -> int:
        return int(self.phi.shape[0])


def _rows_between(t0: float, t1: float) -> np.ndarray:
    """Row angles from t0 to t1 (both included) following the spacing table."""
    fine = np.linspace(t0, t1, 2001)
    spacing = np.interp(fine, _ROW_CONTROL[:, 0], _ROW_CONTROL[:, 1])
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (1 / spacing[1:] + 1 / spacing[:-1]) * np.diff(fine))])
    n = max(int(round(cdf[-1])), 1)
    return np.interp(np.linspace(0.0, cdf[-1], n + 1), cdf, fine)


def row_thetas() -> tuple[np.ndarray, int]:
    """Row angles from the crown to THETA_NECK and the index of the mouth row."""
    upper = _rows_between(0.0, A.THETA_MOUTH)
    lower = _rows_between(A.THETA_MOUTH, THETA_NECK)
    return np.concatenate([upper, lower[1:]]), len(upper) - 1


def neck_end_theta(phi: np.ndarray) -> np.ndarray:
    """Per column, the polar angle where the base surface meets the plane y = NECK_CUT_Y."""
    lo = np.full(phi.shape, THETA_NECK)
    hi = np.full(phi.shape, np.pi - 0.02)
    for _ in range(22):
        mid = 0.5 * (lo + hi)
        d = S.directions(mid, phi)
        y = S.ray_origin(mid)[..., 1] + S.base_radius(S.ray_origin(mid), d) * d[..., 1]
        above = y > A.NECK_CUT_Y
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return 0.5 * (lo + hi)


def build_grid() -> HeadGrid:
    """Sample the skin on the warped (row, column) grid."""
    phi = S.column_phis()
    rows, mouth_row = row_thetas()
    end = neck_end_theta(phi)
    frac = np.linspace(0.0, 1.0, NECK_ROWS + 1)[1:, None]
    neck = THETA_NECK + frac * (end[None, :] - THETA_NECK)
    theta = np.concatenate([np.repeat(rows[:, None], phi.shape[0], axis=1), neck], axis=0)
    pphi = np.broadcast_to(phi[None, :], theta.shape)
    points = S.skin_points(theta, pphi)
    return HeadGrid(theta=theta, phi=phi, points=points, mouth_row=mouth_row)
