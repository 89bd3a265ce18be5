"""``jobs/generate.py`` under ``ray job submit`` against the session's loopback head (token auth on).

The head comes from the ``ray_head`` fixture (``tests/jobs/conftest.py``): private temp dir and
ports, its own token, and a teardown that stops exactly the processes it started.
"""

from __future__ import annotations

import time

import pytest

from sfray.data.manifest import Manifest
from sfray.data.verify import verify_dataset

pytestmark = pytest.mark.ray


def test_generate_job_runs_under_ray_job_submit(ray_head, tmp_path):
    out = tmp_path / "job"
    start = time.monotonic()
    proc = ray_head.submit(["python", "jobs/generate.py", "configs/generate/quickstart.yaml",
                            f"output_dir={out}", "generate.num_samples=8", "generate.resolution=64",
                            "generate.samples_per_shard=4", "ray.address=auto", "ray.actors_max=1"])
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert "committed 8/8" in proc.stdout
    assert sorted(Manifest.load(out).committed_ids().tolist()) == list(range(8))
    assert verify_dataset(out).ok
    assert time.monotonic() - start < 600
