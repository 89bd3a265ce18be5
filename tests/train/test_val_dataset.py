"""``data.val_dataset_dir``: another dataset is the held-out set, and all of ``data.dataset_dir`` trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sfray.config import load_config
from sfray.config.train import TrainJobConfig
from sfray.errors import ConfigError
from sfray.train.stage1 import dataset_val_source, plan_stage1

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "configs" / "train" / "quickstart.yaml"


def test_separate_held_out_dataset(real_dataset, tmp_path):
    base = [f"output_dir={tmp_path / 'run'}", f"data.dataset_dir={real_dataset}", "crop.input_size=64"]
    split = plan_stage1(load_config(TrainJobConfig, QUICKSTART, base))
    assert len(split.train_indices) < 64, "by default some samples are held out"
    cfg = load_config(TrainJobConfig, QUICKSTART, [*base, f"data.val_dataset_dir={real_dataset}",
                                                   "data.max_val_samples=10"])
    plan = plan_stage1(cfg)
    assert np.array_equal(plan.train_indices, np.arange(64)), "every sample of dataset_dir trains"
    assert np.array_equal(plan.val_indices, np.arange(10)), "the held-out set is the other dataset, capped"
    assert len(dataset_val_source(cfg, plan)) == 10


def test_val_dataset_needs_a_dataset_source():
    with pytest.raises(ConfigError, match="data.val_dataset_dir"):
        load_config(TrainJobConfig, QUICKSTART, ["data.source=stream", "runner=ray", "data.val_dataset_dir=/x",
                                                  "data.stream.generate_config=configs/generate/quickstart.yaml"])
