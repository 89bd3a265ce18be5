"""The library generation run with the in-process executor: records, resume, lost workers, old datasets.

Everything here runs without Ray; ``tests/distributed`` runs the same run with the Ray executor.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from sfray.config.loader import load_config
from sfray.config.schema import GenerateJobConfig
from sfray.data import layout
from sfray.data.verify import verify_dataset
from sfray.errors import ConfigError
from sfray.generation.executor import InProcessExecutor, WorkerLost
from sfray.generation.run import run_generation
from tests.generation.fixture_rows import expected_rows, fixture, manifest_rows


def cfg_for(out: Path, *extra: str) -> GenerateJobConfig:
    return load_config(GenerateJobConfig, None, [f"output_dir={out}", *fixture()["overrides"],
                                                 "generate.preview_samples=2", *extra])


def test_in_process_run_matches_the_record_fixture_and_resumes_identically(tmp_path):
    """The whole run (preflight .. finalize) gives the fixture's bytes, in one go or in two, and
    prints its progress line."""
    import io

    executor = InProcessExecutor("cpu")
    one = tmp_path / "one"
    stream = io.StringIO()
    summary = run_generation(cfg_for(one), executor, stream=stream)
    assert summary.committed == 16 and summary.generated_this_run == 16
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("generate: 16/16") and "/s, ETA" in last and "shards 2" in last
    expected = expected_rows()
    if expected is not None:
        assert manifest_rows(one) == expected
    assert verify_dataset(one).ok
    assert (one / layout.PREVIEW_FILE).is_file() and (one / layout.DATASET_YAML).is_file()
    assert not layout.tmp_files(one)

    two = tmp_path / "two"
    first = run_generation(cfg_for(two, "generate.num_samples=8"), executor, progress=False)
    second = run_generation(cfg_for(two), executor, progress=False)
    assert first.committed == 8 and second.generated_this_run == 8
    assert manifest_rows(two) == manifest_rows(one)


class FlakyExecutor(InProcessExecutor):
    """Executes only the first unit of a pass, then reports a lost worker (``fail`` times)."""

    def __init__(self, fail: int, max_attempts: int = 3):
        super().__init__("cpu")
        self.fail, self.max_attempts, self.passes = fail, max_attempts, []

    @contextlib.contextmanager
    def session(self, cfg):
        yield

    def execute(self, cfg, units):
        self.passes.append([u.unit for u in units])
        if self.fail > 0:
            self.fail -= 1
            super().execute(cfg, units[:1])
            raise WorkerLost("a generation worker died (test)")
        super().execute(cfg, units)


def test_a_lost_worker_ends_the_pass_and_the_run_resumes_the_rest(tmp_path, capsys):
    out = tmp_path / "flaky"
    executor = FlakyExecutor(fail=1)
    summary = run_generation(cfg_for(out), executor, progress=False)
    assert executor.passes == [[0, 1], [1]], "the second pass plans only the unit that was lost"
    assert summary.committed == 16 and verify_dataset(out).ok
    assert "resuming the 8 missing samples (pass 2/3)" in capsys.readouterr().err
    expected = expected_rows()
    if expected is not None:
        assert manifest_rows(out) == expected


def test_lost_workers_beyond_max_attempts_fail_the_run_keeping_what_was_committed(tmp_path):
    out = tmp_path / "lost"
    with pytest.raises(WorkerLost):
        run_generation(cfg_for(out), FlakyExecutor(fail=5, max_attempts=1), progress=False)
    rerun = run_generation(cfg_for(out), InProcessExecutor("cpu"), progress=False)
    assert rerun.generated_this_run == 8, "the unit finished before the loss survived the failed run"
    assert rerun.committed == 16 and verify_dataset(out).ok


NEWER_THAN_THE_OLD_LAYOUT = ("generator.next3d.raster_compat", "generator.next3d.compile",
                             "generator.next3d.cuda_graphs")


def _to_old_layout(path: Path) -> None:
    """Rewrite a saved config.yaml into the pre-rename layout (flat generator, knobs in ray)."""
    import yaml

    tree = yaml.safe_load(path.read_text())
    gen = tree["generator"]
    for newer in NEWER_THAN_THE_OLD_LAYOUT:  # keys added to the Next3D section after the rename
        del gen["next3d"][newer.rsplit(".", 1)[-1]]
    flat = {"kind": gen["kind"], "device": gen["device"], **gen.pop("procedural"), **gen.pop("next3d"),
            "misalign": tree["faults"]["misalign"]}
    tree["generator"] = flat
    tree["ray"].pop("max_attempts")
    tree["ray"]["fail_actor_after_batches"] = tree["faults"]["fail_actor_after_batches"]
    tree["ray"]["fail_driver_after_shards"] = tree["faults"]["fail_driver_after_shards"]
    del tree["faults"]
    path.write_text(yaml.safe_dump(tree))


def test_a_dataset_saved_with_the_old_key_layout_resumes(tmp_path):
    """Decision: a dataset made before the generator/faults keys moved stays resumable; its saved
    config is migrated when read, and the compatibility check still refuses real differences."""
    out = tmp_path / "old"
    run_generation(cfg_for(out, "generate.num_samples=4"), InProcessExecutor("cpu"), progress=False)
    saved = out / layout.CONFIG_FILE
    _to_old_layout(saved)
    assert "hair_cap_prob" in saved.read_text() and "faults" not in saved.read_text()
    with pytest.raises(ConfigError, match=r"seed: 7 -> 8"):
        run_generation(cfg_for(out, "seed=8"), InProcessExecutor("cpu"), progress=False)
    with pytest.raises(ConfigError, match=r"generator\.procedural\.hair_cap_prob"):
        run_generation(cfg_for(out, "generator.procedural.hair_cap_prob=0.1"), InProcessExecutor("cpu"),
                       progress=False)
    done = run_generation(cfg_for(out, "generate.num_samples=8"), InProcessExecutor("cpu"), progress=False)
    assert done.generated_this_run == 4 and done.committed == 8
    assert "procedural:" in saved.read_text(), "the resumed run saved the config in the new layout"


def test_old_next3d_configs_read_as_the_exact_texture_raster_they_were_made_with():
    """Datasets written before ``raster_compat`` existed were rasterized with exact barycentrics."""
    from sfray.config.legacy import migrate

    old = {"generator": {"kind": "next3d", "checkpoint": "x.pkl"}}
    assert migrate(old)["generator"]["next3d"] == {"checkpoint": "x.pkl", "raster_compat": "exact"}
    new = {"generator": {"kind": "next3d", "next3d": {"checkpoint": "x.pkl", "raster_compat": "pytorch3d"}}}
    assert migrate(new)["generator"]["next3d"]["raster_compat"] == "pytorch3d"


def test_free_keys_may_change_on_resume_but_faults_misalign_may_not(tmp_path):
    out = tmp_path / "free"
    run_generation(cfg_for(out, "generate.num_samples=4"), InProcessExecutor("cpu"), progress=False)
    run_generation(cfg_for(out, "generate.num_samples=4", "faults.fail_actor_after_batches=3",
                           "ray.max_attempts=1", "generate.preview_samples=1"), InProcessExecutor("cpu"),
                   progress=False)
    with pytest.raises(ConfigError, match=r"faults\.misalign"):
        run_generation(cfg_for(out, "faults.misalign=[1,0,0,0,0,0,1]"), InProcessExecutor("cpu"),
                       progress=False)


def test_codec_keys_change_the_bytes_not_the_content(tmp_path):
    """``generate.image_format=zstd`` + ``generate.array_codec=zstd``: a valid dataset (verify) whose
    records decode to exactly what the default PNG + zlib records decode to."""
    import numpy as np

    from sfray.data.reader import RecordReader, committed_rows
    from sfray.data.record import decode_record

    executor = InProcessExecutor("cpu")
    few = ("generate.num_samples=6", "generate.preview_samples=0")
    run_generation(cfg_for(tmp_path / "png", *few), executor, progress=False)
    run_generation(cfg_for(tmp_path / "zstd", *few, "generate.image_format=zstd", "generate.array_codec=zstd"),
                   executor, progress=False)
    assert verify_dataset(tmp_path / "zstd").ok

    def decoded(root: Path) -> dict[int, dict]:
        with RecordReader(root) as reader:
            return {int(r["sample_id"]): decode_record(reader.row(r)) for r in committed_rows(root).to_pylist()}

    png, zstd = decoded(tmp_path / "png"), decoded(tmp_path / "zstd")
    assert sorted(png) == sorted(zstd) == list(range(6))
    for sid, rec in png.items():
        assert sorted(rec) == sorted(zstd[sid])
        for key, value in rec.items():
            assert np.array_equal(np.asarray(value), np.asarray(zstd[sid][key])), (sid, key)
