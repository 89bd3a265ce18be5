"""Training data without Ray: the dataset, its held-out split, per-worker batches, in-memory records.

:class:`LoaderData` deals one epoch's shuffled training indices to the workers (rank ``r`` gets
every ``world``-th index), so the samples of global step ``j`` are the same whatever the number
of workers: with equal per-worker batches, 2 workers x b and 1 worker x 2b see the same samples
at every step. The shuffle is seeded by (seed, epoch), so a resumed epoch skips exactly the
batches it had consumed. :class:`RecordsDataset` serves record bytes held in memory (a
generation stream's held-out samples) like :class:`~sfray.data.torch_dataset.SfrayDataset`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sfray.conventions import Field
from sfray.data import layout
from sfray.data.record import decode_record
from sfray.data.torch_dataset import SfrayDataset
from sfray.errors import AssetError
from sfray.train.split import HeldOutSplit


def open_dataset(dataset_dir: str | Path, fields: Sequence[str]) -> SfrayDataset:
    """The dataset at ``dataset_dir``, or one clear error if it is not one (or is empty)."""
    d = Path(dataset_dir)
    if not d.is_dir() or not (d / layout.MANIFEST_FILE).is_file():
        raise AssetError(f"data.dataset_dir={dataset_dir}: not an sfray dataset directory (no "
                         f"{layout.MANIFEST_FILE}); make one with `sfray generate CONFIG output_dir={dataset_dir}`")
    ds = SfrayDataset(d, fields=fields)
    if len(ds) == 0:
        raise AssetError(f"data.dataset_dir={dataset_dir}: the dataset has no committed samples")
    return ds


def split_indices(sample_ids: np.ndarray, split: HeldOutSplit, max_val: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) positions of ``sample_ids``; ``max_val`` > 0 keeps the lowest held-out ids."""
    held = split.is_held_out(sample_ids)
    train, val = np.flatnonzero(~held), np.flatnonzero(held)
    if max_val > 0 and len(val) > max_val:
        val = val[np.argsort(sample_ids[val], kind="stable")[:max_val]]
    return train, np.sort(val)


class _Order(torch.utils.data.Sampler):
    """A sampler whose index list is replaced each epoch (lets persistent workers live on)."""

    def __init__(self) -> None:
        self.indices: list[int] = []

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.indices))

    def __len__(self) -> int:
        return len(self.indices)


class LoaderData:
    """``TrainData`` over a map-style dataset: shuffled per epoch, dealt to ``world`` workers."""

    def __init__(self, dataset: torch.utils.data.Dataset, indices: np.ndarray, batch_size: int, *,
                 rank: int = 0, world: int = 1, seed: int = 0, num_workers: int = 0, shuffle: bool = True):
        self.dataset, self.indices = dataset, np.asarray(indices, dtype=np.int64)
        self.batch_size, self.rank, self.world, self.seed = batch_size, rank, world, seed
        self.shuffle = shuffle
        self.batches_per_epoch = len(self.indices) // (world * batch_size)
        self._order = _Order()
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=self._order, num_workers=num_workers, drop_last=True,
            persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available())

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """This worker's indices for ``epoch`` (whole batches only)."""
        order = self.indices
        if self.shuffle:
            order = order[np.random.default_rng([self.seed, epoch]).permutation(len(order))]
        used = order[: self.batches_per_epoch * self.batch_size * self.world]
        return used[self.rank::self.world]

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[dict[str, Any]]:
        self._order.indices = self.epoch_indices(epoch)[skip * self.batch_size:].tolist()
        return iter(self.loader)


class RecordsDataset(torch.utils.data.Dataset):
    """Map-style dataset over encoded records in memory, with SfrayDataset's output types."""

    def __init__(self, records: Sequence[bytes], fields: Iterable[str]):
        self.records, self.fields = list(records), tuple(fields)
        self.sample_ids = np.array([int(decode_record(r, (Field.SAMPLE_ID,))[Field.SAMPLE_ID]) for r in self.records],
                                   dtype=np.int64)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return record_to_tensors(decode_record(self.records[index], self.fields))


def record_to_tensors(rec: dict[str, Any]) -> dict[str, Any]:
    """A decoded record as SfrayDataset returns it (segmentation int64, ids as 0-d int64 tensors)."""
    out: dict[str, Any] = {}
    for name, value in rec.items():
        if isinstance(value, np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(value))
            out[name] = t.long() if name == Field.SEGMENTATION else t
        elif name in (Field.SAMPLE_ID, Field.SEED):
            out[name] = torch.tensor(int(value), dtype=torch.int64)
    return out


def records_to_columns(records: Sequence[bytes], fields: Sequence[str]) -> dict[str, np.ndarray]:
    """Decode records into stacked columns (one array per field), e.g. for a Ray Data batch."""
    rows = [decode_record(r, fields) for r in records]
    cols: dict[str, np.ndarray] = {}
    for name in fields:
        values = [r[name] for r in rows]
        if name in (Field.SAMPLE_ID, Field.SEED):
            cols[name] = np.asarray(values, dtype=np.int64)
        else:
            cols[name] = np.stack([np.asarray(v) for v in values]) if values else np.zeros((0,))
    return cols
