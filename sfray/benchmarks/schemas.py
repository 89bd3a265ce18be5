"""Label schemas of the real benchmarks and the direct mappings from sfray's synthetic schema.

Each benchmark labels faces with its own ids (docs/benchmarks-data.md). They are written here once,
as :class:`LabelSchema` objects, together with the *direct mapping* of the 20 synthetic classes
(:data:`sfray.conventions.SEG_CLASSES`) to each schema: the baseline a Stage I model gets without
any real labels, and the many-to-one merge that the LaPa-like export uses for the regions the two
schemas share. "Left" and "right" are the subject's throughout sfray; the benchmarks' own
definitions of the side are recorded in the docs.

LaPa's 106-point layout (index groups, outer eye corners) also lives here, because the NME, the
LaPa reader and the LaPa-like export all need the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

from sfray.conventions import NUM_SEG_CLASSES, SEG_ID
from sfray.data.facesynthetics import FS_CLASSES, FS_IGNORE, OURS_TO_FACESYNTHETICS


@dataclass(frozen=True)
class LabelSchema:
    """A benchmark's segmentation ids: ``classes[i]`` is the name of id ``i``."""

    name: str
    classes: tuple[str, ...]
    background_id: int = 0
    ignore_id: int | None = None  # ground-truth value that is not scored (e.g. 255)
    flip_pairs: tuple[tuple[int, int], ...] = ()
    colors: tuple[tuple[int, int, int], ...] = field(default=(), repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def foreground_ids(self) -> tuple[int, ...]:
        """The ids averaged into the headline mean F1: every class but background (FaRL's fg mean)."""
        return tuple(i for i in range(self.num_classes) if i != self.background_id)

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 display colours indexed by id (unknown ids and ignore grey)."""
        pal = np.full((256, 3), 128, dtype=np.uint8)
        pal[: len(self.colors)] = np.asarray(self.colors, dtype=np.uint8)
        pal[self.background_id] = 0
        return pal

    def as_dict(self) -> dict:
        return {"name": self.name, "classes": list(self.classes), "background_id": self.background_id,
                "ignore_id": self.ignore_id, "flip_pairs": [list(p) for p in self.flip_pairs]}


def _hex(c: str) -> tuple[int, int, int]:
    return (int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16))


#: LaPa: 11 classes (README of JDAI-CV/lapa-dataset). "skin" includes the ears; there is no neck.
LAPA_SCHEMA: Final = LabelSchema(
    "lapa",
    ("background", "skin", "left_eyebrow", "right_eyebrow", "left_eye", "right_eye", "nose",
     "upper_lip", "inner_mouth", "lower_lip", "hair"),
    background_id=0,
    flip_pairs=((2, 3), (4, 5)),
    colors=tuple(_hex(c) for c in ("#000000", "#f5dccb", "#8fa9d3", "#d38f8f", "#f600ff", "#0000ff",
                                   "#c602ac", "#d91717", "#002f99", "#008880", "#683516")),
)

#: CelebAMask-HQ in the official merge order (its ``g_mask.py``): a later mask wins an overlap.
CELEBAMASK_MASK_ORDER: Final = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth", "u_lip",
    "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)
CELEBAMASK_SCHEMA: Final = LabelSchema(
    "celebamask-hq",
    ("background",) + CELEBAMASK_MASK_ORDER,
    background_id=0,
    flip_pairs=((4, 5), (6, 7), (8, 9)),
    colors=tuple(_hex(c) for c in (
        "#000000", "#f5dccb", "#c602ac", "#cccc00", "#f600ff", "#0000ff", "#8fa9d3", "#d38f8f", "#00ff3c",
        "#fcff00", "#002f99", "#d91717", "#008880", "#683516", "#ff8000", "#ffd700", "#00ffff",
        "#e4f18f", "#5050a0")),
)

#: FaceSynthetics: 19 classes, 255 = IGNORE (microsoft/FaceSynthetics README).
FACESYNTHETICS_SCHEMA: Final = LabelSchema(
    "facesynthetics", tuple(FS_CLASSES), background_id=0, ignore_id=FS_IGNORE,
    flip_pairs=((3, 4), (5, 6), (7, 8)),
    colors=tuple(_hex(c) for c in (
        "#000000", "#f5dccb", "#c602ac", "#0000ff", "#f600ff", "#d38f8f", "#8fa9d3", "#fcff00", "#00ff3c",
        "#002f99", "#d91717", "#008880", "#e4f18f", "#683516", "#a06040", "#5050a0", "#cccc00",
        "#ff8000", "#00ffff")),
)

# --------------------------------------------------------------------------------------------
# Direct mappings: synthetic id -> benchmark id, as (NUM_SEG_CLASSES,) uint8 lookup tables.
# --------------------------------------------------------------------------------------------
_SKIN_PARTS = ("face", "forehead", "eye_region", "right_eye_region", "left_eye_region",
               "eye_region+forehead")

_TO_LAPA = {
    **{n: "skin" for n in _SKIN_PARTS}, "left_ear": "skin", "right_ear": "skin",
    "left_eyebrow": "left_eyebrow", "right_eyebrow": "right_eyebrow",
    "left_eyeball": "left_eye", "right_eyeball": "right_eye", "nose": "nose",
    "upper_lip": "upper_lip", "inner_mouth": "inner_mouth", "lower_lip": "lower_lip",
    "scalp": "hair",  # where a generated head shows hair; a bald scalp is the mapping's known error
    "neck": "background", "neck_back": "background", "background": "background",
}
_TO_CELEBAMASK = {
    **{n: "skin" for n in _SKIN_PARTS}, "nose": "nose", "left_eyeball": "l_eye",
    "right_eyeball": "r_eye", "left_eyebrow": "l_brow", "right_eyebrow": "r_brow", "left_ear": "l_ear",
    "right_ear": "r_ear", "inner_mouth": "mouth", "upper_lip": "u_lip", "lower_lip": "l_lip",
    "scalp": "hair", "neck": "neck", "neck_back": "neck", "background": "background",
}


def _table(mapping: dict[str, str], schema: LabelSchema) -> np.ndarray:
    ids = {name: i for i, name in enumerate(schema.classes)}
    out = np.zeros(NUM_SEG_CLASSES, dtype=np.uint8)
    for name, sid in SEG_ID.items():
        out[sid] = ids[mapping[name]]
    return out


SYNTH_TO_LAPA: Final = _table(_TO_LAPA, LAPA_SCHEMA)
SYNTH_TO_CELEBAMASK: Final = _table(_TO_CELEBAMASK, CELEBAMASK_SCHEMA)
SYNTH_TO_FACESYNTHETICS: Final = OURS_TO_FACESYNTHETICS

#: Direct mapping per schema name (the "SB" baseline of the evaluation docs).
DIRECT_MAPPINGS: Final = {
    LAPA_SCHEMA.name: SYNTH_TO_LAPA,
    CELEBAMASK_SCHEMA.name: SYNTH_TO_CELEBAMASK,
    FACESYNTHETICS_SCHEMA.name: SYNTH_TO_FACESYNTHETICS,
}


def direct_mapping(schema: LabelSchema, synthetic_labels: np.ndarray) -> np.ndarray:
    """Synthetic label map (any shape, sfray ids) -> the same map in ``schema``'s ids."""
    try:
        table = DIRECT_MAPPINGS[schema.name]
    except KeyError as exc:
        raise ValueError(f"no direct mapping from the synthetic schema to '{schema.name}'") from exc
    return table[np.asarray(synthetic_labels, dtype=np.int64)]


# --------------------------------------------------------------------------------------------
# LaPa's 106 landmarks: index groups (inclusive ranges, 0-based), docs/benchmarks-data.md.
# --------------------------------------------------------------------------------------------
NUM_LAPA_LANDMARKS: Final = 106
LAPA106_GROUPS: Final = {
    "contour": tuple(range(33)),
    "brow_a": tuple(range(33, 42)),   # image-left brow in a frontal view: 5 upper, then 4 lower
    "brow_b": tuple(range(42, 51)),
    "nose_bridge": tuple(range(51, 55)),
    "nose_lower": tuple(range(55, 66)),
    "eye_a": tuple(range(66, 74)),    # 8-point contour from its image-left corner (66 = outer)
    "eye_a_pupil": (74,),
    "eye_b": tuple(range(75, 83)),    # 8-point contour from its image-left corner (79 = outer)
    "eye_b_pupil": (83,),
    "mouth_outer": tuple(range(84, 96)),
    "mouth_inner": tuple(range(96, 104)),
    "extra": (104, 105),              # not identified in the public sources (see the docs)
}
#: Outer eye corners of LaPa's 106 points, the inter-ocular normaliser of its NME.
LAPA106_OUTER_EYE_CORNERS: Final = (66, 79)
