"""``sfray generate`` on a healthy run prints progress and the summary, and no error-level line.

Ray core prints an error-level line for every pool actor that may restart while its constructor
arguments live in the object store (Ray Data always passes them that way); sfray turns Ray's actor
restart off and resumes lost work itself (``sfray.distributed.executor``), so a user never reads
an error on a run that worked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "configs" / "generate" / "quickstart.yaml"
#: Python logging's ERROR/CRITICAL, Ray's C++ log lines at E/F level ("[date time E pid tid] file.cc"),
#: raylet-prefixed error lines, and tracebacks.
ERROR_LINE = re.compile(r"\bERROR\b|\bCRITICAL\b|\(raylet\) [EF]\b|^\[[^\]]*\s[EF]\s+\d+\s+\d+\]|Traceback",
                        re.MULTILINE)


def test_the_pattern_recognises_error_lines():
    assert ERROR_LINE.search("[2026-12-05 20:55:07,220 E 8810 8810] core_worker.cc:2465: Actor with class")
    assert ERROR_LINE.search("2026-12-05 20:55:07,221\tERROR worker.py:1 -- boom")
    assert ERROR_LINE.search("(raylet) E 1205 something")
    assert not ERROR_LINE.search("2026-12-05 20:55:07,221\tWARNING __init__.py:28 -- Progress bars disabled.")


def test_generate_prints_progress_and_summary_and_no_error_line(tmp_path):
    out = tmp_path / "ds"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "sfray.cli", "generate", str(QUICKSTART), f"output_dir={out}",
           "generate.num_samples=8", "generate.resolution=64", "generate.batch_size=4",
           "generate.samples_per_shard=4", "generate.preview_samples=2", "ray.actors_min=1", "ray.actors_max=1",
           "ray.num_cpus=2"]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert re.search(r"^generate: 8/8 \([\d.]+/s, ETA .*\), shards 2$", proc.stderr, re.MULTILINE), log[-3000:]
    assert f"dataset: {out}  committed 8/8 (dropped 0); generated 8 this run" in proc.stdout
    assert f"preview: {out / 'preview.png'}" in proc.stdout and (out / "preview.png").is_file()
    bad = [line for line in log.splitlines() if ERROR_LINE.search(line)]
    assert not bad, "\n".join(bad)
