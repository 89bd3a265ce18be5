"""Stage I on Ray Train: a killed worker resumes from its checkpoint; a live generation stream
trains without writing a shard, on the session's shared local Ray (loopback only, tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from real_dataset import cached_real_dataset  # noqa: E402

from sfray.config import load_config  # noqa: E402
from sfray.config.train import TrainJobConfig  # noqa: E402

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "configs" / "train" / "quickstart.yaml"


def _config(out: Path, *extra: str) -> TrainJobConfig:
    return load_config(TrainJobConfig, QUICKSTART, [
        "runner=ray", f"output_dir={out}", "crop.input_size=64", "data.val_fraction=0.25",
        "optim.warmup_steps=0", "ray.cpus_per_worker=1", "train.figure_samples=2", "train.validate_every=1", *extra])


def test_killed_worker_resumes_from_its_checkpoint(shared_ray, tmp_path_factory, tmp_path):
    from sfray.distributed.train_stage1 import run_stage1_ray
    from sfray.train.faults import FAULTS_DIR, KILLED_MARKER

    dataset = cached_real_dataset(tmp_path_factory)
    out = tmp_path / "run"
    # 2 DDP workers x batch 12 over ~48 training samples: 2 steps per epoch, 4 epochs, checkpoints at
    # every epoch end; rank 0 dies at step 5 (mid epoch 2), after the step-4 checkpoint
    cfg = _config(out, f"data.dataset_dir={dataset}", "ray.num_workers=2", "train.batch_size=12", "train.epochs=4",
                  "train.checkpoint_every=2", "faults.kill_worker_at_step=5", "ray.max_failures=1",
                  "train.keep_checkpoints=10")
    report = run_stage1_ray(cfg, progress=False)
    assert (out / FAULTS_DIR / KILLED_MARKER).is_file(), "the fault fired"
    assert report["steps_per_epoch"] == 2 and report["steps"] == 8 and report["workers"] == 2
    assert report["resumed_from_steps"] == [4], "resumed from the last checkpoint before the kill"
    assert [h["epoch"] for h in report["history"]] == [0, 1, 2, 3], "every epoch exactly once"
    assert [h["step"] for h in report["history"]] == [2, 4, 6, 8], "the step counter continued"
    assert all("val" in h for h in report["history"])
    steps = sorted(int(p.name.split("_")[1]) for p in (out / "checkpoints").glob("step_*"))
    assert steps == [2, 4, 6, 8]
    assert (out / "predictions.npz").is_file() and (out / "model" / "model.safetensors").is_file()


def test_training_from_a_live_generation_stream_writes_no_shard(shared_ray, tmp_path, monkeypatch):
    from sfray.distributed.train_stage1 import run_stage1_ray

    gen_out = tmp_path / "never_written"
    gen_cfg = yaml.safe_load((ROOT / "configs" / "generate" / "quickstart.yaml").read_text())
    gen_cfg["output_dir"] = str(gen_out)
    gen_cfg["generate"].update(resolution=64, batch_size=4, samples_per_shard=8)
    gen_yaml = tmp_path / "gen.yaml"
    gen_yaml.write_text(yaml.safe_dump(gen_cfg))
    monkeypatch.chdir(tmp_path)  # anything written relative to the working directory lands here
    out = tmp_path / "run"
    cfg = _config(out, "data.source=stream", f"data.stream.generate_config={gen_yaml}",
                  "data.stream.samples_per_epoch=16", "data.stream.val_samples=8", "data.stream.actors=1",
                  "train.batch_size=4", "train.epochs=2", "train.checkpoint_every=0")
    report = run_stage1_ray(cfg, progress=False)
    assert report["source"] == "stream" and report["steps"] == 8 and report["steps_per_epoch"] == 4
    assert report["dataset"].startswith("stream:")
    with np.load(out / "predictions.npz") as pred:
        assert sorted(pred["sample_id"].tolist()) == list(range(1_000_000_000, 1_000_000_008))
    assert report["val"]["baseline_majority_map_mean_f1"] is not None  # votes counted from the stream
    assert not gen_out.exists(), "the generation config's output_dir was never created"
    written = [p for p in tmp_path.rglob("*") if p.suffix == ".lmdb" or p.name in ("manifest.parquet", "dataset.yaml")]
    assert written == [], written
