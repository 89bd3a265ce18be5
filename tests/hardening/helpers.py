"""Shared helpers of the hardening tests: tiny in-process runs and CLI calls in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sfray.config.loader import load_config
from sfray.config.schema import GenerateJobConfig

ROOT = Path(__file__).resolve().parents[2]
#: A tiny procedural run: 8 samples at 32x32 in two shards of 4 (seconds on a CPU).
TINY = ["seed=3", "generate.num_samples=8", "generate.resolution=32", "generate.batch_size=4",
        "generate.samples_per_shard=4", "generate.preview_samples=1"]


def tiny_cfg(out: Path | str, *extra: str) -> GenerateJobConfig:
    return load_config(GenerateJobConfig, None, [f"output_dir={out}", *TINY, *extra])


class SharedExecutor:
    """An in-process executor whose producer (the generator stack, slow to warm up) is reused by
    every test of the session whose config differs only in keys that change no sample's bytes
    (``sfray.generation.compat.FREE_KEYS``: output_dir, num_samples, ...); the executor writes
    where the run's config says."""

    _producers: dict[str, object] = {}

    def __new__(cls):
        from sfray.generation.executor import InProcessExecutor

        class _Shared(InProcessExecutor):
            def producer(self, cfg):
                from sfray.generation.compat import FREE_KEYS, flat_config
                from sfray.generation.producer import SampleProducer

                key = repr(sorted((k, repr(v)) for k, v in flat_config(cfg).items()
                                  if not k.startswith(FREE_KEYS)))
                if key not in cls._producers:
                    cls._producers[key] = SampleProducer(cfg, "cpu")
                return cls._producers[key]

        return _Shared("cpu")


def generate(out: Path | str, *extra: str, progress: bool = False, executor=None):
    """The library run with the in-process executor (what ``sfray generate`` does, without Ray)."""
    from sfray.generation.run import run_generation

    return run_generation(tiny_cfg(out, *extra), executor or SharedExecutor(), progress=progress)


def cli(*args: str, cwd: Path | None = None, timeout: float = 300,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m sfray.cli ARGS`` in a subprocess (this worktree first on the path)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                **(env or {})}
    return subprocess.run([sys.executable, "-m", "sfray.cli", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(stderr: str) -> str:
    """The single ``sfray: error:`` line of ``stderr``; fails when there is more (a traceback...)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("sfray: error: "), stderr[-3000:]
    return lines[0]


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes (to prove that nothing changed)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    """``sfray ARGV`` in this process: (exit code, stdout, stderr)."""
    from sfray.cli import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
