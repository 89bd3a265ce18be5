"""``dataset.yaml``: what a dataset *is*, readable without sfray's code.

It holds the resolved generation config, the generator identity, the label schema (ids, names,
colours, flip pairs from :mod:`sfray.conventions`), the landmark order with its mirror
permutation, depth units, counts (total, by status, by reason, shards) and the declared record
format (``record_format``: per field its codec, dtype and shape; ``sfray.data.record_format``). A consumer that
trains on the data needs nothing else to interpret the records. Written atomically
(``sfray.io.atomic``) after every manifest commit, so it never disagrees with a committed manifest for
long and is never half-written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sfray.conventions import (
    BACKGROUND_ID,
    IBUG68_MIRROR,
    LANDMARK_GROUPS,
    NUM_LANDMARKS,
    SEG_CLASSES,
    SEG_FLIP_PAIRS,
    SEG_UNUSED_COLORS,
    Column,
)
from sfray.data import layout
from sfray.data.manifest import Manifest
from sfray.data.record import FORMAT_VERSION
from sfray.data.record_format import FIELDS, FORMAT_KEY, declared_fields
from sfray.errors import AssetError
from sfray.io.atomic import atomic_write_text

DATASET_FORMAT = 1


def label_schema() -> dict[str, Any]:
    """The segmentation schema of every sfray record, as plain data."""
    return {
        "name": "flame-uv-19+background",
        "classes": [{"id": c.id, "name": c.name, "color": "#%02x%02x%02x" % c.color} for c in SEG_CLASSES],
        "background_id": BACKGROUND_ID,
        "flip_pairs": [list(p) for p in SEG_FLIP_PAIRS],
        "unused_colors_read_as_background": ["#%02x%02x%02x" % c for c in SEG_UNUSED_COLORS],
    }


def landmark_schema() -> dict[str, Any]:
    return {
        "order": "ibug-300w-68",
        "count": NUM_LANDMARKS,
        "groups": {k: [v[0], v[-1]] for k, v in LANDMARK_GROUPS.items()},  # inclusive index ranges
        "mirror": list(IBUG68_MIRROR),
        "pixel_convention": "(x, y), (0, 0) = top-left corner of the top-left pixel; centres at +0.5",
    }


def build_dataset_yaml(
    manifest: Manifest,
    *,
    config: dict[str, Any] | None = None,
    generator: str | None = None,
    source: str = "sfray",
    record_format: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The dataset.yaml content as a dict (``config`` is the resolved config as plain data,
    ``record_format`` the declared {field: {codec, dtype, shape}} of every record)."""
    generators = sorted(set(manifest.table.column(Column.GENERATOR).to_pylist()) - {""})
    content = {
        "format": DATASET_FORMAT,
        "record_format": FORMAT_VERSION,
        "source": source,
        "generator": generator if generator is not None else (
            generators[0] if len(generators) == 1 else generators),
        "labels": label_schema(),
        "landmarks": landmark_schema(),
        "depth": {"units": "camera-space z, generator world units", "dtype_on_disk": "float16",
                  "mask": "bool foreground",
                  "kind": "metric, unless a record says depth_kind: relative (imported, per-image 0..1)"},
        "counts": manifest.counts(),
        "config": config or {},
    }
    if record_format:
        content[FORMAT_KEY] = {FIELDS: record_format}
    return content


def write_dataset_yaml(dataset_dir: str | Path, content: dict[str, Any]) -> Path:
    """Atomically (re)write ``DATASET/dataset.yaml``."""
    text = yaml.safe_dump(content, sort_keys=False, default_flow_style=None, width=120)
    return atomic_write_text(Path(dataset_dir) / layout.DATASET_YAML, text)


def update_dataset_yaml(dataset_dir: str | Path, *, config: dict[str, Any] | None = None,
                        generator: str | None = None, source: str | None = None,
                        record_format: dict[str, Any] | None = None) -> Path:
    """Refresh counts from the manifest, keeping config/generator/source/record format already in
    the file unless given."""
    old = read_dataset_yaml(dataset_dir) if (Path(dataset_dir) / layout.DATASET_YAML).is_file() else {}
    content = build_dataset_yaml(
        Manifest.load(dataset_dir),
        config=config if config is not None else old.get("config"),
        generator=generator if generator is not None else old.get("generator"),
        source=source or old.get("source", "sfray"),
        record_format=record_format if record_format is not None else declared_fields(old),
    )
    return write_dataset_yaml(dataset_dir, content)


def read_dataset_yaml(dataset_dir: str | Path) -> dict[str, Any]:
    path = Path(dataset_dir) / layout.DATASET_YAML
    if not path.is_file():
        raise AssetError(f"{path}: no dataset.yaml; is {dataset_dir} an sfray dataset directory?")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise AssetError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    if not isinstance(content, dict):
        raise AssetError(f"{path}: expected a mapping at the top level, found {type(content).__name__}")
    return content
