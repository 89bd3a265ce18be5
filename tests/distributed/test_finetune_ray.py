"""Stage II on Ray Train: two DDP workers finetune over the frozen Stage I model and rank 0
writes the same report files as the plain-torch runner, on the session's shared local Ray (tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from real_dataset import cached_real_dataset  # noqa: E402
from stage2_setup import cached_lapa_like, cached_stage1  # noqa: E402

from sfray.config import load_config  # noqa: E402
from sfray.config.finetune import FinetuneJobConfig  # noqa: E402

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]


def test_two_workers_finetune_and_report(shared_ray, tmp_path_factory, tmp_path):
    from sfray.distributed.finetune import finetune_any

    stage1 = cached_stage1(tmp_path_factory, cached_real_dataset(tmp_path_factory))
    lapa = cached_lapa_like(tmp_path_factory)
    out = tmp_path / "run"
    cfg = load_config(FinetuneJobConfig, ROOT / "configs/finetune/quickstart.yaml", [
        "runner=ray", f"output_dir={out}", f"model.stage1={stage1}", f"benchmark.root={lapa}",
        "benchmark.build_from=null", "crop.input_size=64", "train.batch_size=4", "train.epochs=2",
        "train.checkpoint_every=0", "train.validate_every=100", "ray.num_workers=2", "ray.cpus_per_worker=1",
        "evaluate.figure_images=0"])
    report = finetune_any(cfg, progress=False)
    training = report["extra"]["training"]
    # 32 training images, 2 workers x batch 4: 4 steps per epoch
    assert training["workers"] == 2 and training["steps"] == 8 and training["runner"] == "ray"
    assert training["stage1_unchanged"] is True
    assert [r["method"] for r in report["results"]] == ["direct mapping (SB)", "finetuned (SB+LF)"]
    assert (out / "model" / "labelnet.safetensors").is_file()
    assert (out / "predictions" / "finetuned" / "landmarks.json").is_file()
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*")) == ["step_00000008"]
