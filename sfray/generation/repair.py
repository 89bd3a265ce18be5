"""The resume check: before a rerun plans its work, committed rows whose shard or record is
missing or corrupt are found and handed back to the plan, so the run regenerates them instead of
reporting success over missing data (docs/reliability.md).

``generate.resume_check`` says how much is read (``sfray.data.integrity``): ``records`` (default)
re-reads every committed record against its checksum; ``shards`` reads only record headers and
shard metadata (missing, truncated or replaced shards, missing keys, foreign formats).

The unit of repair is the shard: a sample's bytes depend on the generator batch it was computed
in, so a damaged record is made again together with the ids its shard was made with (its unit,
as its receipt lists it, dropped ids included), which gives the same bytes and the same shard
name. The damaged shard file is moved to ``DATASET/damaged/`` (never deleted), its ids leave the
manifest and the receipts, and one line says which ids will be made again. A row whose shard name
points outside ``shards/`` is not damage but a hand-edited or hostile manifest: the run stops.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import numpy as np
from omegaconf import OmegaConf

from sfray.config.schema import GenerateJobConfig
from sfray.conventions import KEPT_STATUSES, Column, Status
from sfray.data import layout
from sfray.data.integrity import RowProblem, check_rows
from sfray.data.manifest import Manifest
from sfray.data.record_format import config_expectation
from sfray.errors import AssetError
from sfray.generation.failures import describe_ids
from sfray.generation.plan import WorkUnit
from sfray.generation.storage import ROWS, SHARD, drop_from_receipts, quarantine, read_receipt, receipt_files


def find_damage(cfg: GenerateJobConfig, manifest: Manifest) -> list[RowProblem]:
    """Problems of the committed rows of ``cfg.output_dir`` (see the module docstring)."""
    rows = manifest.rows(KEPT_STATUSES)
    expect = config_expectation(OmegaConf.to_container(OmegaConf.structured(cfg)))  # type: ignore[arg-type]
    result = check_rows(cfg.output_dir, rows, level=cfg.generate.resume_check, declared=expect, partial=True)
    escaping = [p for p in result.problems if not layout.is_shard_name(p.shard)]
    if escaping:
        first, manifest_file = escaping[0], Path(cfg.output_dir) / layout.MANIFEST_FILE
        raise AssetError(f"{manifest_file}: {describe_ids([p.sample_id for p in escaping])}"
                         f" name shard {first.shard!r}, which is not an sfray shard name (a path outside "
                         "shards/?); refusing to read it. Restore the manifest or move it aside to rebuild it "
                         "from receipts/")
    return result.problems


def _unit_ids(root: Path, shard: str, manifest: Manifest) -> list[int]:
    """The ids shard ``shard`` was made with: its receipt's rows (dropped ids too), else its manifest
    rows plus the dropped rows between its first and last id."""
    for path in receipt_files(root):
        try:
            body = read_receipt(path)
        except AssetError:
            continue
        if body[SHARD] == shard:
            return sorted(int(r[Column.SAMPLE_ID]) for r in body[ROWS])
    rows = manifest.rows()
    ids = [int(r[Column.SAMPLE_ID]) for r in rows if r[Column.SHARD] == shard]
    lo, hi = min(ids), max(ids)
    ids += [int(r[Column.SAMPLE_ID]) for r in rows
            if r[Column.STATUS] == Status.DROPPED and not r[Column.SHARD] and lo < r[Column.SAMPLE_ID] < hi]
    return sorted(set(ids))


def repair(cfg: GenerateJobConfig, manifest: Manifest, log: TextIO | None = None
           ) -> tuple[Manifest, list[WorkUnit]]:
    """Hand damaged shards back to the plan: (manifest without their rows, one unit per shard)."""
    problems = find_damage(cfg, manifest)
    if not problems:
        return manifest, []
    root = Path(cfg.output_dir)
    shards = sorted({p.shard for p in problems})
    sps = cfg.generate.samples_per_shard
    units = [WorkUnit(ids[0] // sps, np.asarray(ids, dtype=np.int64))
             for ids in (_unit_ids(root, s, manifest) for s in shards)]
    for name in shards:
        path = layout.shard_path(root, name)
        if path.exists():
            quarantine(root, path)
    ids = sorted({int(i) for u in units for i in u.sample_ids})
    drop_from_receipts(root, ids, shards)
    manifest = Manifest.remove(root, ids)
    if log is not None:
        bad = sorted({p.sample_id for p in problems})
        log.write(f"generate: {len(bad)} committed sample(s) are missing or corrupt ({describe_ids(bad)}: "
                  f"{problems[0].problem}); regenerating {describe_ids(ids)} of {len(shards)} shard(s); the "
                  f"damaged files are kept in {root / layout.DAMAGED_DIR}\n")
        log.flush()
    return manifest, units
