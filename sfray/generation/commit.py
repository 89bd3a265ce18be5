"""Committing generated shards: receipt log, recovery, and the dataset directory's bookkeeping.

Write path of one unit (in a Ray write task): ``write_shard`` builds the shard under a temporary
name and publishes it atomically, then :func:`write_unit` logs a receipt file (tmp + rename).
The manifest is rewritten only by :func:`recover` (the driver, in ``on_write_complete`` and at
every job start), which folds all receipts whose shards exist into ``manifest.parquet``. A
driver killed mid-write therefore loses no finished shard, and a shard without a receipt is
simply rebuilt (identically) by the next run.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from sfray.config.loader import save_config
from sfray.config.schema import GenerateJobConfig
from sfray.data import layout
from sfray.data.dataset_yaml import build_dataset_yaml, write_dataset_yaml
from sfray.data.manifest import Manifest, sample_row, sweep
from sfray.data.shard import shard_name, write_shard
from sfray.errors import ConfigError

RECEIPTS_DIR = "receipts"
CONFIG_FILE = "config.yaml"
#: Config keys that do not change a sample's bytes: a resumed run may change them freely.
_FREE_KEYS = ("output_dir", "ray.", "generate.num_samples", "generate.samples_per_shard",
              "generate.preview_samples", "generator.device")


def receipt_dir(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / RECEIPTS_DIR


def read_receipt(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def write_unit(dataset_dir: str | Path, unit_ids: Sequence[int], records: Sequence[bytes | None],
               rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Write one unit's shard (kept samples) and its receipt; return the small receipt summary.

    ``records[i]`` is the encoded record of ``unit_ids[i]`` or empty/None when the quality gate
    dropped it; ``rows[i]`` is that sample's summary (see ``SampleProducer``), used for dropped rows.
    """
    kept = [(int(i), bytes(r)) for i, r in zip(unit_ids, records) if r]
    all_rows: list[dict[str, Any]] = []
    shard = ""
    if kept:
        receipt = write_shard(dataset_dir, kept)
        shard = receipt.name
        all_rows.extend(receipt.rows)
    for sid, rec, row in zip(unit_ids, records, rows):
        if not rec:
            all_rows.append(sample_row(row, status="dropped", reason=str(row.get("reason") or "dropped")))
    name = shard_name(list(unit_ids))
    body = {"unit": name, "shard": shard, "num_samples": len(unit_ids),
            "num_dropped": len(unit_ids) - len(kept), "rows": all_rows}
    rdir = receipt_dir(dataset_dir)
    rdir.mkdir(parents=True, exist_ok=True)
    tmp = rdir / f"{name}.json{layout.TMP_MARK}{uuid.uuid4().hex}"
    try:
        tmp.write_text(json.dumps(body))
        os.replace(tmp, rdir / f"{name}.json")
    finally:
        tmp.unlink(missing_ok=True)
    return {k: body[k] for k in ("unit", "shard", "num_samples", "num_dropped")}


def recover(dataset_dir: str | Path, *, at_start: bool = False) -> Manifest:
    """Fold every receipt into the manifest (the commit), then sweep temporary files.

    Receipts whose shard is missing are ignored (and removed): their samples are regenerated.
    ``at_start`` (no writer running) also moves complete shards that no receipt or manifest row
    references to ``orphans/``: a crash between publishing a shard and logging its receipt.
    """
    root = Path(dataset_dir)
    rdir = receipt_dir(root)
    receipts = []
    stale = []
    if rdir.is_dir():
        for tmp in rdir.glob(f"*{layout.TMP_MARK}*"):
            tmp.unlink(missing_ok=True)
        for path in sorted(rdir.glob("*.json")):
            body = read_receipt(path)
            if body["shard"] and not layout.shard_path(root, body["shard"]).is_file():
                stale.append(path)
                continue
            receipts.append(body)
    manifest = Manifest.commit(root, receipts) if receipts else Manifest.load(root)
    for path in stale:
        path.unlink(missing_ok=True)
    sweep(root, unreferenced="move" if at_start else "keep")
    return manifest


def _flat(cfg: GenerateJobConfig) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk(OmegaConf.to_container(OmegaConf.structured(cfg)), "")
    return flat


def prepare_dataset_dir(cfg: GenerateJobConfig) -> None:
    """Create ``output_dir``; refuse one made with settings that change sample bytes; save config."""
    root = Path(cfg.output_dir)
    previous = root / CONFIG_FILE
    if previous.is_file() and (root / layout.MANIFEST_FILE).is_file():
        from sfray.config.loader import load_config

        old = _flat(load_config(GenerateJobConfig, previous))
        new = _flat(cfg)
        diffs = [k for k in sorted(set(old) | set(new))
                 if not k.startswith(_FREE_KEYS) and old.get(k) != new.get(k)]
        if diffs:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diffs[:4])
            raise ConfigError(
                f"{root} already holds a dataset generated with other settings ({detail}); "
                "resuming would mix incompatible samples. Use a new output_dir or the original settings."
            )
    root.mkdir(parents=True, exist_ok=True)
    save_config(cfg, previous)


def preflight(cfg: GenerateJobConfig) -> None:
    """Check the user's inputs in the driver, before any actor starts, so a missing or wrong file
    fails once with its own message instead of inside every actor's constructor.

    Builds the head (FLAME files are read and shape-checked), loads the alignment map, imports the
    detector, and checks that a generator checkpoint exists (actors read it themselves)."""
    from sfray.errors import AssetError
    from sfray.geometry.alignment_map import load_alignment_map
    from sfray.head import build_head

    build_head(cfg.head)
    load_alignment_map(cfg.annotate.alignment_map)
    if cfg.quality.detector:
        from sfray.annotate.detector import load_detector

        load_detector(cfg.quality.detector)
    ckpt = cfg.generator.checkpoint
    if cfg.generator.kind == "next3d" and ckpt != "random-small" and not Path(str(ckpt)).is_file():
        raise AssetError(f"{ckpt}: generator checkpoint not found (config key generator.checkpoint; "
                         "expected Next3D's next3d_ffhq_512.pkl or an sfray .safetensors)")


def finalize_dataset(cfg: GenerateJobConfig, manifest: Manifest) -> dict[str, int]:
    """Refresh dataset.yaml (counts by status and reason) and write the preview sheet."""
    content = build_dataset_yaml(manifest, config=OmegaConf.to_container(OmegaConf.structured(cfg)))
    write_dataset_yaml(cfg.output_dir, content)
    counts = manifest.counts()
    by_status = counts["by_status"]
    from sfray.generation.preview import write_dataset_preview

    write_dataset_preview(cfg.output_dir, cfg.generate.preview_samples)
    return {"committed": by_status["ok"] + by_status["flagged"], "dropped": by_status["dropped"]}
