"""A small real-format set in LaPa's exact layout, rendered from held-out procedural samples.

Stage II's end-to-end check needs a "real" dataset whose label schema differs from the synthetic
one in the ways real benchmarks do: merged regions and a class the synthetic schema lacks. This
module renders samples that a given sfray dataset never contains (same generator config, sample
ids after the dataset's own) and writes them as LaPa (docs/benchmarks-data.md, "LaPa-like set"):

* ``{split}/images/<name>.jpg``: the rendered image, JPEG quality 95;
* ``{split}/labels/<name>.png``: LaPa ids. Skin merges face, forehead, the eye regions and the
  ears; neck and background are background; eyes, brows, nose, lips and inner mouth map one to
  one. **Hair** (id 10) is what the image shows of the procedural hair cap: the pixels its shell
  covers, plus the scalp of a head that wears one. A bald scalp is skin. The synthetic schema has
  no hair class (its scalp is a mesh region), so the direct mapping scalp -> hair is wrong on bald
  heads and misses the cap's rim: the gap Stage II finetuning has to close;
* ``{split}/landmarks/<name>.txt``: ``106`` then 106 ``x y`` rows (0-based pixel centres, LaPa's
  reading in sfray), derived from the 68 points, the segmentation and the mesh
  (:mod:`sfray.benchmarks.lapa106`).

The folder is built under a temporary name and renamed when complete, so a failed run leaves no
half-written set; ``sfray_lapa_like.json`` at its root records where every sample came from.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from sfray.benchmarks.lapa import IMAGES_DIR, LABELS_DIR, LANDMARKS_DIR, LAPA_SPLITS
from sfray.benchmarks.lapa106 import lapa106_from_68
from sfray.benchmarks.schemas import LAPA_SCHEMA, SYNTH_TO_LAPA
from sfray.conventions import SEG_ID
from sfray.errors import SfrayError
from sfray.io.atomic import TMP_MARK, atomic_write_bytes, atomic_write_text
from sfray.progress import Progress

PROVENANCE_FILE = "sfray_lapa_like.json"
JPEG_QUALITY = 95
#: A pixel is hair when at least this fraction of it shows the hair cap's shell.
HAIR_COVERAGE_MIN = 0.5
#: LaPa landmark files hold 0-based pixel centres: file = sfray - 0.5 (the reader adds it back).
FILE_OFFSET = -0.5
_HAIR = LAPA_SCHEMA.classes.index("hair")
_SKIN = LAPA_SCHEMA.classes.index("skin")


def lapa_labels(seg: np.ndarray, hair_coverage: np.ndarray, hair_cap: bool) -> np.ndarray:
    """(H, W) sfray ids + the cap's coverage -> (H, W) uint8 LaPa ids (see the module docstring)."""
    out = SYNTH_TO_LAPA[seg.astype(np.int64)].astype(np.uint8)
    scalp = seg == SEG_ID["scalp"]
    out[scalp] = _HAIR if hair_cap else _SKIN
    out[np.asarray(hair_coverage) >= HAIR_COVERAGE_MIN] = _HAIR
    return out


def landmark_text(points106: np.ndarray) -> str:
    rows = "".join(f"{x:.3f} {y:.3f}\n" for x, y in np.asarray(points106, dtype=np.float64) + FILE_OFFSET)
    return f"{len(points106)}\n{rows}"


def _config(dataset_dir: Path, resolution: int | None):
    from sfray.config.legacy import migrate
    from sfray.config.loader import config_from_yaml_text
    from sfray.config.schema import GenerateJobConfig
    from sfray.data.dataset_yaml import read_dataset_yaml

    meta = read_dataset_yaml(dataset_dir)  # a dataset made before a key was renamed still works
    cfg = config_from_yaml_text(GenerateJobConfig, yaml.safe_dump(migrate(meta.get("config") or {})))
    if cfg.generator.kind != "procedural":
        raise SfrayError(f"{dataset_dir}: made by generator '{cfg.generator.kind}'; the LaPa-like set needs the "
                         "procedural renderer (its hair cap is the extra class)")
    if resolution is not None:
        cfg.generate.resolution = int(resolution)
    return cfg


def _first_free_id(dataset_dir: Path, cfg) -> int:
    from sfray.data.manifest import Manifest

    ids = Manifest.load(dataset_dir).table.column("sample_id").to_numpy()
    return int(max(cfg.generate.num_samples, int(ids.max()) + 1 if ids.size else 0))


class _Renderer:
    """Head, procedural generator and annotator built from one config (as the producer builds them)."""

    def __init__(self, cfg):
        from sfray.annotate.stack import build_stack

        self.cfg = cfg
        stack = build_stack(cfg, "cpu")
        self.head, self.generator, self.annotator = stack.head, stack.generator, stack.annotator
        self.pupil_vertices = self._pupil_vertices()

    def _pupil_vertices(self) -> list[int]:
        """The eyeball vertex each pupil is painted around (rest direction closest to +z)."""
        gen = self.generator
        faces = gen.faces.cpu().numpy()
        region = gen.region_all[: len(faces)].cpu().numpy()
        direction = gen.eyes.direction.cpu().numpy()
        out = []
        for name in ("right_eyeball", "left_eyeball"):  # image-left eye first (the subject's right)
            verts = np.unique(faces[region == SEG_ID[name]])
            out.append(int(verts[np.argmax(direction[verts, 2])]) if verts.size else -1)
        return out

    @torch.no_grad()
    def render(self, ids: np.ndarray) -> list[dict[str, Any]]:
        from sfray.conventions import Extra
        from sfray.sampling import make_specs

        cfg = self.cfg
        specs = make_specs(ids, cfg.seed, cfg.sampling, cfg.camera, n_shape=self.head.n_shape,
                           n_expression=self.head.n_expression, latent_dim=self.generator.latent_dim)
        out = self.generator.generate(specs)
        ann = self.annotator.annotate(out)
        pupils = None
        if min(self.pupil_vertices) >= 0:
            m = self.annotator.world_transform(out)
            _, _, screen = self.annotator.project(out.head_vertices[:, self.pupil_vertices], m, out.camera)
            pupils = screen[..., :2].cpu().numpy()
        samples = []
        for i, sid in enumerate(ids.tolist()):
            seg = ann.segmentation[i].cpu().numpy()
            lm68 = ann.landmarks_2d[i].cpu().numpy().astype(np.float64)
            samples.append({
                "id": int(sid),
                "image": out.image[i].permute(1, 2, 0).cpu().numpy(),
                "labels": lapa_labels(seg, out.extras[Extra.HAIR_COVERAGE][i].cpu().numpy(),
                                      bool(out.extras[Extra.HAIR_CAP][i])),
                "landmarks": lapa106_from_68(lm68, seg, None if pupils is None else pupils[i]),
                "hair_cap": bool(out.extras[Extra.HAIR_CAP][i]),
            })
        return samples


def _write_sample(root: Path, split: str, name: str, s: dict[str, Any]) -> None:
    buf = io.BytesIO()
    Image.fromarray(s["image"]).save(buf, format="JPEG", quality=JPEG_QUALITY)
    atomic_write_bytes(root / split / IMAGES_DIR / f"{name}.jpg", buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(s["labels"], mode="L").save(buf, format="PNG")
    atomic_write_bytes(root / split / LABELS_DIR / f"{name}.png", buf.getvalue())
    atomic_write_text(root / split / LANDMARKS_DIR / f"{name}.txt", landmark_text(s["landmarks"]))


def make_lapa_like(dataset_dir: str | os.PathLike, out_dir: str | os.PathLike, counts: dict[str, int], *,
                   first_id: int | None = None, resolution: int | None = None, batch_size: int = 8,
                   progress: bool = False) -> dict[str, int]:
    """Render ``counts`` = {split: n} held-out samples of ``dataset_dir``'s config into ``out_dir``.

    Returns the number written per split. ``out_dir`` must not exist yet.
    """
    ds, out = Path(dataset_dir), Path(out_dir)
    if out.exists():
        raise SfrayError(f"{out}: already exists; pass a new folder for the LaPa-like set")
    bad = set(counts) - set(LAPA_SPLITS)
    if bad or any(n < 0 for n in counts.values()):
        raise SfrayError(f"LaPa-like counts must be non-negative and per split in {LAPA_SPLITS}, got {counts}")
    cfg = _config(ds, resolution)
    start = _first_free_id(ds, cfg) if first_id is None else int(first_id)
    plan: list[tuple[str, int]] = []
    for split in LAPA_SPLITS:
        plan += [(split, start + len(plan) + k) for k in range(counts.get(split, 0))]
    renderer = _Renderer(cfg)
    tmp = out.with_name(f"{out.name}{TMP_MARK}{uuid.uuid4().hex[:8]}")
    bar = Progress(len(plan), "rendering LaPa-like set") if progress and plan else None
    provenance: dict[str, Any] = {"source_dataset": str(ds.resolve()), "seed": cfg.seed,
                                  "resolution": cfg.generate.resolution, "label_schema": LAPA_SCHEMA.as_dict(),
                                  "landmarks": "106 LaPa-layout points derived from the 68 (docs/benchmarks-data.md)",
                                  "samples": {}}
    try:
        for k in range(0, len(plan), batch_size):
            chunk = plan[k:k + batch_size]
            for (split, sid), s in zip(chunk, renderer.render(np.array([sid for _, sid in chunk], dtype=np.int64))):
                name = f"sfray_{sid:07d}"
                _write_sample(tmp, split, name, s)
                provenance["samples"][f"{split}/{IMAGES_DIR}/{name}.jpg"] = {"sample_id": sid,
                                                                           "hair_cap": s["hair_cap"]}
            if bar is not None:
                bar.update(min(k + batch_size, len(plan)))
        atomic_write_text(tmp / PROVENANCE_FILE, json.dumps(provenance, indent=1))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if bar is not None:
        bar.close()
    return {split: counts.get(split, 0) for split in LAPA_SPLITS}
