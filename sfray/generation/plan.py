"""Work planning for dataset generation: which sample ids go into which shard, what is left to do.

A dataset of N samples is cut into *units* of at most ``samples_per_shard`` consecutive ids,
aligned to multiples of ``samples_per_shard``; each unit becomes exactly one shard. Inside a unit,
the generator sees *batches* aligned to multiples of ``batch_size`` (global ids), so a sample is
always computed together with the same neighbours, whichever run or actor makes it: that is what
makes a resumed run byte-identical to an uninterrupted one.

A resumed run removes committed ids (and ids the quality gate dropped) before planning; the
remaining ids of a unit form a smaller shard whose name still derives from its ids
(``sfray.data.shard.shard_name``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WorkUnit:
    """One future shard: a sorted array of sample ids."""

    unit: int  # first_id // samples_per_shard
    sample_ids: np.ndarray  # (n,) int64, sorted, unique

    def batches(self, batch_size: int) -> list[np.ndarray]:
        """Split into generator batches aligned to global multiples of ``batch_size``."""
        groups = self.sample_ids // batch_size
        cut = np.flatnonzero(np.diff(groups)) + 1
        return [b for b in np.split(self.sample_ids, cut) if len(b)]


def plan_units(num_samples: int, samples_per_shard: int, done_ids: np.ndarray | None = None) -> list[WorkUnit]:
    """Units covering ids ``[0, num_samples)`` minus ``done_ids`` (committed or dropped)."""
    if num_samples < 0 or samples_per_shard < 1:
        raise ValueError("num_samples >= 0 and samples_per_shard >= 1 required")
    ids = np.arange(num_samples, dtype=np.int64)
    if done_ids is not None and len(done_ids):
        ids = np.setdiff1d(ids, np.asarray(done_ids, dtype=np.int64), assume_unique=False)
    if ids.size == 0:
        return []
    unit_of = ids // samples_per_shard
    cut = np.flatnonzero(np.diff(unit_of)) + 1
    return [WorkUnit(int(chunk[0] // samples_per_shard), chunk) for chunk in np.split(ids, cut)]
