"""Stage II test inputs, built once per pytest session: a LaPa-like set at 64² and a tiny Stage I
model trained briefly on the session's real records."""

from __future__ import annotations

from pathlib import Path

import yaml

from sfray.config import load_config
from sfray.config.loader import to_yaml

ROOT = Path(__file__).resolve().parents[2]


def cached_lapa_like(tmp_path_factory) -> Path:
    """32 train + 8 test held-out procedural renders at 64² in LaPa's layout."""
    from sfray.benchmarks.lapa_like import make_lapa_like
    from sfray.config.schema import GenerateJobConfig

    base = tmp_path_factory.getbasetemp() / "stage2_lapa_like"
    if not (base / "lapa").is_dir():
        ds = base / "ds"
        ds.mkdir(parents=True, exist_ok=True)
        cfg = load_config(GenerateJobConfig, ROOT / "configs/generate/quickstart.yaml",
                          ["generate.resolution=64", "generate.num_samples=64"])
        (ds / "dataset.yaml").write_text(yaml.safe_dump({"config": yaml.safe_load(to_yaml(cfg))}))
        make_lapa_like(ds, base / "lapa", {"train": 32, "test": 8}, first_id=100_000)
    return base / "lapa"


def cached_stage1(tmp_path_factory, real_dataset: Path) -> Path:
    """A tiny Stage I model trained for 40 steps of batch 8 at 64² on the real records."""
    from sfray.config.train import TrainJobConfig
    from sfray.train.stage1 import train_stage1

    out = tmp_path_factory.getbasetemp() / "stage2_stage1"
    if not (out / "model" / "model.json").is_file():
        cfg = load_config(TrainJobConfig, ROOT / "configs/train/quickstart.yaml", [
            "runner=local", f"data.dataset_dir={real_dataset}", f"output_dir={out}", "crop.input_size=64",
            "train.batch_size=8", "data.num_workers=0", "data.val_fraction=0.25", "optim.warmup_steps=5",
            "train.checkpoint_every=0", "train.max_steps=40", "train.epochs=100", "train.validate_every=100",
            "train.figure_samples=0", "train.predictions=false"])
        train_stage1(cfg, progress=False)
    return out
