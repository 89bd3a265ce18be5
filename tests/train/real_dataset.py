"""Small datasets of real procedural records (head + renderer + annotator), built without Ray."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfray.config import GenerateJobConfig, load_config
from sfray.data.manifest import Manifest
from sfray.data.shard import write_shard

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "configs" / "generate" / "quickstart.yaml"


def generation_config(out: Path, num: int, res: int, *extra: str) -> GenerateJobConfig:
    return load_config(GenerateJobConfig, QUICKSTART, [
        f"output_dir={out}", f"generate.num_samples={num}", f"generate.resolution={res}",
        "generate.batch_size=8", "generate.samples_per_shard=32", *extra])


def build_real_dataset(root: Path, num: int, res: int) -> Path:
    """``num`` quickstart samples at ``res``² written as shards + manifest into ``root``."""
    from sfray.generation.producer import SampleProducer

    cfg = generation_config(root, num, res)
    producer = SampleProducer(cfg, device="cpu")
    receipts = []
    for start in range(0, num, 32):
        ids = np.arange(start, min(start + 32, num), dtype=np.int64)
        made = [(p.sample_id, p.record) for p in producer.produce(ids) if p.record is not None]
        receipts.append(write_shard(root, made))
    Manifest.commit(root, receipts)
    return root


def cached_real_dataset(tmp_path_factory, num: int = 64, res: int = 64) -> Path:
    """One dataset per pytest session and size, shared by every test directory that asks."""
    root = tmp_path_factory.getbasetemp() / f"real_records_{num}_{res}"
    if not (root / "manifest.parquet").is_file():
        build_real_dataset(root, num, res)
    return root
