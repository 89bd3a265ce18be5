"""Stage I with the plain-torch runner on real records: it learns, its files rescore, it resumes,
it refuses bad input without touching what is there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sfray.config import load_config
from sfray.config.train import TrainJobConfig
from sfray.conventions import Field
from sfray.data.record import decode_record
from sfray.data.torch_dataset import SfrayDataset
from sfray.errors import AssetError, ConfigError
from sfray.train.context import torch_threads
from sfray.train.stage1 import load_stage1_model, train_stage1

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "configs" / "train" / "quickstart.yaml"


def config(dataset: Path, out: Path, *extra: str) -> TrainJobConfig:
    return load_config(
        TrainJobConfig,
        QUICKSTART,
        [
            "runner=local",
            f"data.dataset_dir={dataset}",
            f"output_dir={out}",
            "crop.input_size=64",
            "train.batch_size=8",
            "data.num_workers=0",
            "data.val_fraction=0.25",
            "optim.warmup_steps=10",
            "train.checkpoint_every=0",
            "train.figure_samples=4",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def trained(real_dataset, tmp_path_factory):
    """One short run shared by the tests below (the learning test asserts on it)."""
    out = tmp_path_factory.mktemp("stage1") / "run"
    with torch_threads(1):  # module scope: set up before conftest's per-test one-thread fixture
        report = train_stage1(
            config(real_dataset, out, "train.max_steps=120", "train.epochs=100", "train.validate_every=50"),
            progress=False,
        )
    return out, report


def test_learns_on_real_records(trained):
    """120 steps of batch 8 at 64² on 52 real records (about 40 s on one core). Measured on this
    data: segmentation mean F1 0.19 (an untrained model: about 0.01), depth MAE 0.76x a constant,
    NME 0.99x the oracle mean shape (an untrained model: about 0.9, 4.5x), loss down to 0.19x.
    The quickstart's few CPU minutes go much further (docs/training.md)."""
    _, report = trained
    v = report["val"]
    assert v["samples"] >= 8
    assert v["seg_mean_f1"] > 0.1, v
    assert v["depth_mae"] < 0.9 * v["baseline_constant_depth_mae"], v
    assert v["nme"] < 1.1 * v["baseline_mean_shape_nme"], v
    assert report["history"][-1]["train_loss"] < 0.3 * report["history"][0]["train_loss"]


def _independent_scores(pred: np.lib.npyio.NpzFile, dataset: Path) -> dict[str, float]:
    """NME, foreground mean F1 and depth MAE from the documented file format, in plain numpy."""
    ds = SfrayDataset(
        dataset, fields=(Field.SAMPLE_ID, Field.LANDMARKS_2D, Field.SEGMENTATION, Field.DEPTH, Field.MASK)
    )
    by_id = {int(i): k for k, i in enumerate(ds.sample_ids)}
    nmes, conf = [], np.zeros((20, 20), np.int64)
    abs_err, n_pix = 0.0, 0
    for k, sid in enumerate(pred["sample_id"]):
        gt = decode_record(ds.raw(by_id[int(sid)]), None)
        lm, lm_gt = pred["landmarks"][k].astype(np.float64), gt[Field.LANDMARKS_2D].astype(np.float64)
        iod = np.hypot(*(lm_gt[36] - lm_gt[45]))
        nmes.append(np.mean(np.hypot(*(lm - lm_gt).T)) / iod)
        conf += np.bincount(
            gt[Field.SEGMENTATION].astype(np.int64).ravel() * 20 + pred["segmentation"][k].ravel(),
            minlength=400,
        ).reshape(20, 20)
        m = gt[Field.MASK] & (gt[Field.DEPTH] > 0)
        abs_err += np.abs(pred["depth"][k].astype(np.float64)[m] - gt[Field.DEPTH][m]).sum()
        n_pix += int(m.sum())
    tp = np.diag(conf)
    denom = conf.sum(0) + conf.sum(1)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)
    return {
        "nme": float(np.mean(nmes)),
        "seg_mean_f1": float(np.nanmean(f1[:19])),
        "depth_mae": abs_err / n_pix,
    }


def test_predictions_file_rescores_to_the_report(trained, real_dataset):
    out, _ = trained
    with np.load(out / "predictions.npz") as pred:
        assert set(pred.files) == {"dataset", "sample_id", "landmarks", "segmentation", "depth"}
        n = len(pred["sample_id"])
        h, w = SfrayDataset(real_dataset)[0][Field.IMAGE].shape[-2:]
        assert str(pred["dataset"]) == str(Path(real_dataset).resolve())
        assert pred["landmarks"].shape == (n, 68, 2) and pred["landmarks"].dtype == np.float32
        assert pred["segmentation"].shape == (n, h, w) and pred["segmentation"].dtype == np.uint8
        assert pred["depth"].shape == (n, h, w) and pred["depth"].dtype == np.float16
        scores = _independent_scores(pred, real_dataset)
    saved = json.loads((out / "report.json").read_text())["val"]
    for key, value in scores.items():
        assert value == pytest.approx(saved[key], rel=1e-5, abs=1e-6), key
    assert (out / "predictions.png").stat().st_size > 1000 and (out / "report.md").is_file()


def test_frozen_model_loads_by_path_alone(trained, real_dataset):
    out, _ = trained
    model, cfg = load_stage1_model(out)
    assert (
        cfg is not None and cfg.model.size == "tiny" and not any(p.requires_grad for p in model.parameters())
    )
    again, _ = load_stage1_model(
        out / "checkpoints" / max(p for p in os.listdir(out / "checkpoints") if p.startswith("step_"))
    )
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x)[Field.DEPTH], again(x)[Field.DEPTH])


def _snapshot(d: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(d)): (p.stat().st_mtime_ns, p.stat().st_size) for p in d.rglob("*") if p.is_file()
    }


def test_bad_inputs_fail_cleanly_and_touch_nothing(trained, real_dataset, tmp_path):
    out, _ = trained
    before = _snapshot(out)
    # a dataset directory that is not one
    fresh = tmp_path / "fresh"
    with pytest.raises(AssetError, match=r"data\.dataset_dir=.*not an sfray dataset"):
        train_stage1(config(tmp_path, fresh), progress=False)
    assert not fresh.exists()
    # a checkpoint of another model size (resume and init)
    ckpt = max((out / "checkpoints").glob("step_*"))
    with pytest.raises(AssetError, match=r"size 'tiny'.*model\.size=release"):
        train_stage1(config(real_dataset, out, "model.size=release", "crop.input_size=64"), progress=False)
    with pytest.raises(AssetError, match=r"size 'tiny'.*model\.size=paper"):
        train_stage1(
            config(real_dataset, fresh, "model.size=paper", f"model.init_from={ckpt}"), progress=False
        )
    # a resume with an incompatible config
    with pytest.raises(ConfigError, match=r"cannot resume.*'crop\.input_size' was 64 there and is 96 now"):
        train_stage1(config(real_dataset, out, "crop.input_size=96"), progress=False)
    with pytest.raises(ConfigError, match=r"'train\.batch_size'"):
        train_stage1(config(real_dataset, out, "train.batch_size=4"), progress=False)
    with pytest.raises(ConfigError, match="already holds a training run"):
        train_stage1(config(real_dataset, out, "train.resume=never"), progress=False)
    assert _snapshot(out) == before and not fresh.exists()


def test_cli_reports_a_negative_lambda_in_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sfray.cli",
            "train",
            str(QUICKSTART),
            "loss.ssl=-1",
            f"output_dir={tmp_path / 'o'}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "loss.ssl" in proc.stderr and ">= 0" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_resume_continues_the_step_counter(real_dataset, tmp_path):
    out = tmp_path / "run"
    first = train_stage1(
        config(real_dataset, out, "train.epochs=2", "train.checkpoint_every=3"), progress=False
    )
    per_epoch = first["steps_per_epoch"]
    assert first["steps"] == 2 * per_epoch and [h["epoch"] for h in first["history"]] == [0, 1]
    second = train_stage1(
        config(real_dataset, out, "train.epochs=3", "train.checkpoint_every=3"), progress=False
    )
    assert second["resumed_from_steps"] == [2 * per_epoch]
    assert second["steps"] == 3 * per_epoch
    assert [h["epoch"] for h in second["history"]] == [0, 1, 2]
    assert [h["step"] for h in second["history"]] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
