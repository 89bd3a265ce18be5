"""``benchmark.build_from``: a Stage II run renders its LaPa-like set when the root is missing,
from ids the source dataset does not hold, and leaves an existing root as it is; the split it
validates on while training (``benchmark.val_split``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from real_dataset import generation_config
from stage2_setup import cached_stage1

from sfray.benchmarks.lapa_like import PROVENANCE_FILE
from sfray.config import load_config
from sfray.config.finetune import FinetuneJobConfig
from sfray.config.loader import to_yaml
from sfray.data.dataset_yaml import write_dataset_yaml
from sfray.data.manifest import Manifest
from sfray.errors import ConfigError
from sfray.train.stage2 import plan_finetune

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_root_is_rendered_from_the_dataset_and_an_existing_one_is_kept(real_dataset, tmp_path_factory,
                                                                                 tmp_path):
    stage1 = cached_stage1(tmp_path_factory, real_dataset)
    source = tmp_path / "dataset"  # the session's records, with the dataset.yaml `sfray generate` writes
    shutil.copytree(real_dataset, source)
    write_dataset_yaml(source, {"config": yaml.safe_load(to_yaml(generation_config(source, 64, 64)))})
    root = tmp_path / "lapa_like"
    cfg = load_config(FinetuneJobConfig, ROOT / "configs/finetune/quickstart.yaml", [
        f"output_dir={tmp_path / 'run'}", f"model.stage1={stage1}", f"benchmark.root={root}",
        f"benchmark.build_from={source}", "benchmark.build_counts={train: 2, val: 1, test: 1}",
        "crop.input_size=64"])
    plan, reader = plan_finetune(cfg)
    assert sorted(p.name for p in (root / "train" / "images").iterdir()) and reader is not None
    provenance = json.loads((root / PROVENANCE_FILE).read_text())
    held = set(Manifest.load(source).table.column("sample_id").to_pylist())
    ids = [s["sample_id"] for s in provenance["samples"].values()]
    assert len(ids) == 4 and not held & set(ids), "rendered from ids the dataset does not hold"
    assert len(plan.train_indices) == 2 and plan.eval_splits == ("test",)
    assert plan.val_split == "val", "auto validates on the benchmark's val split when it has one"
    assert not (tmp_path / "run").exists(), "planning writes nothing but the requested set"
    # an existing root is used as it is, never re-rendered or touched
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    plan_finetune(cfg)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    # the validation split: none on request, a named one must exist
    none = load_config(FinetuneJobConfig, ROOT / "configs/finetune/quickstart.yaml",
                       [f"output_dir={tmp_path / 'run'}", f"model.stage1={stage1}", f"benchmark.root={root}",
                        "crop.input_size=64", "benchmark.val_split=none"])
    assert plan_finetune(none)[0].val_split is None
    none.benchmark.val_split = "dev"
    with pytest.raises(ConfigError, match="benchmark.val_split.*no split 'dev'"):
        plan_finetune(none)
