"""A tiny sweep config for the Ray tests: tiny model, 64² faces, 48 training samples per strategy."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def write_sweep_yaml(path: Path, output_dir: Path, cache_dir: Path, *, space: dict, max_t: int = 2,
                     concurrent: int = 2, asha: bool = True) -> Path:
    cfg = {
        "output_dir": str(output_dir), "name": "test", "metric": "val_nme", "seeds": [0],
        "train": {"config": str(ROOT / "configs/train/quickstart.yaml"),
                  "overrides": ["crop.input_size=64", "train.batch_size=8", "train.validate_every=2",
                                "train.figure_samples=0", "train.predictions=false", "optim.warmup_steps=0",
                                "optim.min_lr=0"]},
        "data": {"generate_config": str(ROOT / "configs/generate/quickstart.yaml"),
                 "overrides": ["generate.resolution=64", "generate.samples_per_shard=64"],
                 "budget": 48, "val_samples": 16, "cache_dir": str(cache_dir)},
        "space": space,
        "asha": {"enabled": asha, "max_t": max_t, "grace_period": 1, "reduction_factor": 2},
        "ray": {"cpus_per_trial": 1, "max_concurrent_trials": concurrent, "max_failures": 0},
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def shared_cache(tmp_path_factory) -> Path:
    """One dataset cache for the whole session: the second sweep test reuses the first one's data."""
    return tmp_path_factory.getbasetemp() / "sweep_data_cache"
