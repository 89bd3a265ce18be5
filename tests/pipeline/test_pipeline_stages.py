"""The pipeline's skip / resume / redo rules, with stand-in runners (no Ray, no training).

The stand-ins write the files the real jobs leave (a dataset's dataset.yaml and manifest, Stage
I's report.json and model folder) into the output_dir the pipeline wired into their configs, and
count their calls, so each test can tell which stages ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sfray.config.loader import load_config
from sfray.config.pipeline import PipelineJobConfig
from sfray.errors import ConfigError
from sfray.pipeline import run_pipeline
from sfray.pipeline import stages as stage_table
from sfray.pipeline.layout import marker_path
from sfray.pipeline.marker import read_marker

ROOT = Path(__file__).resolve().parents[2]


class FakeJobs:
    """Runners for generate and train that write the documented output files and record calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Path]] = []
        self.fail_train = False

    def generate(self, cfg, progress):
        out = Path(cfg.output_dir)
        self.calls.append(("generate", out))
        out.mkdir(parents=True, exist_ok=True)
        (out / "dataset.yaml").write_text(f"num_samples: {cfg.generate.num_samples}\n")
        (out / "manifest.parquet").write_bytes(b"stand-in")
        return {"output_dir": str(out), "requested": cfg.generate.num_samples,
                "committed": cfg.generate.num_samples, "dropped": 0}

    def train(self, cfg, progress):
        out = Path(cfg.output_dir)
        self.calls.append(("train", out))
        assert cfg.data.dataset_dir == str(out.parent / "dataset")  # wired to the generate stage's output
        if self.fail_train:
            out.mkdir(parents=True, exist_ok=True)
            (out / "partial").write_text("half a run")
            raise RuntimeError("worker lost")
        (out / "model").mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps({"steps": cfg.train.epochs, "val": {"nme": 0.5}}))
        return {"steps": cfg.train.epochs, "history": [1, 2, 3]}

    def runners(self):
        return {"generate": self.generate, "train": self.train}

    def ran(self) -> list[str]:
        return [name for name, _ in self.calls]


def _cfg(root: Path, *extra: str) -> PipelineJobConfig:
    return load_config(PipelineJobConfig, ROOT / "configs/quickstart.yaml",
                       [f"output_root={root}", "stages=[generate,train,report]", *extra])


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    monkeypatch.chdir(ROOT)  # stage configs are named relative to the repository


def test_second_run_skips_complete_stages_and_report_gathers_them(tmp_path):
    jobs, lines = FakeJobs(), []
    first = run_pipeline(_cfg(tmp_path), jobs.runners(), progress=False, log=lines.append)
    assert jobs.ran() == ["generate", "train"]
    assert {k: v["status"] for k, v in first["stages"].items()} == {"generate": "ran", "train": "ran", "report": "ran"}
    assert any("[pipeline 2/3] train: done in" in line for line in lines)
    assert read_marker(tmp_path, "train")["status"] == "done"
    assert "history" not in read_marker(tmp_path, "train")["summary"]  # reports stay in their own files
    second = run_pipeline(_cfg(tmp_path), jobs.runners(), progress=False, log=lines.append)
    assert jobs.ran() == ["generate", "train"]  # nothing reran
    assert second["stages"]["generate"]["status"] == "skipped"
    assert (tmp_path / "report.md").is_file()
    assert "| landmark NME (inter-ocular) | 0.5000 |" in (tmp_path / "report.md").read_text()


def test_changed_stage_config_redoes_it_and_everything_downstream(tmp_path):
    jobs = FakeJobs()
    run_pipeline(_cfg(tmp_path), jobs.runners(), progress=False, log=lambda s: None)
    stale = tmp_path / "stage1" / "stale.txt"
    stale.write_text("from the first run")
    run_pipeline(_cfg(tmp_path, "generate.overrides=[generate.num_samples=7]"), jobs.runners(), progress=False,
                 log=lambda s: None)
    assert jobs.ran() == ["generate", "train", "generate", "train"]  # train reads generate: redone too
    assert not stale.exists()  # a redone stage starts from an empty folder
    assert (tmp_path / "dataset" / "dataset.yaml").read_text() == "num_samples: 7\n"


def test_only_the_changed_stage_reruns_when_upstream_is_unchanged(tmp_path):
    jobs = FakeJobs()
    run_pipeline(_cfg(tmp_path), jobs.runners(), progress=False, log=lambda s: None)
    run_pipeline(_cfg(tmp_path, "train.overrides=[train.epochs=3]"), jobs.runners(), progress=False,
                 log=lambda s: None)
    assert jobs.ran() == ["generate", "train", "train"]
    assert json.loads((tmp_path / "stage1" / "report.json").read_text())["steps"] == 3


def test_interrupted_stage_resumes_on_its_output_and_missing_output_reruns(tmp_path):
    jobs = FakeJobs()
    jobs.fail_train = True
    with pytest.raises(RuntimeError):
        run_pipeline(_cfg(tmp_path), jobs.runners(), progress=False, log=lambda s: None)
    assert read_marker(tmp_path, "train")["status"] == "running"
    jobs.fail_train = False
    run_pipeline(_cfg(tmp_path), jobs.runners(), progress=False, log=lambda s: None)
    assert jobs.ran() == ["generate", "train", "train"]  # generate was complete: not rerun
    assert (tmp_path / "stage1" / "partial").exists()  # same config: resumed on its output, not wiped
    (tmp_path / "dataset" / "manifest.parquet").unlink()  # output incomplete although the marker says done
    run_pipeline(_cfg(tmp_path), jobs.runners(), progress=False, log=lambda s: None)
    assert jobs.ran()[3:] == ["generate"]  # regenerated; its hash is unchanged, so train stays complete


def test_force_and_damaged_marker_rerun(tmp_path):
    jobs = FakeJobs()
    run_pipeline(_cfg(tmp_path), jobs.runners(), progress=False, log=lambda s: None)
    marker_path(tmp_path, "generate").write_text("{not json")
    run_pipeline(_cfg(tmp_path, "force=[train]"), jobs.runners(), progress=False, log=lambda s: None)
    assert jobs.ran()[2:] == ["generate", "train"]


def test_bad_override_of_a_later_stage_fails_before_anything_runs(tmp_path):
    jobs = FakeJobs()
    with pytest.raises(ConfigError, match="train.epoks"):
        run_pipeline(_cfg(tmp_path, "train.overrides=[train.epoks=2]"), jobs.runners(), progress=False,
                     log=lambda s: None)
    assert jobs.calls == [] and not (tmp_path / "stages").exists()


def test_stage_without_its_job_or_runner_is_named(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="need runners"):
        run_pipeline(_cfg(tmp_path), {"generate": FakeJobs().generate}, progress=False, log=lambda s: None)
    missing = stage_table.Stage("finetune", ("train",), ("report.json",), ("sfray.no_such_module", "X"),
                                stage_table._wire_finetune, needs_runner=True)
    monkeypatch.setitem(stage_table.STAGES, "finetune", missing)
    with pytest.raises(ConfigError, match="stage 'finetune' needs sfray.no_such_module.X"):
        run_pipeline(_cfg(tmp_path, "stages=[generate,finetune]"), {**FakeJobs().runners(), "finetune": print},
                     progress=False, log=lambda s: None)


@pytest.mark.parametrize("override, key", [
    ("stages=[generate,trian]", "stages"),
    ("stages=[]", "stages"),
    ("force=[report,report]", "force"),
    ("train.overrides=[output_dir=/tmp/x]", "train.overrides"),
    ("output_root=.", "output_root"),
    ("lapa_like.test=0", "lapa_like.test"),
])
def test_bad_pipeline_config_names_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(PipelineJobConfig, ROOT / "configs/quickstart.yaml",
                    [f"output_root={tmp_path}", "stages=[generate,train,lapa_like,report]", override])


def test_stages_run_in_pipeline_order_whatever_order_they_are_given(tmp_path):
    cfg = _cfg(tmp_path, "stages=[report,train,generate]")
    assert cfg.ordered_stages() == ["generate", "train", "report"]


@pytest.mark.parametrize("preset", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_pipeline_presets_name_stage_configs_that_load_with_the_wiring(preset, tmp_path):
    cfg = load_config(PipelineJobConfig, preset, [f"output_root={tmp_path}"])
    for name in ("generate", "train", "finetune", "evaluate"):
        path = getattr(cfg, name).config
        if name not in cfg.stages:
            continue
        assert (ROOT / path).is_file(), f"{preset.name}: {name}.config={path} does not exist"
        prepared = stage_table.prepare(cfg, name)  # the wiring overrides are keys of that job's schema
        assert str(getattr(prepared.job, "output_dir")).startswith(str(tmp_path))


def test_lapa_like_stage_replaces_a_set_left_without_its_marker(tmp_path, monkeypatch):
    import sfray.benchmarks.lapa_like as lapa_like

    calls = []

    def fake_make(dataset_dir, out_dir, counts, **kw):
        assert not Path(out_dir).exists()  # make_lapa_like refuses an existing folder
        calls.append((Path(dataset_dir), counts, kw["first_id"], kw["resolution"]))
        Path(out_dir).mkdir()
        return counts

    monkeypatch.setattr(lapa_like, "make_lapa_like", fake_make)
    cfg = _cfg(tmp_path, "stages=[lapa_like]", "lapa_like.train=3", "lapa_like.val=0", "lapa_like.test=2")
    (tmp_path / "lapa_like").mkdir(parents=True)  # a set whose run stopped before the marker was written
    run_pipeline(cfg, {}, progress=False, log=lambda s: None)
    assert calls == [(tmp_path / "dataset", {"train": 3, "val": 0, "test": 2}, None, None)]
    assert read_marker(tmp_path, "lapa_like")["summary"]["written"] == {"train": 3, "val": 0, "test": 2}
