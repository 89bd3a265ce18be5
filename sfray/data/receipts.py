"""Receipts: the write-ahead log of a dataset (``DATASET/receipts/<unit>.json``).

Whoever writes a shard logs a receipt right after it (``sfray.generation.storage.write_unit``);
the driver folds receipts into the manifest. A receipt therefore names a shard that may not be in
the manifest *yet*: nothing may delete such a shard (``sweep``), and a rerun with other settings
must not fold it in (the resume guard). This module reads them; the body keys are defined here
once. A receipt that cannot be read (damaged by hand or by the disk) is reported, never guessed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sfray.data import layout
from sfray.errors import AssetError

#: Receipt body keys. ``rows`` holds the manifest rows of the unit (kept and dropped samples).
UNIT, SHARD, NUM_SAMPLES, NUM_DROPPED, ROWS = "unit", "shard", "num_samples", "num_dropped", "rows"


def read_receipt(path: str | Path) -> dict[str, Any]:
    """A receipt's body; AssetError when it is not the JSON object a receipt is."""
    try:
        body = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise AssetError(f"{path}: not a readable receipt ({exc})") from None
    if not isinstance(body, dict) or not isinstance(body.get(ROWS), list) or SHARD not in body:
        raise AssetError(f"{path}: not a receipt (expected a JSON object with '{SHARD}' and '{ROWS}')")
    return body


def receipt_files(dataset_dir: str | Path) -> list[Path]:
    """Complete receipt files, sorted (temporary ones excluded)."""
    rdir = layout.receipts_dir(dataset_dir)
    if not rdir.is_dir():
        return []
    return sorted(p for p in rdir.glob(f"*{layout.RECEIPT_SUFFIX}") if not layout.is_tmp(p.name))


def receipt_shards(dataset_dir: str | Path) -> set[str]:
    """Shard names the receipts reference. An unreadable receipt protects the shard named like its
    unit (a unit's shard has the unit's name unless the quality gate dropped some of its ids)."""
    names: set[str] = set()
    for path in receipt_files(dataset_dir):
        try:
            shard = read_receipt(path)[SHARD]
        except AssetError:
            shard = path.name[: -len(layout.RECEIPT_SUFFIX)]
        if shard:
            names.add(str(shard))
    return names
