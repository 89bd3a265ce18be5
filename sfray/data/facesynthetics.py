"""The FaceSynthetics label schema and its explicit mapping to and from sfray's SEG_CLASSES.

FaceSynthetics (microsoft/FaceSynthetics README) labels 19 classes plus IGNORE=255; its
``_ldmks.txt`` has 70 rows: iBUG 68 ("x-ray" projections of 3D points, so occluded points are not
moved to the silhouette) then 2 pupil centres. The two schemas cut the head differently, so each
direction is a documented many-to-one table:

- sfray -> FaceSynthetics: face, forehead and all periocular skin regions -> SKIN; eyeballs ->
  RIGHT_EYE / LEFT_EYE; scalp -> HAIR (the FLAME scalp is where a generated head shows hair);
  neck and neck_back -> NECK.
- FaceSynthetics -> sfray: SKIN and BEARD -> face; HAIR and HEADWEAR -> scalp; CLOTHING,
  GLASSES, FACEWEAR and IGNORE -> background (sfray's schema has no such regions).

An imported FaceSynthetics record also keeps its original label map (``source_segmentation`` with
``source_schema: facesynthetics``), so exporting it back to this layout is exact.

File names and the landmark text format are defined here once; the importer, the exporter and the
FaceSynthetics benchmark reader all use them.
"""

from __future__ import annotations

import numpy as np

from sfray.conventions import SEG_ID

#: ``Field.SOURCE_SCHEMA`` value of records imported from FaceSynthetics.
FS_SCHEMA = "facesynthetics"
FS_IGNORE = 255
FS_CLASSES = (
    "background", "skin", "nose", "right_eye", "left_eye", "right_brow", "left_brow", "right_ear",
    "left_ear", "mouth_interior", "top_lip", "bottom_lip", "neck", "hair", "beard", "clothing",
    "glasses", "headwear", "facewear",
)
FS_ID = {name: i for i, name in enumerate(FS_CLASSES)}
NUM_FS_LANDMARKS = 70
#: ``{idx:06d}.png`` image, ``{idx:06d}_seg.png`` label map, ``{idx:06d}_ldmks.txt`` landmarks.
FS_IMAGE_PATTERN = r"(\d+)\.png"
FS_SEG_SUFFIX = "_seg.png"
FS_LDMKS_SUFFIX = "_ldmks.txt"


def fs_name(index: int) -> str:
    """The file stem of sample ``index`` (six digits)."""
    return f"{index:06d}"


class LandmarkFormatError(ValueError):
    """A FaceSynthetics landmark text that is not rows of 'x y' (``count`` True: wrong row count)."""

    def __init__(self, message: str, count: bool = False):
        super().__init__(message)
        self.count = count


def parse_fs_landmarks(text: str) -> np.ndarray:
    """``_ldmks.txt`` text -> (70, 2) or (68, 2) float64 (rows of 'x y'; blank lines ignored)."""
    rows = [ln.split() for ln in text.replace("\r", "\n").split("\n") if ln.strip()]
    if any(len(r) != 2 for r in rows):
        raise LandmarkFormatError("expected rows of 'x y' numbers")
    try:
        pts = np.array([[float(x), float(y)] for x, y in rows], dtype=np.float64).reshape(-1, 2)
    except ValueError as exc:
        raise LandmarkFormatError(f"expected rows of 'x y' numbers ({exc})") from exc
    if not np.all(np.isfinite(pts)):
        raise LandmarkFormatError("non-finite coordinate")
    if pts.shape[0] not in (NUM_FS_LANDMARKS, 68):
        raise LandmarkFormatError(f"expected {NUM_FS_LANDMARKS} (or 68) rows of 'x y', got {pts.shape[0]}",
                                  count=True)
    return pts

_OURS_TO_FS = {
    "face": "skin", "forehead": "skin", "eye_region": "skin", "neck": "neck",
    "right_eye_region": "skin", "left_eye_region": "skin", "right_eyeball": "right_eye",
    "left_eyeball": "left_eye", "left_eyebrow": "left_brow", "right_eyebrow": "right_brow",
    "eye_region+forehead": "skin", "left_ear": "left_ear", "right_ear": "right_ear",
    "lower_lip": "bottom_lip", "upper_lip": "top_lip", "inner_mouth": "mouth_interior", "nose": "nose",
    "scalp": "hair", "neck_back": "neck", "background": "background",
}
_FS_TO_OURS = {
    "background": "background", "skin": "face", "nose": "nose", "right_eye": "right_eyeball",
    "left_eye": "left_eyeball", "right_brow": "right_eyebrow", "left_brow": "left_eyebrow",
    "right_ear": "right_ear", "left_ear": "left_ear", "mouth_interior": "inner_mouth",
    "top_lip": "upper_lip", "bottom_lip": "lower_lip", "neck": "neck", "hair": "scalp", "beard": "face",
    "clothing": "background", "glasses": "background", "headwear": "scalp", "facewear": "background",
}

#: (NUM_SEG_CLASSES,) uint8 lookup: sfray id -> FaceSynthetics id.
OURS_TO_FACESYNTHETICS = np.array(
    [FS_ID[_OURS_TO_FS[name]] for name, _ in sorted(SEG_ID.items(), key=lambda kv: kv[1])], dtype=np.uint8)
#: (256,) uint8 lookup: FaceSynthetics id (incl. IGNORE=255 and unknown ids) -> sfray id.
FACESYNTHETICS_TO_OURS = np.full(256, SEG_ID["background"], dtype=np.uint8)
for _name, _ours in _FS_TO_OURS.items():
    FACESYNTHETICS_TO_OURS[FS_ID[_name]] = SEG_ID[_ours]
