"""Identity and expression blendshapes of the procedural head.

Every direction is a smooth displacement field over 3D space (Gaussian or flat-topped windows
around an anatomical landmark times a direction), evaluated on the template vertices. Two rules keep
the bases well-behaved under any coefficients:

* eyeballs move rigidly with the field at their centre, so lids and eyeballs stay together;
* lip-specific fields read the jaw skinning weight as a "lower lip" indicator, so the upper and the
  lower lip can move apart although their slit vertices coincide.

Fields are either mirror-symmetric, antisymmetric, or come in left/right pairs built with the
vertex mirror map, so the basis set maps onto itself under x -> -x. Magnitudes are chosen so that
coefficients ~ N(0, 1) give millimetre-to-centimetre changes, as FLAME's do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from sfray.head.procedural import anatomy as A
from sfray.head.procedural import surface as S
from sfray.head.procedural.mesh import LEFT_EAR, LEFT_EYEBALL, RIGHT_EAR, RIGHT_EYEBALL, SKIN, ProceduralMesh

MIRROR = np.array([-1.0, 1.0, 1.0])
#: Parts that swap under x -> -x.
_MIRROR_PART = {LEFT_EYEBALL: RIGHT_EYEBALL, RIGHT_EYEBALL: LEFT_EYEBALL, LEFT_EAR: RIGHT_EAR, RIGHT_EAR: LEFT_EAR}


@dataclass
class Points:
    """Where a field is evaluated: positions ``p`` (n, 3) and the lower-lip indicator ``low`` (n,)."""

    p: np.ndarray
    low: np.ndarray

    @property
    def x(self) -> np.ndarray:
        return self.p[:, 0]

    @property
    def y(self) -> np.ndarray:
        return self.p[:, 1]

    @property
    def z(self) -> np.ndarray:
        return self.p[:, 2]


Field = Callable[[Points], np.ndarray]


def mirror_map(mesh: ProceduralMesh, tol: float = 1e-6) -> np.ndarray:
    """(V,) index of each vertex's mirror image (x -> -x) in the same or the swapped part.

    The lower-lip copies of the slit vertices coincide with the upper-lip originals, so they are
    matched among themselves.
    """
    v, part = mesh.vertices, mesh.part
    group = part.astype(np.int64).copy()
    group[mesh.lower_lip_ids] = -1
    swap = dict(_MIRROR_PART)
    out = np.full(v.shape[0], -1, dtype=np.int64)
    for code in np.unique(group):
        src = np.flatnonzero(group == code)
        dst = np.flatnonzero(group == swap.get(int(code), int(code)))
        dist, j = cKDTree(v[dst]).query(v[src] * MIRROR)
        if dist.max() > tol:
            raise AssertionError(f"template is not mirror-symmetric (part {code}: {dist.max():.2e} m)")
        out[src] = dst[j]
    return out


def _g(p: np.ndarray, centre, sigma) -> np.ndarray:
    """Anisotropic Gaussian window around ``centre`` (3,) with per-axis ``sigma`` (3,)."""
    d = (p - np.asarray(centre)) / np.asarray(sigma)
    return np.exp(-0.5 * np.sum(d * d, axis=-1))


def _flat(p: np.ndarray, centre, sigma) -> np.ndarray:
    """Flat-topped window: ~1 within ~0.7 sigma, then falling off smoothly."""
    d = (p - np.asarray(centre)) / np.asarray(sigma)
    return np.exp(-np.sum(d * d, axis=-1) ** 2)


def _abs(p: np.ndarray) -> np.ndarray:
    """Positions folded onto the subject's left (+x): windows built on them are symmetric."""
    return p * np.array([0.0, 1.0, 1.0]) + np.abs(p[:, :1]) * np.array([1.0, 0.0, 0.0])


def _d(q: Points, x=0.0, y=0.0, z=0.0) -> np.ndarray:
    """(n, 3) displacement from per-axis scalars or (n,) arrays."""
    out = np.zeros((q.p.shape[0], 3))
    out[:, 0], out[:, 1], out[:, 2] = x, y, z
    return out


def _w(q: Points, centre, sigma, fold: bool = False) -> np.ndarray:
    """Gaussian window; ``fold`` centres it on both sides (centre given for the subject's left)."""
    return _g(_abs(q.p) if fold else q.p, centre, sigma)


def _sx(q: Points, scale: float = 0.01) -> np.ndarray:
    """Smooth sign of x: +1 on the subject's left, -1 on the right, 0 on the midline."""
    return np.tanh(q.x / scale)


def _eye_window(q: Points, sx: float = 0.020, sy: float = 0.016) -> np.ndarray:
    return _flat(_abs(q.p), A.EYE_CENTRE, (sx, sy, 0.05))


def _nose_mask(q: Points) -> np.ndarray:
    return np.clip(S.nose_height(q.x, q.y) / 0.018, 0.0, 1.0) * S.smoothstep(0.0, 0.04, q.z)


def _mouth_window(q: Points) -> np.ndarray:
    return _g(q.p, (0.0, -0.052, 0.06), (0.030, 0.016, 0.03))


def _lip_window(q: Points, upper: bool) -> np.ndarray:
    side = (1.0 - q.low) if upper else q.low
    return side * _g(q.p, (0.0, -0.052, 0.06), (0.024, 0.011, 0.02))


# ---------------------------------------------------------------------------------------------
# identity directions (symmetric unless noted); amplitudes are 1 sd
# ---------------------------------------------------------------------------------------------


def _shape_fields() -> list[tuple[str, Field, str]]:
    """(name, field, symmetry) with symmetry 'sym', 'anti' or 'left' (paired with its mirror)."""
    f: list[tuple[str, Field, str]] = []

    def add(name: str, fn: Field, sym: str = "sym") -> None:
        f.append((name, fn, sym))

    front_face = lambda q: S.smoothstep(-0.06, 0.0, q.z)  # noqa: E731
    add("head_scale", lambda q: 0.035 * (q.p - np.array([0.0, -0.03, -0.03])))
    add("head_width", lambda q: _d(q, x=0.055 * q.x * S.smoothstep(-0.16, -0.04, q.y)))
    add("skull_length", lambda q: _d(q, z=-0.07 * np.clip(-0.02 - q.z, 0.0, None) * S.smoothstep(-0.08, 0.0, q.y)))
    add("skull_height", lambda q: _d(q, y=0.06 * np.clip(q.y - 0.03, 0.0, None)))
    add("face_length", lambda q: _d(q, y=0.07 * np.clip(q.y + 0.015, None, 0.0) * S.smoothstep(-0.16, -0.11, q.y)
                                     * front_face(q)))
    add("jaw_width", lambda q: _d(q, x=0.12 * q.x * _w(q, (0.0, -0.075, -0.01), (1.0, 0.022, 0.05))))
    add("chin_forward", lambda q: _d(q, z=0.0045 * _w(q, (0.0, -0.094, 0.05), (0.018, 0.014, 0.03))))
    add("chin_down", lambda q: _d(q, y=-0.004 * _w(q, (0.0, -0.10, 0.04), (0.022, 0.016, 0.04))))
    add("chin_width", lambda q: _d(q, x=0.15 * q.x * _w(q, (0.0, -0.095, 0.04), (0.03, 0.015, 0.04))))
    add("nose_length", lambda q: _d(q, y=-0.0035 * _nose_mask(q) * S.smoothstep(0.03, -0.005, q.y)))
    add("nose_projection", lambda q: _d(q, z=0.0040 * _nose_mask(q)))
    add("nose_width", lambda q: _d(q, x=0.18 * q.x * _w(q, (0.0, -0.015, 0.07), (0.022, 0.012, 0.03))))
    add("nose_bridge", lambda q: _d(q, z=0.0025 * _w(q, (0.0, 0.015, 0.07), (0.008, 0.012, 0.03))))
    add("nose_tip_lift", lambda q: _d(q, y=0.0025 * _w(q, (0.0, -0.012, 0.08), (0.012, 0.008, 0.02))))
    add("eye_spacing", lambda q: _d(q, x=0.0025 * _sx(q, 0.004) * _eye_window(q)))
    add("eye_height", lambda q: _d(q, y=0.0025 * _eye_window(q)))
    add("eye_depth", lambda q: _d(q, z=-0.0025 * _eye_window(q)))
    add("brow_ridge", lambda q: _d(q, z=0.0030 * _w(q, (0.028, 0.048, 0.06), (0.020, 0.008, 0.03), fold=True)))
    add("forehead_slope", lambda q: _d(q, z=-0.06 * np.clip(q.y - 0.05, 0.0, None) * S.smoothstep(-0.02, 0.04, q.z)))
    add("cheekbones", lambda q: _d(q, x=_sx(q), z=0.6) * 0.0035
        * _w(q, (0.050, 0.002, 0.03), (0.014, 0.013, 0.03), fold=True)[:, None])
    add("cheek_fullness", lambda q: _d(q, x=0.0040 * _sx(q)
                                       * _w(q, (0.050, -0.045, 0.02), (0.015, 0.018, 0.03), fold=True)))
    add("upper_lip_thickness", lambda q: 0.0018 * _lip_window(q, True)[:, None] * np.array([0.0, 0.5, 1.0]))
    add("lower_lip_thickness", lambda q: 0.0022 * _lip_window(q, False)[:, None] * np.array([0.0, -0.5, 1.0]))
    add("mouth_width", lambda q: _d(q, x=0.12 * q.x * _mouth_window(q)))
    add("mouth_height", lambda q: _d(q, y=0.0030 * _mouth_window(q)))
    add("ear_size", lambda q: 0.12 * _ear_offset(q.p) * _ear_window(q)[:, None])
    add("ear_protrusion", lambda q: _d(q, x=0.004 * _sx(q) * _ear_window(q) * S.smoothstep(-0.03, -0.07, q.z)))
    add("ear_height", lambda q: _d(q, y=0.003 * _ear_window(q)))
    add("neck_width", lambda q: 0.10 * _d(q, x=q.x, z=q.z - A.NECK_AXIS_Z) * S.smoothstep(-0.09, -0.15, q.y)[:, None])
    add("midface_depth", lambda q: _d(q, z=0.0035 * _w(q, (0.0, -0.02, 0.06), (0.035, 0.03, 0.04))))
    add("jaw_angle", lambda q: _d(q, x=_sx(q), y=-0.5) * 0.0040
        * _w(q, (0.055, -0.08, -0.035), (0.012, 0.015, 0.015), fold=True)[:, None])
    add("temples", lambda q: _d(q, x=0.0030 * _sx(q) * _w(q, (0.068, 0.05, 0.0), (0.01, 0.02, 0.025), fold=True)))
    add("occiput", lambda q: _d(q, z=-0.0045 * _w(q, (0.0, 0.0, -0.14), (0.05, 0.04, 0.03))))
    add("nose_deviation", lambda q: _d(q, x=0.0018 * _nose_mask(q)), "anti")
    add("chin_deviation", lambda q: _d(q, x=0.0025 * _w(q, (0.0, -0.095, 0.04), (0.03, 0.02, 0.04))), "anti")
    add("mouth_tilt", lambda q: _d(q, y=0.10 * q.x * _mouth_window(q)), "anti")
    add("eye_height_asym", lambda q: _d(q, y=0.0015 * _sx(q, 0.004) * _eye_window(q)), "anti")
    add("cheek_left", lambda q: _d(q, x=0.0030 * _w(q, (0.052, -0.03, 0.02), (0.015, 0.02, 0.03))), "left")
    add("jaw_left", lambda q: _d(q, x=0.0030 * _w(q, (0.05, -0.08, -0.02), (0.015, 0.02, 0.03))), "left")
    return f


def _ear_window(q: Points) -> np.ndarray:
    return _g(_abs(q.p), A.EAR_CENTRE, (0.016, 0.03, 0.02))


def _ear_offset(p: np.ndarray) -> np.ndarray:
    """Offset of each point from the centre of the ear on its side."""
    centre = np.where(p[:, :1] >= 0.0, A.EAR_CENTRE, A.EAR_CENTRE * MIRROR)
    return p - centre


# ---------------------------------------------------------------------------------------------
# expression directions
# ---------------------------------------------------------------------------------------------


def _corner(q: Points, side: float) -> np.ndarray:
    """Window around the mouth corner on the subject's left (side=+1) or right (-1)."""
    return _g(q.p, (side * 0.026, -0.052, 0.045), (0.012, 0.012, 0.025))


def _expression_fields() -> list[tuple[str, Field, str]]:
    f: list[tuple[str, Field, str]] = []

    def add(name: str, fn: Field, sym: str = "sym") -> None:
        f.append((name, fn, sym))

    def corners(q: Points, d: tuple[float, float, float]) -> np.ndarray:
        w = _corner(q, 1.0) + _corner(q, -1.0)
        return w[:, None] * _d(q, x=_sx(q) * d[0], y=d[1], z=d[2])

    ex, ey = A.EYE_CENTRE[0], A.EYE_CENTRE[1]
    add("smile", lambda q: corners(q, (0.0035, 0.0045, -0.0030))
        + _d(q, y=0.0015 * _w(q, (0.04, -0.02, 0.04), (0.014, 0.014, 0.03), fold=True)))
    add("mouth_corners_down", lambda q: corners(q, (0.001, -0.0045, -0.001)))
    add("lip_stretch", lambda q: corners(q, (0.0050, 0.0, -0.0015)))
    add("pucker", lambda q: _mouth_window(q)[:, None] * _d(q, x=-0.12 * q.x, z=0.0045))
    add("upper_lip_raise", lambda q: _lip_window(q, True)[:, None] * np.array([0.0, 0.0035, 0.0008])
        + _d(q, y=0.0020 * (1.0 - q.low) * _w(q, (0.0, -0.038, 0.06), (0.018, 0.010, 0.03))))
    add("lower_lip_depress", lambda q: _lip_window(q, False)[:, None] * np.array([0.0, -0.0035, 0.0005]))
    add("lips_part", lambda q: _mouth_window(q)[:, None] * _d(q, y=0.0022 * (1.0 - 2.0 * q.low)))
    add("lips_press", lambda q: _mouth_window(q)[:, None] * np.array([0.0, 0.0, -0.0030]))
    add("cheek_puff", lambda q: _d(q, x=_sx(q), z=0.5) * 0.0045
        * _w(q, (0.042, -0.045, 0.03), (0.014, 0.016, 0.03), fold=True)[:, None])
    add("nose_wrinkle", lambda q: _d(q, y=0.0025 * _w(q, (0.012, -0.005, 0.06), (0.01, 0.014, 0.03), fold=True)))
    add("brow_furrow", lambda q: _d(q, x=-0.0025 * _sx(q, 0.006), y=-0.0030)
        * _w(q, (0.016, 0.046, 0.06), (0.010, 0.009, 0.03), fold=True)[:, None])
    add("eyes_wide", lambda q: _d(q, y=0.0018 * _w(q, (ex, ey + 0.009, 0.04), (0.012, 0.004, 0.03), fold=True)))
    add("squint", lambda q: _d(q, y=0.0018 * _w(q, (ex, ey - 0.009, 0.04), (0.012, 0.004, 0.03), fold=True)))
    add("brow_raise_left", lambda q: _d(q, y=0.0050 * _w(q, (0.030, 0.055, 0.05), (0.020, 0.014, 0.04))), "left")
    add("smile_left", lambda q: _corner(q, 1.0)[:, None] * np.array([0.003, 0.004, -0.003]), "left")
    add("sneer_left", lambda q: _d(q, y=0.0030 * _w(q, (0.016, -0.02, 0.06), (0.009, 0.014, 0.03))), "left")
    add("mouth_shift", lambda q: _d(q, x=0.0040 * _mouth_window(q)), "anti")
    return f


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------


def _evaluate(fn: Field, mesh: ProceduralMesh, low: np.ndarray) -> np.ndarray:
    """Field on all vertices; eyeballs take the value at their centre (rigid motion)."""
    d = fn(Points(mesh.vertices, low))
    centres = S.eye_centres()
    for code, centre in ((LEFT_EYEBALL, centres[0]), (RIGHT_EYEBALL, centres[1])):
        d[mesh.part == code] = fn(Points(centre[None], np.zeros(1)))[0]
    return d


def _expand(fields: list[tuple[str, Field, str]], mesh: ProceduralMesh, low: np.ndarray,
            mirror: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Evaluate fields; symmetrise 'sym'/'anti' ones exactly and add the mirror of each 'left' one."""
    names, out = [], []
    for name, fn, sym in fields:
        d = _evaluate(fn, mesh, low)
        m = d[mirror] * MIRROR
        if sym == "sym":
            out.append(0.5 * (d + m))
            names.append(name)
        elif sym == "anti":
            out.append(0.5 * (d - m))
            names.append(name)
        else:
            out += [d, m]
            names += [name, name.replace("left", "right")]
    return names, out


def eye_closure(mesh: ProceduralMesh, side: int) -> np.ndarray:
    """(V, 3) displacement closing one eye (side 0: the subject's left, +x).

    The upper lid slides down and the lower lid up until the margins meet on a closure line a
    third of the way down the opening; skin between the margins and the lid creases is stretched
    accordingly, and everything in that zone is laid onto the lid surface in front of the eyeball.
    Landmarks on the lid margins therefore close too.
    """
    p = mesh.vertices * (MIRROR if side == 1 else 1.0)  # work on the left eye; mirror back at the end
    x, y = p[:, 0], p[:, 1]
    ex, ey, _ = A.EYE_CENTRE
    u = np.clip((x - ex) / A.EYE_HALF_WIDTH, -1.0, 1.0)
    reach = (1.0 - u * u) ** 0.75
    mid = ey + 0.5 * A.EYE_TILT * u
    top, bottom = mid + A.EYE_UPPER_LID * reach, mid - A.EYE_LOWER_LID * reach
    closure = mid - 0.35 * A.EYE_LOWER_LID * reach
    crease_up, crease_down = ey + 0.0130, ey - 0.0090
    # piecewise-linear warp of y: [top, crease_up] -> [closure, crease_up], the opening -> closure,
    # [crease_down, bottom] -> [crease_down, closure]
    stretch_up = (y - top) * (crease_up - closure) / (crease_up - top)
    stretch_down = (bottom - y) * (closure - crease_down) / (bottom - crease_down)
    y_new = np.where((y > closure) & (y < crease_up), closure + np.clip(stretch_up, 0.0, None), y)
    y_new = np.where((y <= closure) & (y > crease_down), closure - np.clip(stretch_down, 0.0, None), y_new)
    u_raw = (x - ex) / A.EYE_HALF_WIDTH
    zone = (mesh.part == SKIN) & (p[:, 2] > 0.0) & (np.abs(u_raw) < 1.3) & (y > crease_down) & (y < crease_up)
    opening = zone & (np.abs(u_raw) < 1.0) & (y < top) & (y > bottom)
    lid_c = A.EYE_CENTRE - np.array([0.0, 0.0, A.LID_BULGE])
    lid_r = A.EYE_RADIUS + A.LID_BULGE + A.LID_THICKNESS

    def z_lid(yy: np.ndarray) -> np.ndarray:
        return lid_c[2] + np.sqrt(np.clip(lid_r ** 2 - (x - lid_c[0]) ** 2 - (yy - lid_c[1]) ** 2, 0.0, None))

    # lids slide along the lid surface; the skin of the opening comes forward onto it, and so does
    # any skin the open fissure had sunk behind the eyeball (at the margins the sinking fades out
    # over a millimetre or so): a closed lid never lies below the lid surface, so the eyeball
    # cannot show through it, whatever way it looks
    above_lid = np.where(opening, 0.0, np.clip(p[:, 2] - z_lid(y), 0.0, None))
    dz = z_lid(y_new) + above_lid - p[:, 2]
    d = np.zeros_like(p)
    d[zone, 1] = (y_new - y)[zone]
    d[zone, 2] = dz[zone]
    return d * (MIRROR if side == 1 else 1.0)


def random_fields(mesh: ProceduralMesh, low: np.ndarray, mirror: np.ndarray, count: int,
                  seed: int) -> list[np.ndarray]:
    """``count`` smooth random identity fields, alternately symmetric and antisymmetric, decaying."""
    rng = np.random.default_rng(seed)
    skin = mesh.vertices[mesh.part == SKIN]
    out = []
    for k in range(count):
        centres = skin[rng.integers(0, skin.shape[0], size=3)]
        vecs = rng.normal(size=(3, 3))
        sig = rng.uniform(0.015, 0.035, size=3)

        def fn(q: Points, c=centres, v=vecs, s=sig) -> np.ndarray:
            return sum(_g(q.p, c[i], (s[i],) * 3)[:, None] * v[i] for i in range(3))

        d = _evaluate(fn, mesh, low)
        m = d[mirror] * MIRROR
        d = 0.5 * (d + m) if k % 2 == 0 else 0.5 * (d - m)
        peak = np.abs(d).max()
        out.append(d * (0.0025 * 0.97 ** k / max(peak, 1e-12)))
    return out


def shape_basis(mesh: ProceduralMesh, jaw_weight: np.ndarray, n_random: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Names and ``(V, 3, S)`` identity directions: the named fields, then ``n_random`` random ones."""
    mirror = mirror_map(mesh)
    names, dirs = _expand(_shape_fields(), mesh, jaw_weight, mirror)
    extra = random_fields(mesh, jaw_weight, mirror, n_random, seed)
    names += [f"random_{k}" for k in range(n_random)]
    return names, np.stack(dirs + extra, axis=-1)


def expression_basis(mesh: ProceduralMesh, jaw_weight: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Names and ``(V, 3, E)`` expression directions (blinks first, then the named fields)."""
    mirror = mirror_map(mesh)
    names, dirs = _expand(_expression_fields(), mesh, jaw_weight, mirror)
    return ["blink_left", "blink_right"] + names, np.stack([eye_closure(mesh, 0), eye_closure(mesh, 1)] + dirs, axis=-1)
