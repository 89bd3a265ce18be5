"""Two-stage generation (generator actors -> CPU encode tasks -> datasink): same bytes, bounded store.

One local Ray runtime (loopback only) serves the module and is shut down by it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sfray.config import GenerateJobConfig, load_config
from sfray.config.schema import RayConfig
from sfray.data.manifest import Manifest

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "configs" / "generate" / "quickstart.yaml"


def tiny(out: Path, *extra: str) -> GenerateJobConfig:
    return load_config(GenerateJobConfig, QUICKSTART, [
        f"output_dir={out}", "generate.num_samples=12", "generate.resolution=64",
        "generate.batch_size=4", "generate.samples_per_shard=4", "generate.preview_samples=0",
        "ray.actors_min=1", "ray.actors_max=1", *extra,
    ])


def checksums(out: Path) -> dict[int, str]:
    return {int(r["sample_id"]): r["checksum"] for r in Manifest.load(out).rows()}


@pytest.fixture(scope="module")
def ray_local():
    import ray

    from sfray.distributed.runtime import use_loopback

    use_loopback()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_budget_sizes_follow_the_config_and_the_cluster():
    from ray.data import DataContext

    from sfray.distributed.pipeline_budget import MIB, apply_budget, pipeline_budget

    auto = pipeline_budget(RayConfig(actors_max=2, cpus_per_actor=1.0), cluster_cpus=16, cluster_object_store_bytes=8e9)
    assert auto.encode_workers == 14  # the CPUs the two actors leave free
    assert auto.object_store_bytes == 4_000_000_000  # half the object store
    small = pipeline_budget(RayConfig(actors_max=2), cluster_cpus=2, cluster_object_store_bytes=1e9)
    assert small.encode_workers == 1  # never zero by accident: 0 is the single-stage layout
    fixed = pipeline_budget(RayConfig(encode_workers=0, object_store_budget_mb=256), 16, 8e9)
    assert (fixed.encode_workers, fixed.object_store_bytes) == (0, 256 * MIB)
    ctx = apply_budget(fixed, DataContext())
    assert ctx.execution_options.resource_limits.object_store_memory == 256 * MIB


def test_bad_budget_keys_are_refused():
    from sfray.errors import ConfigError

    with pytest.raises(ConfigError, match="ray.encode_workers"):
        RayConfig(encode_workers=-1).validate()
    with pytest.raises(ConfigError, match="ray.object_store_budget_mb"):
        RayConfig(object_store_budget_mb=1).validate()


def test_two_stage_and_single_stage_make_the_in_process_bytes(tmp_path, ray_local):
    from ray.data import DataContext

    from sfray.distributed.executor import RayExecutor
    from sfray.distributed.pipeline_budget import MIB
    from sfray.generation.executor import InProcessExecutor
    from sfray.generation.run import run_generation

    # The reference runs with this process's thread count, the actors with one intra-op thread
    # (a 1-CPU actor gets OMP_NUM_THREADS=1): records do not depend on it (docs/reliability.md).
    loop = tiny(tmp_path / "loop")
    run_generation(loop, InProcessExecutor(), progress=False)
    want = checksums(tmp_path / "loop")
    assert len(want) == 12

    two = tiny(tmp_path / "two", "ray.object_store_budget_mb=300")
    ex = RayExecutor(two.ray)
    run_generation(two, ex, progress=False)
    assert checksums(tmp_path / "two") == want
    assert ex.last_budget is not None and ex.last_budget.encode_workers >= 1
    # the budget is on the context the pipeline ran with
    assert DataContext.get_current().execution_options.resource_limits.object_store_memory == 300 * MIB
    # every unit went through both stages, and the encode stage did the encoding
    assert ex.last_stats["units"] == 3
    assert ex.last_stats["generator_busy_s"] > 0 and ex.last_stats["encode_s"] > 0

    one = tiny(tmp_path / "one", "ray.encode_workers=0")
    ex1 = RayExecutor(one.ray)
    run_generation(one, ex1, progress=False)
    assert checksums(tmp_path / "one") == want
    assert ex1.last_budget.encode_workers == 0
    # single stage: the encoding happens inside the actor's busy time
    assert 0 < ex1.last_stats["encode_s"] < ex1.last_stats["generator_busy_s"]
