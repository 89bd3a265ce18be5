"""Support of the hostile-input probe (``tests/hardening/probe_hostile.py``): the case record, the
sandbox helpers (a base dataset copied into each case, tmpfs mounts, hostile files, a lock holder)
and the state the classifier compares against (snapshots of folders that must not change)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.hardening import hostile

ROOT = Path(__file__).resolve().parents[2]

QUICKSTART = str(ROOT / "configs" / "generate" / "quickstart.yaml")
SMALL = ["seed=3", "generate.num_samples=8", "generate.resolution=32", "generate.batch_size=4",
         "generate.samples_per_shard=4", "generate.preview_samples=1", "ray.actors_min=1", "ray.actors_max=1",
         "ray.num_cpus=2"]
ERROR_LINE = re.compile(r"\bERROR\b|\bCRITICAL\b|\(raylet\) [EF]\b|^\[[^\]]*\s[EF]\s+\d+\s+\d+\]|Traceback",
                        re.MULTILINE)
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONUNBUFFERED": "1"}
MARKER = "PWNED"  # the hostile pickles' payload creates this file: code executed


@dataclass
class Case:
    fault: str
    argv: Callable[[Path], list[str]]
    names: Callable[[Path], list[str]] = lambda d: []  # one must appear in the error line
    kept: str = "everything (nothing was written)"
    expect: str = "error"  # error | ok (exit 0 and check) | report (exit 1 and check) | signal
    check: Callable[[Path, subprocess.CompletedProcess], str | None] | None = None  # unsafe reason
    correct: Callable[[Path, subprocess.CompletedProcess], bool] | None = None  # the correct result
    setup: Callable[[Path], None] | None = None
    ray: bool = False
    root_only: bool = False
    signal_after_receipt: int | None = None
    timeout: float = 600


@dataclass
class Outcome:
    fault: str
    verdict: str
    sees: str
    kept: str
    seconds: float
    why: str = ""
    extra: dict = field(default_factory=dict)


# -- sandbox helpers -----------------------------------------------------------------------------------

def sfray(*args: str) -> list[str]:
    return [sys.executable, "-m", "sfray.cli", *args]


def gen(d: Path, *extra: str, out: str | None = None) -> list[str]:
    return sfray("generate", QUICKSTART, f"output_dir={out if out is not None else d / 'ds'}", *SMALL, *extra)


def tree(path: Path) -> dict[str, bytes]:
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def stat_tree(path: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.rglob("*"))}


STARTED: dict[str, float] = {}


def rows(ds: Path) -> dict[int, str]:
    from sfray.data.manifest import Manifest

    try:
        return {int(r["sample_id"]): r["checksum"] for r in Manifest.load(ds).rows()}
    except Exception:  # noqa: BLE001 - a damaged manifest is part of some cases
        return {}


BASE: dict[str, Path] = {}


def base_dataset(work: Path) -> Path:
    """An 8-sample dataset made in-process with the probe's settings (copied into each case)."""
    if "ds" not in BASE:
        from sfray.config.loader import load_config
        from sfray.config.schema import GenerateJobConfig
        from sfray.generation.executor import InProcessExecutor
        from sfray.generation.run import run_generation

        out = work / "_base" / "ds"
        cfg = load_config(GenerateJobConfig, QUICKSTART, [f"output_dir={out}", *SMALL])
        run_generation(cfg, InProcessExecutor("cpu"), progress=False)
        BASE["ds"] = out
    return BASE["ds"]


def with_dataset(d: Path) -> Path:
    ds = d / "ds"
    shutil.copytree(BASE["ds"], ds)
    (ds / "sfray.lock").unlink(missing_ok=True)
    return ds


def shard_of(ds: Path, sid: int) -> Path:
    from sfray.data import layout
    from sfray.data.manifest import Manifest

    row = next(r for r in Manifest.load(ds).rows() if r["sample_id"] == sid)
    return layout.shard_path(ds, row["shard"])


def mount(point: Path, opts: str) -> bool:
    point.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)],
                          capture_output=True).returncode == 0


def umount_all(work: Path) -> None:
    for line in Path("/proc/mounts").read_text().splitlines():
        point = line.split()[1]
        if point.startswith(str(work)):
            subprocess.run(["umount", "-l", point], capture_output=True)


def payload(d: Path) -> tuple:
    return (f"touch {d / MARKER}",)


def write_pickle(path: Path, data: bytes) -> Path:
    return hostile.write(path, data)


def evil(d: Path, inner: bytes, name: str = "evil.pkl") -> Path:
    return write_pickle(d / name, hostile.in_dict("G_ema", inner))


def verified(ds: Path) -> bool:
    from sfray.data.verify import verify_dataset

    try:
        return verify_dataset(ds).ok
    except Exception:  # noqa: BLE001
        return False


# -- the cases -----------------------------------------------------------------------------------------
SNAP: dict[str, dict[str, bytes]] = {}


def delete_key(ds: Path, sid: int) -> None:
    import lmdb

    env = lmdb.open(str(shard_of(ds, sid)), subdir=False, lock=False)
    with env.begin(write=True) as txn:
        txn.delete(b"%012d" % sid)
    env.close()


HOLDERS: list[subprocess.Popen] = []


def hold_lock(ds: Path) -> None:
    code = ("import sys, time\nfrom sfray.data.layout import dataset_lock\n"
            "with dataset_lock(sys.argv[1], 'probe holder'):\n    print('locked', flush=True)\n    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(ds)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    HOLDERS.append(proc)


def killed_run(d: Path) -> None:
    out = d / "ds"
    proc = subprocess.run(gen(d, "generate.num_samples=32", "faults.fail_driver_after_shards=1"), env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    time.sleep(8)  # the watchdog stops the dead driver's Ray processes
    assert out.is_dir()




def path_names(*names: str) -> Callable[[Path], list[str]]:
    """The case folder's ``names`` as the strings an error line must contain one of."""
    return lambda d: [str(d / x) for x in names]
