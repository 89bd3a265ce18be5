"""The one place for sfray's conventions, described in prose in docs/conventions.md.

Every module that touches cameras, pixels, landmarks, segmentation labels, depth or record
field names imports its constants from here; nothing else spells them out again.

Camera label ``c`` (EG3D/Next3D): 16 numbers of the 4x4 cam2world matrix (row-major; camera axes
OpenCV: x right, y down, z forward; world y up, frontal camera on +z), then 9 numbers of the
intrinsics normalised by image size ``[[f, 0, cx], [0, f, cy], [0, 0, 1]]``.

Pixels: ``(x, y)``; ``(0, 0)`` is the top-left corner of the top-left pixel, so pixel centres sit
at ``+0.5``. A normalised image coordinate ``u`` in [0, 1] maps to pixel ``u * size``.

Depth: camera-space z (distance along the optical axis) in generator world units, float32 in
memory, float16 on disk, always paired with a boolean foreground mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Final

import numpy as np

# --------------------------------------------------------------------------------------------
# Cameras (EG3D / Next3D)
# --------------------------------------------------------------------------------------------
CAMERA_LABEL_DIM: Final = 25
#: EG3D's FOV_to_intrinsics divides by 1.414 (not 2): f = 1 / (1.414 * tan(fov / 2)).
EG3D_FOV_DIVISOR: Final = 1.414
#: Normalised focal length of the FFHQ labels (EG3D "fov" 18.837 degrees).
FFHQ_FOCAL: Final = 4.2647
FFHQ_FOV_DEG: Final = 18.837
DEFAULT_CAMERA_RADIUS: Final = 2.7
DEFAULT_CAMERA_PIVOT: Final = (0.0, 0.0, 0.2)

# --------------------------------------------------------------------------------------------
# Head model space -> generator world.
# The SynthForge release's annotation transform (docs/synthforge.md), also the procedural
# renderer's: world = (p + ORTH_SHIFT) * ORTH_SCALE / 2 + (0, 0, WORLD_Z_OFFSET)
# (``sfray.geometry.transform.head_to_world_matrix``). Next3D's network itself samples the mesh
# 0.02 m higher (its y flip turns the -0.01 shift into +0.01: ``sfray.generators.next3d.world``),
# so a Next3D generator reports that geometry as ``mesh_to_world`` and the release transform as
# ``extras["mesh_to_world_synthforge"]`` (the base the authors' ``fixMapMLP01.pth`` was fitted on).
# --------------------------------------------------------------------------------------------
ORTH_SCALE: Final = 5.0
ORTH_SHIFT: Final = (0.0, -0.01, -0.01)
WORLD_Z_OFFSET: Final = math.sqrt(2.0) / 10.0
#: Generator world units per head-model metre (the scale of that similarity): depth and every
#: world-unit figure divide by it to give head-model metres.
WORLD_UNITS_PER_METRE: Final = ORTH_SCALE / 2.0
#: A landmark is visible when its 3x3 pixel block shows the mesh within this depth of it: 8 mm of
#: head-model space, 0.02 world units (docs/conventions.md).
VISIBILITY_TOLERANCE: Final = 0.02

# --------------------------------------------------------------------------------------------
# Head model (FLAME layout)
# --------------------------------------------------------------------------------------------
FLAME_NUM_VERTICES: Final = 5023
FLAME_NUM_FACES: Final = 9976
FLAME_MAX_SHAPE: Final = 300
FLAME_MAX_EXPRESSION: Final = 100
#: Joint order of FLAME's kinematic tree.
JOINT_NAMES: Final = ("global", "neck", "jaw", "left_eye", "right_eye")
#: Full pose is 15 axis-angle numbers, one triple per joint in JOINT_NAMES order.
POSE_DIM: Final = 3 * len(JOINT_NAMES)
#: FLAME's dynamic contour table covers head yaw in [-39, 39] degrees, one row per degree.
DYNAMIC_CONTOUR_MAX_DEG: Final = 39

# --------------------------------------------------------------------------------------------
# Landmarks: iBUG-300W 68-point order (0-based)
# --------------------------------------------------------------------------------------------
NUM_LANDMARKS: Final = 68
LANDMARK_GROUPS: Final = {
    "jaw": tuple(range(0, 17)),  # subject's right (image left in a frontal view) -> left
    "right_brow": tuple(range(17, 22)),
    "left_brow": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nostrils": tuple(range(31, 36)),
    "right_eye": tuple(range(36, 42)),
    "left_eye": tuple(range(42, 48)),
    "outer_lip": tuple(range(48, 60)),
    "inner_lip": tuple(range(60, 68)),
}
#: Number of contour (dynamic) landmarks; they come first in the 68 (0..16).
NUM_CONTOUR_LANDMARKS: Final = 17
#: Outer eye corners used for inter-ocular normalisation (NME).
OUTER_EYE_CORNERS: Final = (36, 45)
NOSE_TIP: Final = 30


def _ibug68_mirror() -> tuple[int, ...]:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lip
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lip
    perm = list(range(NUM_LANDMARKS))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


#: ``flipped[i] = original[IBUG68_MIRROR[i]]`` after a horizontal image flip.
IBUG68_MIRROR: Final = _ibug68_mirror()

# --------------------------------------------------------------------------------------------
# Segmentation: the 19 regions of the FLAME UV label map + background (docs/conventions.md).
# "left"/"right" are the subject's: the subject's right ear renders on the image left.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegClass:
    id: int
    name: str
    color: tuple[int, int, int]  # RGB in the authors' flame_seg_tex.png


def _hex(c: str) -> tuple[int, int, int]:
    return (int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16))


SEG_CLASSES: Final = tuple(
    SegClass(i, name, _hex(color))
    for i, (name, color) in enumerate(
        [
            ("face", "#f5dccb"),
            ("forehead", "#440f85"),
            ("eye_region", "#9dab3b"),
            ("neck", "#e4f18f"),
            ("right_eye_region", "#757ae4"),
            ("left_eye_region", "#e5a5e7"),
            ("right_eyeball", "#0000ff"),
            ("left_eyeball", "#f600ff"),
            ("left_eyebrow", "#8fa9d3"),
            ("right_eyebrow", "#d38f8f"),
            ("eye_region+forehead", "#656b38"),
            ("left_ear", "#00ff3c"),
            ("right_ear", "#fcff00"),
            ("lower_lip", "#008880"),
            ("upper_lip", "#d91717"),
            ("inner_mouth", "#002f99"),
            ("nose", "#c602ac"),
            ("scalp", "#683516"),
            ("neck_back", "#50443d"),
            ("background", "#000000"),
        ]
    )
)
SEG_NAMES: Final = tuple(c.name for c in SEG_CLASSES)
SEG_ID: Final = {c.name: c.id for c in SEG_CLASSES}
NUM_SEG_CLASSES: Final = len(SEG_CLASSES)  # 20, background included
BACKGROUND_ID: Final = SEG_ID["background"]  # 19
#: (NUM_SEG_CLASSES, 3) uint8 RGB palette indexed by class id (read-only; background black).
SEG_PALETTE: Final = np.array([c.color for c in SEG_CLASSES], dtype=np.uint8)
SEG_PALETTE.flags.writeable = False
#: The face region: what the quality gate scores alignment on. Hair never covers it on the
#: procedural head and rarely on a real one (scalp, neck and ears are where hair goes).
FACE_REGION: Final = tuple(SEG_ID[n] for n in (
    "face", "forehead", "eye_region", "right_eye_region", "left_eye_region", "right_eyeball", "left_eyeball",
    "left_eyebrow", "right_eyebrow", "eye_region+forehead", "lower_lip", "upper_lip", "inner_mouth", "nose"))
#: Label-map colours that belong to no class (unused UV area, bottom strip): read as background.
SEG_UNUSED_COLORS: Final = (_hex("#d1823d"), _hex("#00fff1"))
#: Class pairs swapped by a horizontal flip.
SEG_FLIP_PAIRS: Final = ((4, 5), (6, 7), (8, 9), (11, 12))


def _seg_flip_permutation() -> tuple[int, ...]:
    perm = list(range(NUM_SEG_CLASSES))
    for a, b in SEG_FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return tuple(perm)


#: ``flipped_label = SEG_FLIP_PERMUTATION[label]`` after a horizontal image flip.
SEG_FLIP_PERMUTATION: Final = _seg_flip_permutation()

#: Label value of pixels that carry no label (warped in from outside the image by a crop or an
#: augmentation): losses and scores leave them out.
IGNORE_LABEL: Final = 255

#: The tasks a real benchmark can label, as benchmark readers, Stage II and the evaluation name them.
TASK_LANDMARKS: Final = "landmarks"
TASK_PARSING: Final = "parsing"
TASK_DEPTH: Final = "depth"
BENCHMARK_TASKS: Final = (TASK_LANDMARKS, TASK_PARSING, TASK_DEPTH)

# --------------------------------------------------------------------------------------------
# Record field names (one sample on disk / in a batch). Use these, never string literals.
# --------------------------------------------------------------------------------------------


class Field:
    """Keys of a sample dict and of a record (arrays become blobs, the rest record meta)."""

    SAMPLE_ID = "sample_id"
    SEED = "seed"
    IMAGE = "image"  # uint8 (3, H, W)
    SEGMENTATION = "segmentation"  # uint8 (H, W), SEG_CLASSES ids
    DEPTH = "depth"  # float32 (H, W) camera-space z, 0 outside the mask
    MASK = "mask"  # bool (H, W) head-mesh foreground
    LANDMARKS_2D = "landmarks_2d"  # float32 (68, 2) pixels
    LANDMARKS_3D = "landmarks_3d"  # float32 (68, 3) camera space
    LANDMARKS_VISIBLE = "landmarks_visible"  # bool (68,)
    CAMERA = "camera"  # float32 (25,)
    SHAPE = "shape"  # float32 (n_shape,)
    EXPRESSION = "expression"  # float32 (n_expression,)
    POSE = "pose"  # float32 (15,)
    LATENT = "z"  # float32 (z_dim,) or empty for generators without a latent
    GENERATOR = "generator"  # generator identity string
    QUALITY = "quality"  # dict of per-sample quality figures
    STATUS = "status"  # Status value: the quality gate's verdict
    REASON = "reason"  # why flagged/dropped ('+'-joined tokens), "" when ok
    LANDMARKS_2D_FIXED = "landmarks_2d_fixed"  # float32 (68, 2) pixels, fixed 3D embedding
    LANDMARKS_3D_FIXED = "landmarks_3d_fixed"  # float32 (68, 3) camera space, fixed 3D embedding
    DEPTH_KIND = "depth_kind"  # DepthKind value of DEPTH
    DEPTH_SOURCE = "depth_source"  # DepthSource value of DEPTH; records without it: DepthSource.MESH
    GENERATOR_DEPTH = "generator_depth"  # float32 (Hd, Wd), float16 on disk: the generator's own camera z
    GENERATOR_MASK = "generator_mask"  # float32 (Hd, Wd) in [0, 1], float16 on disk: its coverage / opacity
    GENERATOR_DEPTH_SOURCE = "generator_depth_source"  # DepthSource value of GENERATOR_DEPTH
    PUPILS_2D = "pupils_2d"  # float32 (2, 2): FaceSynthetics pupil centres, pixels
    SOURCE_SEGMENTATION = "source_segmentation"  # uint8 (H, W) label map in the source dataset's ids
    SOURCE_SCHEMA = "source_schema"  # name of the schema of SOURCE_SEGMENTATION


class _StrEnum(str, Enum):
    """A str-valued enum whose members print, format and compare as their plain string value,
    so the values written into manifests and receipts stay the strings older files hold."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Status(_StrEnum):
    """A sample's quality verdict (record ``Field.STATUS``, manifest ``Column.STATUS``)."""

    OK = "ok"
    FLAGGED = "flagged"  # failed a threshold, kept and marked
    DROPPED = "dropped"  # failed a threshold, no record; the manifest keeps its row and reason


#: Statuses of samples that have a record (what readers return by default).
KEPT_STATUSES: Final = (Status.OK, Status.FLAGGED)


class DepthKind(_StrEnum):
    """What a record's depth means (``Field.DEPTH_KIND``)."""

    METRIC = "metric"  # camera-space z in generator world units
    RELATIVE = "relative"  # imported per-image 0..1 normalisation (no scale)


class DepthSource(_StrEnum):
    """Which geometry a depth map shows (``Field.DEPTH_SOURCE``, ``Field.GENERATOR_DEPTH_SOURCE``)."""

    MESH = "mesh"  # z-buffer of the annotation mesh (the head that drove the generator): no hair
    RASTER = "raster"  # z-buffer of a rasterizing generator's own geometry (procedural: head + hair cap)
    VOLUME = "volume"  # a volume renderer's expected depth (Next3D): hair and all the density holds
    UNKNOWN = "unknown"  # a generator that does not say


# --------------------------------------------------------------------------------------------
# Manifest columns (``manifest.parquet``): one row per sample. Lists are float32.
# --------------------------------------------------------------------------------------------


class Column:
    """Column names of ``manifest.parquet``; per-quality-figure columns are ``QUALITY_PREFIX + name``."""

    SAMPLE_ID = Field.SAMPLE_ID  # int64
    SHARD = "shard"  # string, "" for a dropped sample
    KEY = "key"  # string, the record's LMDB key
    CHECKSUM = "checksum"  # string, sha256 of the record bytes
    NBYTES = "nbytes"  # int64, record size
    STATUS = Field.STATUS  # string, a Status value
    REASON = Field.REASON  # string
    SEED = Field.SEED  # int64, -1 when unknown
    GENERATOR = Field.GENERATOR  # string
    CAMERA = Field.CAMERA
    SHAPE = Field.SHAPE
    EXPRESSION = Field.EXPRESSION
    POSE = Field.POSE
    QUALITY_PREFIX = "quality_"


# --------------------------------------------------------------------------------------------
# ``GeneratorOutput.extras`` keys read outside the generator that writes them.
# --------------------------------------------------------------------------------------------


class Extra:
    LANDMARKS_2D_RENDERED = "landmarks_2d_rendered"  # (B, 68, 2) pixels: landmarks as drawn (procedural)
    RENDER_TO_WORLD = "render_to_world"  # (B, 4, 4) where the procedural renderer really drew the head
    HAIR_COVERAGE = "hair_coverage"  # (B, H, W) fraction of each pixel covered by the hair cap (procedural)
    HAIR_CAP = "hair_cap"  # (B,) bool: the sample wears a hair cap (procedural)
    MESH_TO_WORLD_SYNTHFORGE = "mesh_to_world_synthforge"  # (B, 4, 4) the release's annotation transform
    DENSITY_POINTS = "density_points"  # (B, N, 3) world points sampled by a volume renderer
    DENSITY_SIGMA = "density_sigma"  # (B, N) their densities
    IMAGE_RAW = "image_raw"  # (B, 3, R, R) Next3D's raw neural render in [-1, 1]
    RAY_DEPTH = "ray_depth"  # (B, R, R) Next3D's distance along each ray
    #: (B, Hd, Wd) share of each pixel the generator drew as hair or scalp, on its depth/mask grid
    #: (from the generator's own segmentation where it has one; the procedural renderer knows it)
    HAIR_MASK = "hair_mask"
