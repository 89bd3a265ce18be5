"""Synthetic samples and small datasets built from random arrays (no generator needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfray.conventions import NUM_LANDMARKS, NUM_SEG_CLASSES, Field
from sfray.data.manifest import Manifest
from sfray.data.record import encode_record
from sfray.data.shard import write_shard


def random_sample(sample_id: int, size: int = 32, seed: int = 0) -> dict:
    """A sample dict with every Field filled; the image is smooth so lossy codecs stay close."""
    rng = np.random.default_rng([seed, sample_id])
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack([(255 * (0.2 + 0.6 * xx)), 255 * (0.3 + 0.5 * yy), 255 * (0.5 + 0.3 * xx * yy)])
    image = np.clip(image + rng.uniform(-10, 10, size=3)[:, None, None], 0, 255).astype(np.uint8)
    mask = rng.random((size, size)) > 0.3
    depth = (2.0 + rng.random((size, size))).astype(np.float32) * mask
    return {
        Field.SAMPLE_ID: sample_id,
        Field.SEED: int(rng.integers(0, 2**62)),
        Field.IMAGE: image,
        Field.SEGMENTATION: rng.integers(0, NUM_SEG_CLASSES, (size, size), dtype=np.uint8),
        Field.DEPTH: depth,
        Field.MASK: mask,
        Field.LANDMARKS_2D: (rng.random((NUM_LANDMARKS, 2)) * size).astype(np.float32),
        Field.LANDMARKS_3D: rng.standard_normal((NUM_LANDMARKS, 3)).astype(np.float32),
        Field.LANDMARKS_VISIBLE: rng.random(NUM_LANDMARKS) > 0.2,
        Field.CAMERA: rng.standard_normal(25).astype(np.float32),
        Field.SHAPE: rng.standard_normal(10).astype(np.float32),
        Field.EXPRESSION: rng.standard_normal(6).astype(np.float32),
        Field.POSE: (0.1 * rng.standard_normal(15)).astype(np.float32),
        Field.LATENT: rng.standard_normal(8).astype(np.float32),
        Field.GENERATOR: "test-random-v1",
        Field.QUALITY: {"mask_iou": float(rng.random()), "detector_ok": bool(rng.random() > 0.5)},
    }


def build_dataset(root: Path, ids_per_shard: list[list[int]], size: int = 32) -> list:
    """Write one shard per id list, commit them all; returns the receipts."""
    receipts = []
    for ids in ids_per_shard:
        receipts.append(write_shard(root, [(i, encode_record(random_sample(i, size))) for i in ids]))
    Manifest.commit(root, receipts)
    return receipts
