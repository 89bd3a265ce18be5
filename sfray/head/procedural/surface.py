"""The skin of the procedural head as a radial function of two angles.

A skin point is ``o(theta) + r(theta, phi) * d(theta, phi)`` with ``theta`` the polar angle from +y
and ``phi`` the azimuth from +z towards +x. The ray origin ``o`` slides down the vertical axis as
``theta`` grows, so rays meet the brow/eyelid overhang and the underside of nose and chin at
workable angles. ``r`` comes in layers, so the anatomy stays easy to read and to tune:

1. a smooth *base solid* (cranium, mid-face, jaw and neck blended by smooth minima), whose outer
   boundary along each ray is found by marching + bisection;
2. *features* added along the ray as heights over the base surface (nose, brows, eye sockets,
   cheekbones, lips, chin ...);
3. *eyelids*: around each eye the skin is laid onto a lid surface in front of the eyeball, except
   in the palpebral fissure, where it sinks just behind the eyeball so the eyeball shows.
"""

from __future__ import annotations

import numpy as np

from sfray.head.procedural import anatomy as A


def directions(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Unit ray directions ``(..., 3)`` for polar angle ``theta`` (from +y) and azimuth ``phi``."""
    st = np.sin(theta)
    return np.stack([st * np.sin(phi), np.cos(theta), st * np.cos(phi)], axis=-1)


def ray_origin(theta: np.ndarray) -> np.ndarray:
    """Ray origin ``(..., 3)`` for polar angle ``theta``: eye height for the upper head, lower below."""
    oy = A.ORIGIN_TOP_Y + (A.ORIGIN_BOTTOM_Y - A.ORIGIN_TOP_Y) * smoothstep(1.55, 2.45, theta)
    o = np.zeros(np.shape(theta) + (3,))
    o[..., 1] = oy
    o[..., 2] = A.ORIGIN_Z
    return o


def smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (blend radius ``k``): unions solids without a crease."""
    h = np.clip(k - np.abs(a - b), 0.0, None) / k
    return np.minimum(a, b) - h * h * k * 0.25


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at ``e0`` to 1 at ``e1`` (either order)."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _ellipsoid(p: np.ndarray, centre, axes, power: float = 2.0, power_y: float = 2.0,
               y_below: float | None = None) -> np.ndarray:
    """Approximate signed distance to a (super-)ellipsoid; powers > 2 square off the shape.

    ``y_below`` (optional) is a different y semi-axis for the half below the centre.
    """
    q = (p - np.asarray(centre)) / np.asarray(axes)
    if y_below is not None:
        q[..., 1] = np.where(q[..., 1] < 0.0, (p[..., 1] - centre[1]) / y_below, q[..., 1])
    horiz = (np.abs(q[..., 0]) ** power + np.abs(q[..., 2]) ** power) ** (power_y / power)
    k = (horiz + np.abs(q[..., 1]) ** power_y) ** (1.0 / power_y)
    return (k - 1.0) * float(np.min(axes))


def base_sdf(p: np.ndarray) -> np.ndarray:
    """Signed distance (approximate, metres) of the base solid: cranium + mid-face + jaw + neck."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    cranium = _ellipsoid(p, (0.0, 0.025, -0.042), (0.077, 0.102, 0.100), power=2.3, power_y=2.4, y_below=0.080)
    midface = _ellipsoid(p, (0.0, -0.020, -0.008), (0.066, 0.058, 0.061))
    # The jaw narrows towards the chin: scale x by a width that shrinks with depth below the mouth.
    taper = 1.0 - 0.40 * smoothstep(-0.045, -0.105, y)
    jaw_p = np.stack([x / taper, y, z], axis=-1)
    jaw = _ellipsoid(jaw_p, (0.0, -0.061, -0.010), (0.061, 0.046, 0.060), power_y=2.6)
    flare = 1.0 + 0.10 * smoothstep(-0.15, -0.21, y)
    neck_r = np.sqrt((x / (0.060 * flare)) ** 2 + ((z - A.NECK_AXIS_Z) / (0.058 * flare)) ** 2)
    neck = np.maximum((neck_r - 1.0) * 0.060, np.maximum(y + 0.02, -0.32 - y))
    head = smin(smin(cranium, midface, 0.022), jaw, 0.020)
    return smin(head, neck, 0.016)


def base_radius(origins: np.ndarray, dirs: np.ndarray, r_max: float = 0.30, step: float = 0.005) -> np.ndarray:
    """Distance from the ray origins to the outermost base-solid boundary along each ray ``(..., 3)``."""
    shape = dirs.shape[:-1]
    d = dirs.reshape(-1, 3)
    o = np.broadcast_to(origins, dirs.shape).reshape(-1, 3)
    r_out = np.full(d.shape[0], r_max)
    found = np.zeros(d.shape[0], dtype=bool)
    for r in np.arange(r_max, 0.0, -step):  # march inwards until the first inside sample
        inside = base_sdf(o + r * d) < 0.0
        newly = inside & ~found
        r_out[newly] = r
        found |= inside
        if found.all():
            break
    lo, hi = r_out.copy(), r_out + step
    for _ in range(26):
        mid = 0.5 * (lo + hi)
        inside = base_sdf(o + mid[:, None] * d) < 0.0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return (0.5 * (lo + hi)).reshape(shape)


def _gauss(x: np.ndarray, s: float) -> np.ndarray:
    return np.exp(-0.5 * (x / s) ** 2)


def nose_height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height of the nose over the base surface at frontal position (x, y), metres."""
    y_n, y_t, y_s = 0.033, -0.004, -0.021  # nasion, tip (pronasale), subnasale (on the base)
    t = np.clip((y_n - y) / (y_n - y_t), 0.0, 1.0)
    dorsum = 0.003 + 0.0125 * t ** 1.15
    below = np.clip((y_t - y) / (y_t - y_s), 0.0, 1.0)
    drop = np.sqrt(np.clip(1.0 - below ** 2.2, 0.0, 1.0))
    profile = np.where(y >= y_t, dorsum, 0.0155 * drop)
    profile = profile * smoothstep(y_n + 0.016, y_n - 0.004, y)
    half_w = 0.0058 + 0.0045 * t + 0.004 * below
    lateral = 1.0 / (1.0 + (x / half_w) ** 2) ** 1.6
    tip = 0.0030 * np.exp(-0.5 * ((x / 0.0075) ** 2 + ((y - y_t + 0.001) / 0.006) ** 2))
    alae = 0.0090 * np.exp(-0.5 * (((np.abs(x) - 0.0155) / 0.0058) ** 2 + ((y + 0.0150) / 0.0060) ** 2))
    return profile * lateral + tip + alae


def feature_height(p0: np.ndarray, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Sum of the facial features as heights along the ray over base point ``p0`` ``(..., 3)``."""
    x, y, z = p0[..., 0], p0[..., 1], p0[..., 2]
    ax = np.abs(x)
    front = smoothstep(-0.02, 0.03, z)  # features live on the face side only
    h = nose_height(x, y)
    # brow ridge and glabella
    brow_y = 0.047 + 0.004 * np.exp(-0.5 * ((ax - 0.028) / 0.018) ** 2)
    h = h + 0.0045 * _gauss(y - brow_y, 0.0075) * smoothstep(0.068, 0.045, ax)
    h = h + 0.002 * _gauss(x, 0.010) * _gauss(y - 0.043, 0.008)
    # eye sockets: bring the skin round the eye close to the lid surface (see lid_radius)
    ex, ey = A.EYE_CENTRE[0], A.EYE_CENTRE[1]
    sock = np.exp(-(((ax - ex + 0.001) / 0.0195) ** 2 + ((y - ey + 0.001) / 0.0160) ** 2) ** 1.5)
    h = h - 0.0125 * sock
    # cheekbones, mid-cheek hollow, temples
    h = h + 0.0055 * _gauss(ax - 0.046, 0.013) * _gauss(y - 0.003, 0.011)
    h = h - 0.0025 * _gauss(ax - 0.040, 0.010) * _gauss(y + 0.040, 0.012)
    h = h - 0.0030 * _gauss(ax - 0.062, 0.010) * _gauss(y - 0.045, 0.013)
    # maxilla / upper-lip bulge, philtrum groove, chin and labiomental groove
    h = h + 0.0040 * _gauss(x, 0.018) * _gauss(y + 0.036, 0.010)
    h = h + 0.0030 * _gauss(x, 0.024) * _gauss(y + 0.050, 0.016)
    h = h - 0.0012 * _gauss(x, 0.0028) * _gauss(y + 0.033, 0.005)
    h = h + 0.0140 * _gauss(x, 0.024) * _gauss(y + 0.090, 0.011)
    h = h - 0.0025 * _gauss(x, 0.016) * _gauss(y + 0.071, 0.0045)
    h = h + lip_height(theta, phi)
    return h * front


def lip_height(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Upper and lower vermilion as ridges above and below the mouth slit row (angle space).

    Lip heights and fullness shrink towards the corners, so both lips converge on the corner
    vertices; the two ridges leave a crease on the slit row where the lips meet.
    """
    phi_c = mouth_corner_phi()
    q = np.clip(1.0 - (phi / phi_c) ** 2, 0.0, None)
    dt = theta - A.THETA_MOUTH
    vu = dt / (0.070 * q ** 0.5 + 0.010)
    vl = dt / (0.085 * q ** 0.5 + 0.010)
    upper = 0.0048 * np.exp(-(((vu + 0.50) / 0.36) ** 2))
    lower = 0.0056 * np.exp(-(((vl - 0.50) / 0.38) ** 2))
    crease = -0.0018 * np.exp(-((dt / 0.014) ** 2))
    corner = -0.0020 * np.exp(-0.5 * (((np.abs(phi) - phi_c) / 0.05) ** 2 + (dt / 0.05) ** 2))
    return (upper + lower + crease) * q ** 0.9 + corner


def column_phis(n: int = A.N_COLUMNS, a: float = A.FRONT_DENSITY) -> np.ndarray:
    """Azimuth of each grid column ``(n,)``: column 0 is the back (-pi), column n/2 the front (0)."""
    s = -1.0 + 2.0 * np.arange(n) / n
    return np.pi * (a * s + (1.0 - a) * s ** 3)


def mouth_corner_phi() -> float:
    """Azimuth of the subject's left mouth corner (the right one is its negative)."""
    phis = column_phis()
    return float(phis[A.N_COLUMNS // 2 + A.MOUTH_CORNER_COLUMNS])


def eye_opening(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smooth 0..1 mask of the palpebral fissure of either eye at frontal position (x, y)."""
    u = (np.abs(x) - A.EYE_CENTRE[0]) / A.EYE_HALF_WIDTH  # +1 at the outer corner
    dy = y - A.EYE_CENTRE[1] - 0.5 * A.EYE_TILT * u
    height = np.where(dy >= 0.0, A.EYE_UPPER_LID, A.EYE_LOWER_LID)
    inner = 1.0 - u ** 2
    reach = height * np.sign(inner) * np.abs(inner) ** 0.75
    return smoothstep(-0.0012, 0.0012, reach - np.abs(dy))


def sphere_exit(origins: np.ndarray, dirs: np.ndarray, centre: np.ndarray,
                radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Far intersection distance of rays with a sphere (``-inf`` where they miss), and a 0..1
    weight that fades out as the ray nears the sphere's silhouette (1 well inside it)."""
    oc = origins - centre
    b = np.sum(dirs * oc, axis=-1)
    miss2 = np.sum(oc * oc, axis=-1) - b * b  # squared distance of the ray from the centre
    disc = radius * radius - miss2
    t = -b + np.sqrt(np.clip(disc, 0.0, None))
    inner = smoothstep(radius * radius, (0.85 * radius) ** 2, miss2)
    hit = (disc > 0.0) & (t > 0.0)
    return np.where(hit, t, -np.inf), inner * hit


def eye_centres() -> np.ndarray:
    """(2, 3): the subject's left (+x) and right eyeball centres, FLAME joint order."""
    left = A.EYE_CENTRE.copy()
    right = left * np.array([-1.0, 1.0, 1.0])
    return np.stack([left, right])


def orbit_window(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smooth 0..1 window of the lid area around either eye (1 on the lids, 0 on brow and cheek)."""
    dx = (np.abs(x) - A.EYE_CENTRE[0]) / 0.0150
    dy = y - A.EYE_CENTRE[1]
    dy = np.where(dy >= 0.0, dy / 0.0100, dy / 0.0085)
    rho = np.sqrt(dx * dx + dy * dy)
    return smoothstep(1.45, 1.0, rho)


def lid_radius(origins: np.ndarray, dirs: np.ndarray, r1: np.ndarray) -> np.ndarray:
    """Apply the eyelids to skin radius ``r1``.

    Around each eye the skin blends onto a *lid surface*: a sphere internally tangent to the
    eyeball at its front, a lid thickness in front of it and flatter, so it covers the eyeball
    and reaches past its silhouette. In the palpebral fissure the skin is instead kept just
    behind the eyeball (``EYE_SKIN_DEPTH``) so the eyeball shows; the lid margin, where the two
    cross, is a smooth curve because both follow spheres.
    """
    r = r1.copy()
    for side, centre in enumerate(eye_centres()):
        lid_centre = centre - np.array([0.0, 0.0, A.LID_BULGE])
        t_lid, lid_in = sphere_exit(origins, dirs, lid_centre, A.EYE_RADIUS + A.LID_BULGE + A.LID_THICKNESS)
        t_eye, eye_in = sphere_exit(origins, dirs, centre, A.EYE_RADIUS)
        on_lid, on_eye = np.isfinite(t_lid), np.isfinite(t_eye)
        p = origins + np.where(on_lid, t_lid, r1)[..., None] * dirs
        on_side = (p[..., 0] > 0.0) if side == 0 else (p[..., 0] < 0.0)
        win = orbit_window(p[..., 0], p[..., 1]) * on_side * lid_in
        r = r + win * (np.where(on_lid, t_lid, r) - r)
        q = origins + np.where(on_eye, t_eye, r1)[..., None] * dirs
        opening = eye_opening(q[..., 0], q[..., 1]) * on_side * eye_in
        r = (1.0 - opening) * r + opening * np.where(on_eye, t_eye - A.EYE_SKIN_DEPTH, r)
    return r


def skin_radius(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Final skin radius along the rays given by angle arrays of any (equal) shape."""
    o = ray_origin(theta)
    d = directions(theta, phi)
    r0 = base_radius(o, d)
    p0 = o + r0[..., None] * d
    r1 = r0 + feature_height(p0, theta, phi)
    return lid_radius(o, d, r1)


def skin_points(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Skin positions ``(..., 3)`` for angle arrays of any (equal) shape."""
    return ray_origin(theta) + skin_radius(theta, phi)[..., None] * directions(theta, phi)
