"""A map-style torch ``Dataset`` over a dataset directory, in manifest (sample id) order.

Only committed samples are visible (the manifest, not the shard files, decides). Records come
through :class:`sfray.data.reader.RecordReader`: shards open lazily per process, so the dataset
can go into ``DataLoader(num_workers>0)``: workers reopen their own read-only LMDB handles after
fork, and pickling never carries an open environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sfray.conventions import KEPT_STATUSES, Column, Field
from sfray.data.reader import RecordReader, committed_rows
from sfray.data.record import decode_record, record_checksum
from sfray.errors import AssetError

_LONG = (Field.SEGMENTATION,)
_META_TENSORS = (Field.SAMPLE_ID, Field.SEED)


class SfrayDataset(torch.utils.data.Dataset):
    """Sample i -> dict of tensors keyed by ``Field`` names.

    image (3, H, W) uint8 (or float32 in [0, 1] with ``float_image=True``), segmentation (H, W)
    int64, depth (Hd, Wd) float32, mask (Hd, Wd) bool, landmarks_2d (68, 2) float32 pixels,
    landmarks_3d (68, 3), landmarks_visible (68,) bool, camera (25,), shape, expression, pose, z
    float32, sample_id and seed int64 scalars. ``with_meta`` adds the non-tensor entries
    (generator, quality, status, depth_kind, ...). ``fields`` limits which blobs are decoded.
    ``verify`` checks every record against its manifest checksum (exports do; ~1 ms per MB).
    """

    def __init__(
        self,
        dataset_dir: str | Path,
        *,
        statuses: Iterable[str] = KEPT_STATUSES,
        fields: Iterable[str] | None = None,
        float_image: bool = False,
        with_meta: bool = False,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        verify: bool = False,
    ):
        self.root = Path(dataset_dir)
        table = committed_rows(self.root, statuses)
        self._ids = table.column(Column.SAMPLE_ID).to_numpy().astype(np.int64)
        self._shards = table.column(Column.SHARD).to_pylist()
        self._keys = table.column(Column.KEY).to_pylist()
        self._sums = table.column(Column.CHECKSUM).to_pylist() if verify else None
        self.fields = None if fields is None else tuple(fields)
        self.float_image = float_image
        self.with_meta = with_meta
        self.transform = transform
        self._reader = RecordReader(self.root)

    def __len__(self) -> int:
        return int(self._ids.size)

    @property
    def sample_ids(self) -> np.ndarray:
        return self._ids

    def raw(self, index: int) -> bytes:
        """The record bytes of sample ``index`` (manifest order); with ``verify``, checked against
        the manifest checksum (a damaged record raises AssetError instead of decoding to garbage)."""
        data = self._reader.get(self._shards[index], self._keys[index])
        if self._sums is not None and record_checksum(data) != self._sums[index]:
            raise AssetError(f"{self.root}: sample {self._ids[index]} in shard {self._shards[index]} does not "
                             "match its manifest checksum (record corrupted); run `sfray dataset verify`")
        return data

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = decode_record(self.raw(index), self.fields)
        out: dict[str, Any] = {}
        for name, value in rec.items():
            if isinstance(value, np.ndarray):
                t = torch.from_numpy(value)
                if name == Field.IMAGE and self.float_image:
                    t = t.to(torch.float32) / 255.0
                elif name in _LONG:
                    t = t.long()
                out[name] = t
            elif name in _META_TENSORS:
                out[name] = torch.tensor(int(value), dtype=torch.int64)
            elif self.with_meta:
                out[name] = value
        return self.transform(out) if self.transform is not None else out
