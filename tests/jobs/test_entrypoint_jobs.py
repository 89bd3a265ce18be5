"""Every ``jobs/X.py`` under ``ray job submit --working-dir . -- python jobs/X.py CONFIG [overrides]``.

One pipeline job on tiny settings covers generate -> Stage I -> LaPa-like set -> report on the
session's loopback head (``tests/jobs/conftest.py``); the other entrypoints then run on what it left
(the dataset, the Stage I model, the LaPa-like set) instead of regenerating it. ``jobs/generate.py``
on its own is covered by ``test_job_submit.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sfray.data.manifest import Manifest
from sfray.pipeline.marker import read_marker

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]

#: Stage and generation sizes that keep the job small: 16 samples at 64², one epoch at 32².
TINY_GENERATE = ("[generate.num_samples=16,generate.resolution=64,generate.samples_per_shard=8,ray.address=auto,"
                 "ray.actors_max=1]")
TINY_TRAIN = ("[train.epochs=1,crop.input_size=32,train.batch_size=4,train.val_batch_size=4,train.figure_samples=2,"
              "train.checkpoint_every=0]")


def _ok(proc) -> None:
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-2000:])


#: Stage II on the tiny Stage I model: one epoch at its input size.
TINY_FINETUNE = "[crop.input_size=32,train.epochs=1,train.batch_size=2]"


def _stages() -> list[str]:
    """Every stage whose job exists on this tree (Stage II and evaluate come with their own work)."""
    later = [s for s in ("finetune", "evaluate") if (ROOT / "jobs" / f"{s}.py").is_file()]
    return ["generate", "train", "lapa_like", *later, "report"]


def _pipeline_args(root: Path) -> list[str]:
    return ["python", "jobs/pipeline.py", "configs/quickstart.yaml", f"output_root={root}",
            f"stages=[{','.join(_stages())}]", f"generate.overrides={TINY_GENERATE}",
            f"train.overrides={TINY_TRAIN}", f"finetune.overrides={TINY_FINETUNE}", "lapa_like.train=4",
            "lapa_like.val=0", "lapa_like.test=2"]


@pytest.fixture(scope="module")
def pipeline_root(ray_head, tmp_path_factory):
    """Run ``jobs/pipeline.py`` once (the stages that exist on this tree); the tests read what it left."""
    root = tmp_path_factory.mktemp("pipeline") / "run"
    proc = ray_head.submit(_pipeline_args(root), timeout=900)
    _ok(proc)
    return root, proc.stdout


def test_pipeline_job_runs_every_stage_and_writes_the_report(pipeline_root):
    root, log = pipeline_root
    for name in _stages():
        assert read_marker(root, name)["status"] == "done", name
        assert f"{name}: done in" in log
    assert sorted(Manifest.load(root / "dataset").committed_ids().tolist()) == list(range(16))
    stage1 = json.loads((root / "stage1" / "report.json").read_text())
    assert stage1["split"]["val_samples"] >= 1 and stage1["val"]["nme"] is not None
    assert len(list((root / "lapa_like" / "test" / "images").glob("*.jpg"))) == 2
    report = (root / "report.md").read_text()
    assert "| landmark NME (inter-ocular) |" in report and "![Stage I held-out predictions]" in report
    if "finetune" in _stages():
        assert "| test.landmarks.nme |" in report and "stage2/qualitative.png" in report


def test_pipeline_job_rerun_skips_complete_stages(ray_head, pipeline_root):
    root, _ = pipeline_root
    proc = ray_head.submit(_pipeline_args(root), timeout=300)
    _ok(proc)
    for name in _stages()[:-1]:  # all but the report, which always runs
        assert f"{name}: complete with the same config, skipped" in proc.stdout, name


def test_train_stage1_job_on_ray_train(ray_head, pipeline_root, tmp_path):
    root, _ = pipeline_root
    out = tmp_path / "stage1_ray"
    proc = ray_head.submit(["python", "jobs/train_stage1.py", "configs/train/quickstart.yaml", f"output_dir={out}",
                            f"data.dataset_dir={root / 'dataset'}", "runner=ray", "ray.address=auto",
                            "ray.cpus_per_worker=1", *TINY_TRAIN.strip("[]").split(",")])
    _ok(proc)
    report = json.loads((out / "report.json").read_text())
    assert report["runner"] == "ray" and report["steps"] >= 1
    assert (out / "model").is_dir()


#: The other entrypoints: (job file, config, overrides on the pipeline's outputs). Stage II keeps its
#: preset's runner=local: one Ray Train job (train_stage1's) is enough for the suite's time.
LATER_JOBS = {
    "finetune": ("configs/finetune/quickstart.yaml",
                 lambda root, out: [f"output_dir={out}", f"model.stage1={root / 'stage1'}", "crop.input_size=32",
                                    f"benchmark.root={root / 'lapa_like'}", "benchmark.build_from=null",
                                    "train.epochs=1", "train.batch_size=2"]),
    "evaluate": ("configs/evaluate/quickstart.yaml",
                 lambda root, out: [f"output_dir={out}", f"model.stage1={root / 'stage1'}", "model.finetuned=null",
                                    "input_size=32", f"benchmark.root={root / 'lapa_like'}",
                                    "benchmark.build_from=null"]),
    # the sweep makes its own small datasets; one validation round per trial, 16 samples per strategy
    "sweep": ("configs/sweep/quickstart.yaml",
              lambda root, out: [f"output_dir={out}", "ray.address=auto", "data.budget=16", "data.val_samples=8",
                                 "asha.max_t=1", "train.overrides=[crop.input_size=32,train.batch_size=4,"
                                 "train.validate_every=1,train.figure_samples=0,train.predictions=false]"]),
}


@pytest.mark.parametrize("job", sorted(LATER_JOBS))
def test_later_entrypoint_job(ray_head, pipeline_root, tmp_path, job):
    job_file = ROOT / "jobs" / f"{job}.py"
    assert job_file.is_file(), f"jobs/{job}.py is missing"
    config, overrides = LATER_JOBS[job]
    root, _ = pipeline_root
    out = tmp_path / job
    proc = ray_head.submit(["python", f"jobs/{job}.py", config, *overrides(root, out)])
    _ok(proc)
    assert out.is_dir() and any(out.iterdir())
