"""Probe ``sfray`` with hostile inputs and classify what a user sees (docs/reliability.md).

    python -m tests.hardening.probe_hostile [--only SUBSTRING] [--no-ray] [--out outputs/probe]

Every case runs the real CLI (``python -m sfray.cli``) in a subprocess, in a sandbox directory, and
is classified as:

* **clear**: exit code 2 and exactly one ``sfray: error:`` line that names the file or key (no
  traceback, no error-level log line), or the correct result where there is one (a rerun that
  regenerates damaged shards, a verify that reports the damaged row, a dump that stays inside
  its folder, exit 143/130 with "sfray: interrupted" for a signal);
* **unsafe**: data lost (committed rows or a user's files changed), a path escaped (anything
  written or read outside where it belongs), success reported over missing data, or code from a
  file executed (the hostile pickles' payload creates a marker file);
* **unclear**: anything else (a traceback, several lines, a message that names neither the file
  nor the key, a wrong exit code, a hang).

The run prints one row per case and the counts, and writes ``report.md`` (the table of
docs/reliability.md: fault tried | what the user sees | what is kept) and ``report.json``.
Mounting tmpfs (a full or read-only disk) needs root; those cases are skipped otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.hardening import hostile  # noqa: E402

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

def cases() -> list[Case]:  # noqa: C901 - a flat list of cases reads best
    C: list[Case] = []
    key = lambda *k: (lambda d: list(k))  # noqa: E731
    path = lambda *p: (lambda d: [str(d / x) for x in p])  # noqa: E731
    untouched = lambda sub: (lambda d, p: None if tree(d / sub) == SNAP.get(str(d / sub)) else f"{sub} changed")  # noqa: E731

    # configs
    def cfgfile(text: bytes | str, name: str = "bad.yaml") -> Callable[[Path], None]:
        def setup(d: Path) -> None:
            (d / name).write_bytes(text if isinstance(text, bytes) else text.encode())
        return setup

    for fault, text in [("YAML config whose top level is a list", "- a\n- b\n"),
                        ("YAML config whose top level is a scalar", "42\n"),
                        ("empty config file", ""), ("config file with only comments", "# nothing\n"),
                        ("config with a YAML syntax error", "generate: [unclosed\n"),
                        ("config file of binary garbage", b"\xff\xfe\x00\x01garbage"),
                        ("config with a tab-indented block", "generate:\n\tnum_samples: 3\n"),
                        ("config with non-string keys", "1: 2\n")]:
        C.append(Case(fault, lambda d: sfray("generate", str(d / "bad.yaml"), f"output_dir={d / 'ds'}"),
                      path("bad.yaml"), setup=cfgfile(text)))
    C.append(Case("a directory given as config", lambda d: sfray("generate", str(d)), lambda d: [str(d)]))
    C.append(Case("config file that does not exist", lambda d: sfray("generate", str(d / "nope.yaml")),
                  path("nope.yaml")))
    C.append(Case("config with an unknown key (typo)", lambda d: sfray("generate", str(d / "bad.yaml")),
                  key("resolutoin"), setup=cfgfile("generate:\n  resolutoin: 64\n")))
    C.append(Case("config with a renamed key", lambda d: sfray("generate", str(d / "bad.yaml")),
                  key("generator.next3d.checkpoint"), setup=cfgfile("generator:\n  checkpoint: x.pkl\n")))
    for fault, override, k in [
        ("override with an unknown section", "nosuch.key=1", "nosuch"),
        ("override of a section by a scalar", "generate=5", "generate"),
        ("override with a non-number", "generate.num_samples=abc", "generate.num_samples"),
        ("num_samples=1e14", "generate.num_samples=1e14", "generate.num_samples"),
        ("num_samples=100000000000000", "generate.num_samples=100000000000000", "generate.num_samples"),
        ("num_samples=-5", "generate.num_samples=-5", "generate.num_samples"),
        ("num_samples=0", "generate.num_samples=0", "generate.num_samples"),
        ("resolution=16", "generate.resolution=16", "generate.resolution"),
        ("resolution=100000", "generate.resolution=100000", "generate.resolution"),
        ("batch_size=0", "generate.batch_size=0", "generate.batch_size"),
        ("batch_size=1e9", "generate.batch_size=1000000000", "generate.batch_size"),
        ("samples_per_shard=0", "generate.samples_per_shard=0", "generate.samples_per_shard"),
        ("image_format=gif", "generate.image_format=gif", "generate.image_format"),
        ("image_quality=500", "generate.image_quality=500", "generate.image_quality"),
        ("resume_check=bogus", "generate.resume_check=bogus", "generate.resume_check"),
        ("seed=-1", "seed=-1", "seed"),
        ("head.kind=bogus", "head.kind=bogus", "head.kind"),
        ("generator.kind=bogus", "generator.kind=bogus", "generator.kind"),
        ("sampling.strategy=bogus", "sampling.strategy=bogus", "sampling.strategy"),
        ("camera range reversed", "camera.yaw_range=[1,0]", "camera.yaw_range"),
        ("camera fov of 500 degrees", "camera.fov_range=[10,500]", "camera.fov_range"),
        ("quality.policy=bogus", "quality.policy=bogus", "quality.policy"),
        ("actors_min > actors_max", "ray.actors_min=5", "ray.actors_min"),
        ("generator.device=tpu", "generator.device=tpu", "generator.device"),
        ("generator.device=cuda without CUDA", "generator.device=cuda", "generator.device"),
        ("ray.gpus_per_actor=1 on a machine without GPU", "ray.gpus_per_actor=1", "ray.gpus_per_actor"),
        ("next3d without a checkpoint", "generator.kind=next3d", "generator.next3d.checkpoint"),
        ("quality.preset=authors without a detector", "quality.preset=authors", "quality.detector"),
        ("quality.detector that does not import", "quality.detector=no.such.module", "quality.detector"),
        ("quality.detector that is not callable", "quality.detector=os.sep", "quality.detector"),
        ("override without '='", "justaword", "justaword"),
    ]:
        C.append(Case(fault, lambda d, o=override: gen(d, o), key(k)))
    C.append(Case("alignment map that does not exist", lambda d: gen(d, f"annotate.alignment_map={d / 'm.pth'}"),
                  path("m.pth")))
    C.append(Case("a directory as alignment map", lambda d: gen(d, f"annotate.alignment_map={d}"),
                  lambda d: [str(d)]))
    C.append(Case("alignment map of garbage", lambda d: gen(d, f"annotate.alignment_map={d / 'm.pth'}"),
                  path("m.pth"), setup=lambda d: (d / "m.pth").write_bytes(b"garbage" * 10)))
    C.append(Case("alignment map pickle calling os.system",
                  lambda d: gen(d, f"annotate.alignment_map={d / 'm.pth'}"), path("m.pth"),
                  setup=lambda d: write_pickle(d / "m.pth", hostile.call("os", "system", payload(d)))))

    # output locations
    for fault, value in [("output_dir=''", "''"), ("output_dir='.'", "."), ("output_dir='/'", "/"),
                         ("output_dir='..'", ".."), ("output_dir=' '", "' '"),
                         ("output_dir = the home directory", str(Path.home()))]:
        C.append(Case(fault, lambda d, v=value: gen(d, out=v), key("output_dir")))
    C.append(Case("output_dir is an existing file", lambda d: gen(d, out=str(d / "f.txt")), path("f.txt"),
                  setup=lambda d: (d / "f.txt").write_text("mine"), kept="the file"))
    C.append(Case("output_dir below a file", lambda d: gen(d, out=str(d / "f.txt" / "ds")), path("f.txt"),
                  setup=lambda d: (d / "f.txt").write_text("mine"), kept="the file"))
    C.append(Case("output_dir is a non-empty folder of the user's", lambda d: gen(d, out=str(d / "mine")),
                  path("mine"), setup=lambda d: (d / "mine").mkdir() or (d / "mine" / "a.tmp-1").write_text("x"),
                  check=untouched("mine"), kept="the folder and its files (its *.tmp-* files too)"))
    C.append(Case("output_dir on a read-only filesystem", lambda d: gen(d, out=str(d / "ro" / "ds")),
                  path("ro"), setup=lambda d: None if mount(d / "ro", "size=1m,ro") else 1 / 0, root_only=True))
    C.append(Case("plan larger than the free space", lambda d: gen(d, "generate.num_samples=100000",
                                                                  out=str(d / "small" / "ds")),
                  path("small"), setup=lambda d: None if mount(d / "small", "size=2m") else 1 / 0, root_only=True))

    # resume guard
    def other(**kw: str) -> Callable[[Path], list[str]]:
        return lambda d: gen(d, *[f"{k}={v}" for k, v in kw.items()])
    C.append(Case("rerun with another resolution", other(**{"generate.resolution": 64}), key("generate.resolution"),
                  setup=with_dataset, kept="the dataset, unchanged"))
    C.append(Case("rerun with another seed", other(seed=9), key("seed"), setup=with_dataset,
                  kept="the dataset, unchanged"))
    C.append(Case("manifest deleted, rerun with another resolution", other(**{"generate.resolution": 64}),
                  key("generate.resolution"), kept="the receipts and shards, unchanged",
                  setup=lambda d: (with_dataset(d) / "manifest.parquet").unlink()))
    def no_configs(d: Path) -> None:
        ds = with_dataset(d)
        for name in ("manifest.parquet", "config.yaml", "dataset.yaml"):
            (ds / name).unlink()
    C.append(Case("manifest, config.yaml and dataset.yaml deleted, rerun with another resolution",
                  other(**{"generate.resolution": 64}), key("generate.resolution"),
                  kept="the receipts and shards, unchanged", setup=no_configs))
    C.append(Case("config.yaml corrupted, rerun", lambda d: gen(d), key("config.yaml"), kept="the dataset",
                  setup=lambda d: (with_dataset(d) / "config.yaml").write_text("generate: [")))

    # assets
    C.append(Case("FLAME model that does not exist", lambda d: gen(d, "head.kind=flame", f"head.path={d / 'g.pkl'}"),
                  path("g.pkl")))
    C.append(Case("a directory as FLAME model", lambda d: gen(d, "head.kind=flame", f"head.path={d}"),
                  lambda d: [str(d)]))
    C.append(Case("FLAME model of garbage", lambda d: gen(d, "head.kind=flame", f"head.path={d / 'g.pkl'}"),
                  path("g.pkl"), setup=lambda d: (d / "g.pkl").write_bytes(b"\x80\x04garbage")))
    C.append(Case("empty FLAME model", lambda d: gen(d, "head.kind=flame", f"head.path={d / 'g.pkl'}"),
                  path("g.pkl"), setup=lambda d: (d / "g.pkl").write_bytes(b"")))
    C.append(Case("FLAME pickle calling os.system", lambda d: gen(d, "head.kind=flame", f"head.path={d / 'g.pkl'}"),
                  path("g.pkl"), setup=lambda d: write_pickle(d / "g.pkl", hostile.call("os", "system", payload(d)))))
    C.append(Case("FLAME pickle asking for 36 TB", lambda d: gen(d, "head.kind=flame", f"head.path={d / 'g.pkl'}"),
                  path("g.pkl"), setup=lambda d: write_pickle(
                      d / "g.pkl", hostile.call("numpy.core.multiarray", "_reconstruct",
                                                (__import__("numpy").ndarray, (10**12, 5), b"f8")))))
    C.append(Case("FLAME pickle nested 5000 deep", lambda d: gen(d, "head.kind=flame", f"head.path={d / 'g.pkl'}"),
                  path("g.pkl"), setup=lambda d: write_pickle(d / "g.pkl", hostile.deep_list(5000))))
    n3d = lambda d, name="evil.pkl": gen(d, "generator.kind=next3d", f"generator.next3d.checkpoint={d / name}")  # noqa: E731
    C.append(Case("checkpoint that does not exist", lambda d: n3d(d), path("evil.pkl")))
    C.append(Case("a directory as checkpoint", lambda d: gen(d, "generator.kind=next3d",
                                                             f"generator.next3d.checkpoint={d}"), lambda d: [str(d)]))
    C.append(Case("empty checkpoint", lambda d: n3d(d), path("evil.pkl"),
                  setup=lambda d: (d / "evil.pkl").write_bytes(b"")))
    C.append(Case("checkpoint of text", lambda d: n3d(d), path("evil.pkl"),
                  setup=lambda d: (d / "evil.pkl").write_text("hello")))
    C.append(Case("checkpoint: torch zip archive", lambda d: n3d(d), path("evil.pkl"),
                  setup=lambda d: __import__("torch").save({"a": __import__("torch").zeros(2)}, d / "evil.pkl")))
    for fault, data in [
        ("checkpoint calling os.system (GLOBAL)", lambda d: hostile.call("os", "system", payload(d))),
        ("checkpoint calling os.system (STACK_GLOBAL)", lambda d: hostile.stack_call("os", "system", payload(d))),
        ("checkpoint calling eval", lambda d: hostile.call("builtins", "eval", (f"open('{d / MARKER}','w')",))),
        ("checkpoint calling subprocess.Popen",
         lambda d: hostile.call("subprocess", "Popen", (["touch", str(d / MARKER)],))),
        ("checkpoint calling importlib.import_module", lambda d: hostile.call("importlib", "import_module", ("os",))),
        ("checkpoint calling getattr", lambda d: hostile.call("builtins", "getattr", (0, "real"))),
        ("checkpoint computing a global's name", lambda d: hostile.computed_global()),
    ]:
        C.append(Case(fault, lambda d: n3d(d), path("evil.pkl"), setup=lambda d, f=data: evil(d, f(d))))
    C.append(Case("safetensors checkpoint of another format", lambda d: n3d(d, "m.safetensors"), path("m.safetensors"),
                  setup=lambda d: __import__("safetensors.torch").torch.save_file(
                      {"a": __import__("torch").zeros(2)}, str(d / "m.safetensors"))))
    C.append(Case("safetensors header claiming 1 TB", lambda d: n3d(d, "m.safetensors"), path("m.safetensors"),
                  setup=lambda d: (d / "m.safetensors").write_bytes((2**40).to_bytes(8, "little") + b"{}")))
    C.append(Case("checkpoint with allowed globals but not Next3D (fails in the Ray actor)", lambda d: n3d(d),
                  path("evil.pkl"), ray=True, kept="config.yaml; no sample",
                  setup=lambda d: (d / "evil.pkl").write_bytes(pickle.dumps({"G_ema": 1}, protocol=4))))
    C.append(Case("checkpoint calling torch.Tensor(1e13) (refused in the Ray actor)", lambda d: n3d(d),
                  path("evil.pkl"), ray=True, kept="config.yaml; no sample",
                  setup=lambda d: evil(d, hostile.call("torch", "Tensor", (10**13,)))))
    C.append(Case("a detector that crashes inside the Ray actor",
                  lambda d: gen(d, "quality.detector=tests.hardening.faulty.explode"), key("samples 0-3"), ray=True,
                  kept="config.yaml; no sample"))

    # inspect / convert
    insp = lambda d, *extra: sfray("inspect", "checkpoint", str(d / "evil.pkl"), *extra)  # noqa: E731
    for fault, data in [
        ("inspect: pickle calling os.system", lambda d: hostile.call("os", "system", payload(d))),
        ("inspect: torch.Tensor(1e13)", lambda d: hostile.call("torch", "Tensor", (10**13,))),
        ("inspect: torch.Tensor((1e7, 1e6))", lambda d: hostile.call("torch", "Tensor", ((10**7, 10**6),))),
        ("inspect: numpy array of 8 TB", lambda d: hostile.call("numpy.core.multiarray", "_reconstruct",
                                                                (__import__("numpy").ndarray, (10**12,), b"f8"))),
        ("inspect: copyreg on a tensor base", lambda d: hostile.call(
            "copyreg", "_reconstructor", (__import__("torch").Tensor, __import__("torch").Tensor, 10**13))),
        ("inspect: storage blob declaring 2 GiB", lambda d: hostile.call(
            "torch.storage", "_load_from_bytes", (hostile.huge_storage_blob(),))),
        ("inspect: 5000-deep nesting", lambda d: hostile.deep_list(5000)),
        ("inspect: persistent id (torch zip pickle)", lambda d: b"\x80\x02X\x01\x00\x00\x00aQ."),
        ("inspect: truncated pickle", lambda d: hostile.call("os", "system", ("x",))[:9]),
    ]:
        C.append(Case(fault, lambda d: insp(d), path("evil.pkl"), setup=lambda d, f=data: evil(d, f(d))))

    def dump_ok(d: Path, proc: subprocess.CompletedProcess) -> bool:
        return "Traceback" not in proc.stderr and (d / "in" / "DIR" / "index.json").is_file()

    def dump_inside(d: Path, proc: subprocess.CompletedProcess) -> str | None:
        made = [p for p in d.rglob("*") if p.stat().st_mtime > STARTED.get("t", 0) and p.is_file()
                and (d / "in" / "DIR") not in p.parents]
        return f"wrote outside DIR: {made[:3]}" if made else None

    def hostile_names(d: Path) -> None:
        from tests.generators.next3d.official_dump import _PersistentProxy, dump_official

        names = ["x/../../TRAV", "a\x00b", "/abs/path", "A" * 300, "..", "\x1b[31mred"]
        kids = {f"m{i}": _PersistentProxy(n, f"# {i}\n", {}) for i, n in enumerate(names)}
        (d / "evil.pkl").write_bytes(dump_official({"G_ema": _PersistentProxy("TriPlaneGenerator", "#\n",
                                                                              {"_modules": kids})}, {}))
        for i in range(8):
            (d / "in" / "DIR" / f"{i:02d}_x").mkdir(parents=True)
    C.append(Case("inspect --dump-source with class names x/../../TRAV, NUL, /, 300 chars",
                  lambda d: insp(d, "--dump-source", str(d / "in" / "DIR")), expect="report", correct=dump_ok,
                  setup=hostile_names, check=dump_inside, kept="the pickle; sources only inside DIR"))
    C.append(Case("inspect --dump-source into a file", lambda d: insp(d, "--dump-source", str(d / "f.txt")),
                  path("f.txt"), setup=lambda d: hostile_names(d) or (d / "f.txt").write_text("mine"), kept="the file"))
    C.append(Case("inspect head on a directory", lambda d: sfray("inspect", "head", str(d)), lambda d: [str(d)]))
    C.append(Case("inspect head on a hostile pickle", lambda d: sfray("inspect", "head", str(d / "g.pkl")),
                  path("g.pkl"), setup=lambda d: write_pickle(d / "g.pkl", hostile.call("os", "system", payload(d)))))
    C.append(Case("convert: input does not exist", lambda d: sfray("convert", "checkpoint", str(d / "n.pkl"),
                                                                   str(d / "o.safetensors")), path("n.pkl")))
    C.append(Case("convert: output exists (no --overwrite)", lambda d: sfray("convert", "checkpoint", str(d / "n.pkl"),
                                                                              str(d / "o.safetensors")),
                  path("o.safetensors"), setup=lambda d: (d / "o.safetensors").write_text("precious"),
                  kept="the existing output"))
    C.append(Case("convert: output is a directory", lambda d: sfray("convert", "checkpoint", str(d / "n.pkl"),
                                                                    str(d / "out.safetensors")),
                  path("out.safetensors"), setup=lambda d: (d / "out.safetensors").mkdir()))
    C.append(Case("convert: output not .safetensors", lambda d: sfray("convert", "checkpoint", str(d / "n.pkl"),
                                                                      str(d / "o.bin")), path("o.bin")))
    C.append(Case("convert: hostile input", lambda d: sfray("convert", "checkpoint", str(d / "evil.pkl"),
                                                            str(d / "o.safetensors")), path("evil.pkl"),
                  setup=lambda d: evil(d, hostile.call("os", "system", payload(d)))))

    # dataset commands
    C.append(Case("verify a folder that is not a dataset", lambda d: sfray("dataset", "verify", str(d)),
                  lambda d: [str(d)]))
    C.append(Case("verify a path that does not exist", lambda d: sfray("dataset", "verify", str(d / "no")), path("no")))
    C.append(Case("stats of a folder that is not a dataset", lambda d: sfray("dataset", "stats", str(d)),
                  lambda d: [str(d)]))
    C.append(Case("stats --sample -5", lambda d: sfray("dataset", "stats", str(d / "ds"), "--sample", "-5"),
                  key("--sample"), setup=with_dataset, kept="the dataset"))
    C.append(Case("verify a corrupt manifest", lambda d: sfray("dataset", "verify", str(d / "ds")),
                  key("manifest.parquet"), kept="the dataset (the receipts can rebuild the manifest)",
                  setup=lambda d: (with_dataset(d) / "manifest.parquet").write_bytes(b"PAR1garbage")))
    C.append(Case("verify a manifest with wrong columns", lambda d: sfray("dataset", "verify", str(d / "ds")),
                  key("manifest.parquet"), kept="the dataset",
                  setup=lambda d: __import__("pyarrow.parquet").parquet.write_table(
                      __import__("pyarrow").table({"x": [1]}), with_dataset(d) / "manifest.parquet")))

    def escape_row(d: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        ds = with_dataset(d)
        (d / "outside").mkdir()
        shutil.copy(shard_of(ds, 0), d / "outside" / "evil.lmdb")
        os.utime(d / "outside" / "evil.lmdb", (1, 1))
        t = pq.read_table(ds / "manifest.parquet")
        shards = ["../../outside/evil" if s == shard_of(ds, 0).stem else s for s in t.column("shard").to_pylist()]
        pq.write_table(t.set_column(t.schema.get_field_index("shard"), "shard", pa.array(shards)),
                       ds / "manifest.parquet")

    def not_read(d: Path, proc: subprocess.CompletedProcess) -> str | None:
        return None if (d / "outside" / "evil.lmdb").stat().st_atime == 1 else "read a file outside the dataset"
    C.append(Case("verify: manifest row with shard ../../outside/evil",
                  lambda d: sfray("dataset", "verify", str(d / "ds")), expect="report",
                  correct=lambda d, p: "../../outside/evil" in p.stdout, setup=escape_row,
                  check=not_read, kept="everything; the outside file is never opened"))
    C.append(Case("generate over a manifest row with shard ../../outside/evil", lambda d: gen(d), key("outside"),
                  setup=escape_row, check=not_read, kept="everything; the outside file is never opened"))

    def corrupt_record(d: Path) -> None:
        from sfray.data.shard import ShardReader

        ds = with_dataset(d)
        path = shard_of(ds, 5)
        with ShardReader(path) as r:
            rec = r.get(5)
        data = bytearray(path.read_bytes())
        data[bytes(data).find(rec[-64:]) + 10] ^= 0xFF
        path.write_bytes(bytes(data))
    C.append(Case("verify a dataset with one corrupt record", lambda d: sfray("dataset", "verify", str(d / "ds")),
                  expect="report", correct=lambda d, p: "sample 5:" in p.stdout, setup=corrupt_record,
                  kept="everything"))

    def mixed(d: Path) -> None:
        ds = with_dataset(d)
        from sfray.config.loader import load_config
        from sfray.config.schema import GenerateJobConfig
        from sfray.generation.executor import InProcessExecutor
        from sfray.generation.storage import recover, write_unit

        cfg = load_config(GenerateJobConfig, QUICKSTART, [f"output_dir={ds}", *SMALL, "generate.resolution=64"])
        made = InProcessExecutor("cpu").records(cfg, [8, 9, 10, 11])
        write_unit(ds, [8, 9, 10, 11], [m.record for m in made], [m.row for m in made])
        recover(ds)
    C.append(Case("verify: 64px records committed into a 32px dataset",
                  lambda d: sfray("dataset", "verify", str(d / "ds")), expect="report",
                  correct=lambda d, p: "sample 8:" in p.stdout and "32" in p.stdout, setup=mixed,
                  kept="everything"))
    C.append(Case("export: a corrupt record", lambda d: sfray("dataset", "export", str(d / "ds"), "--layout",
                                                              "synthforge", "--out", str(d / "exp")),
                  key("sample 5"), setup=corrupt_record, kept="the dataset; no partial export",
                  check=lambda d, p: "partial export left" if (d / "exp").exists() else None))

    def victim(d: Path) -> None:
        (d / "home" / "shards").mkdir(parents=True)
        (d / "home" / "notes.txt.tmp-1234").write_text("draft")
        (d / "home" / "shards" / "x.lmdb.tmp-9").write_text("not ours")
    for mode in ("keep", "delete"):
        C.append(Case(f"sweep --unreferenced {mode} on a folder that is not a dataset",
                      lambda d, m=mode: sfray("dataset", "sweep", str(d / "home"), "--unreferenced", m),
                      path("home"), setup=victim, check=untouched("home"), kept="the folder and all its files"))

    def unfolded(d: Path) -> None:
        ds = with_dataset(d)
        from sfray.config.loader import load_config
        from sfray.config.schema import GenerateJobConfig
        from sfray.generation.executor import InProcessExecutor
        from sfray.generation.storage import write_unit

        cfg = load_config(GenerateJobConfig, QUICKSTART, [f"output_dir={ds}", *SMALL, "generate.num_samples=12"])
        made = InProcessExecutor("cpu").records(cfg, [8, 9, 10, 11])
        write_unit(ds, [8, 9, 10, 11], [m.record for m in made], [m.row for m in made])
    C.append(Case("sweep --unreferenced delete with a shard only a receipt references",
                  lambda d: sfray("dataset", "sweep", str(d / "ds"), "--unreferenced", "delete"), expect="ok",
                  correct=lambda d, p: (d / "ds" / "shards" / "shard-000000008-4.lmdb").is_file(), setup=unfolded,
                  kept="every shard a row or a receipt references"))
    C.append(Case("sweep of a dataset another process is writing", lambda d: sfray("dataset", "sweep", str(d / "ds")),
                  key("pid"), setup=lambda d: hold_lock(with_dataset(d)), kept="everything"))
    C.append(Case("sweep of a path that does not exist", lambda d: sfray("dataset", "sweep", str(d / "no")),
                  path("no")))
    ex = lambda d, out, *x: sfray("dataset", "export", str(d / "ds"), "--layout", "synthforge", "--out", out, *x)  # noqa: E731
    C.append(Case("export into a non-empty folder", lambda d: ex(d, str(d / "mine")), key("--overwrite"),
                  setup=lambda d: with_dataset(d) and ((d / "mine").mkdir() or (d / "mine" / "a.txt").write_text("x")),
                  check=lambda d, p: None if (d / "mine" / "a.txt").is_file() else "the user's file was replaced",
                  kept="the folder and its files"))
    C.append(Case("export --overwrite onto the dataset itself", lambda d: ex(d, str(d / "ds"), "--overwrite"),
                  key("--out"), setup=with_dataset, kept="the dataset",
                  check=lambda d, p: None if verified(d / "ds") else "the dataset was damaged"))
    C.append(Case("export --overwrite onto the dataset's parent", lambda d: ex(d, str(d), "--overwrite"),
                  key("--out"), setup=with_dataset, kept="the dataset",
                  check=lambda d, p: None if verified(d / "ds") else "the dataset was damaged"))
    C.append(Case("export --out a file", lambda d: ex(d, str(d / "f.txt")), key("--out"),
                  setup=lambda d: with_dataset(d) and (d / "f.txt").write_text("mine"), kept="the file"))
    C.append(Case("export of a folder that is not a dataset",
                  lambda d: sfray("dataset", "export", str(d), "--layout", "synthforge", "--out", str(d / "x")),
                  lambda d: [str(d)]))
    C.append(Case("export onto a full disk", lambda d: ex(d, str(d / "full" / "exp")), lambda d: ["no space left on"],
                  root_only=True, kept="the dataset; no partial export",
                  setup=lambda d: with_dataset(d) and (None if mount(d / "full", "size=24k") else 1 / 0),
                  check=lambda d, p: "partial export left" if (d / "full" / "exp").exists() else None))
    C.append(Case("export onto a read-only filesystem", lambda d: ex(d, str(d / "ro" / "exp")), path("ro"),
                  root_only=True, kept="the dataset",
                  setup=lambda d: with_dataset(d) and (None if mount(d / "ro", "size=1m,ro") else 1 / 0)))
    C.append(Case("export without --layout", lambda d: sfray("dataset", "export", str(d)), key("--layout")))
    C.append(Case("import from a folder that does not exist",
                  lambda d: sfray("dataset", "import", "--layout", "synthforge", str(d / "no"), "--out", str(d / "o")),
                  path("no")))

    def bad_import(d: Path) -> None:
        (d / "src" / "images").mkdir(parents=True)
        (d / "src" / "images" / "00001.png").write_bytes(b"not a png")
    C.append(Case("import of an image that is not a PNG",
                  lambda d: sfray("dataset", "import", "--layout", "synthforge", str(d / "src"), "--out", str(d / "o")),
                  lambda d: [str(d / "src" / "images" / "00001.png")], setup=bad_import, kept="nothing is committed"))
    C.append(Case("import into a non-empty folder of the user's",
                  lambda d: sfray("dataset", "import", "--layout", "synthforge", str(d / "src"), "--out",
                                  str(d / "mine")), path("mine"), check=untouched("mine"),
                  setup=lambda d: bad_import(d) or (d / "mine").mkdir() or (d / "mine" / "a").write_text("x"),
                  kept="the folder and its files"))
    C.append(Case("import --samples-per-shard 0",
                  lambda d: sfray("dataset", "import", "--layout", "synthforge", str(d), "--out", str(d / "o"),
                                  "--samples-per-shard", "0"), key("--samples-per-shard")))
    C.append(Case("unknown subcommand", lambda d: sfray("frobnicate"), key("frobnicate")))

    # concurrency, damage and resume (correct result: the rerun completes and verifies)
    C.append(Case("a second writer while a generate holds the dataset", lambda d: gen(d), key("pid"),
                  setup=lambda d: hold_lock(with_dataset(d)), kept="everything"))

    def complete(d: Path, proc: subprocess.CompletedProcess) -> bool:
        return proc.returncode == 0 and verified(d / "ds") and len(rows(d / "ds")) == 8 \
            and rows(d / "ds") == rows(BASE["ds"])
    C.append(Case("rerun after a shard was deleted", lambda d: gen(d), expect="ok", correct=complete, ray=True,
                  setup=lambda d: shard_of(with_dataset(d), 4).unlink(), kept="every other shard; the ids regenerated"))
    C.append(Case("rerun after a record was corrupted", lambda d: gen(d), expect="ok", correct=complete, ray=True,
                  setup=corrupt_record, kept="the damaged shard in damaged/; its ids regenerated byte-identical"))

    def truncate(d: Path) -> None:
        p = shard_of(with_dataset(d), 0)
        with open(p, "r+b") as fh:
            fh.truncate(p.stat().st_size // 2)
    C.append(Case("rerun after a shard was truncated", lambda d: gen(d), expect="ok", correct=complete, ray=True,
                  setup=truncate, kept="the truncated file in damaged/; its ids regenerated"))
    C.append(Case("rerun after the manifest was deleted", lambda d: gen(d), expect="ok", correct=complete, ray=True,
                  setup=lambda d: (with_dataset(d) / "manifest.parquet").unlink(),
                  kept="everything: the manifest is rebuilt from the receipts"))
    C.append(Case("rerun after a receipt was corrupted", lambda d: gen(d), expect="ok", correct=complete, ray=True,
                  setup=lambda d: sorted((with_dataset(d) / "receipts").iterdir())[0].write_text("{bad"),
                  kept="the receipt in damaged/"))
    C.append(Case("rerun after a manifest row's record vanished from its shard", lambda d: gen(d), expect="ok",
                  correct=complete, ray=True, setup=lambda d: delete_key(with_dataset(d), 6),
                  kept="the damaged shard in damaged/"))
    C.append(Case("rerun of an interrupted run (kill -9 of the driver after 1 shard)",
                  lambda d: gen(d, "generate.num_samples=32"), expect="ok", ray=True,
                  correct=lambda d, p: p.returncode == 0 and verified(d / "ds") and len(rows(d / "ds")) == 32,
                  setup=killed_run, kept="every shard finished before the kill"))
    C.append(Case("SIGTERM during a Ray run", lambda d: gen(d, "generate.num_samples=400"), expect="signal",
                  signal_after_receipt=signal.SIGTERM, ray=True, kept="every shard finished before the signal"))
    C.append(Case("SIGINT during a Ray run", lambda d: gen(d, "generate.num_samples=400"), expect="signal",
                  signal_after_receipt=signal.SIGINT, ray=True, kept="every shard finished before the signal"))
    C.append(Case("disk fills up during a run (out of inodes after the preflight)",
                  lambda d: gen(d, out=str(d / "full" / "ds")), lambda d: ["no space left on"], ray=True,
                  root_only=True,
                  setup=lambda d: None if mount(d / "full", "size=64m,nr_inodes=12") else 1 / 0,
                  kept="the shards finished before; nothing half-written"))
    return C


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


# -- running and classifying ----------------------------------------------------------------------------

def run_case(case: Case, d: Path) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    argv = case.argv(d)
    if case.signal_after_receipt is None:
        proc = subprocess.run(argv, env=ENV, cwd=d, capture_output=True, text=True, timeout=case.timeout)
        return proc, time.monotonic() - start
    popen = subprocess.Popen(argv, env=ENV, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    receipts = d / "ds" / "receipts"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(receipts.glob("*.json")) and popen.poll() is None:
        time.sleep(0.2)
    popen.send_signal(case.signal_after_receipt)
    out, err = popen.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, popen.returncode, out, err), time.monotonic() - start


def classify(case: Case, d: Path, proc: subprocess.CompletedProcess) -> tuple[str, str, str]:
    """(verdict, what the user sees, why)."""
    err_lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in err_lines if ln.startswith("sfray: error:")]
    noisy = [ln for ln in err_lines if ERROR_LINE.search(ln)]
    sees = errors[0] if errors else (proc.stdout.strip().splitlines() or err_lines or [""])[-1]
    if not errors and case.expect == "ok":
        said = [ln for ln in err_lines if "missing or corrupt" in ln or "moved to" in ln]
        said += [ln for ln in proc.stdout.splitlines() if ln.startswith(("dataset:", "ok:"))]
        sees = " / ".join(said) or sees
    # unsafe first
    if (d / MARKER).exists():
        return "unsafe", sees, "code from the file was executed"
    if case.check is not None:
        reason = case.check(d, proc)
        if reason:
            return "unsafe", sees, reason
    for name, before in SNAP.items():
        if name.startswith(str(d)) and name.endswith("outside") and stat_tree(Path(name)) != before:
            return "unsafe", sees, "something outside changed"
    if tree(d.parent / "_sentinel") != SNAP["sentinel"]:
        return "unsafe", sees, "a file outside the case's folder changed"
    if proc.returncode == 0 and (d / "ds" / "manifest.parquet").is_file() and "generate" in proc.args \
            and not verified(d / "ds"):
        return "unsafe", sees, "success reported over missing or damaged data"
    # clear or unclear
    if case.expect == "signal":
        ok = proc.returncode in (130, 143) and err_lines[-1:] == ["sfray: interrupted"] and not noisy \
            and verified(d / "ds")
        return ("clear" if ok else "unclear"), (err_lines[-1] if err_lines else ""), "" if ok else proc.stderr[-500:]
    if case.expect in ("ok", "report"):
        want = 0 if case.expect == "ok" else 1
        good = proc.returncode == want and (case.correct is None or case.correct(d, proc)) and not noisy
        return ("clear" if good else "unclear"), sees, "" if good else f"rc={proc.returncode} {proc.stderr[-500:]}"
    names = case.names(d)
    if proc.returncode != 2:
        return "unclear", sees, f"exit code {proc.returncode}"
    if len(errors) != 1 or noisy:
        return "unclear", sees, f"{len(errors)} error lines, {len(noisy)} noisy lines"
    if names and not any(n in errors[0] for n in names):
        return "unclear", sees, f"does not name any of {names}"
    return "clear", sees, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="run the cases whose fault contains this text")
    parser.add_argument("--no-ray", action="store_true", help="skip the cases that start Ray")
    parser.add_argument("--out", default=str(ROOT / "outputs" / "probe"), help="work and report folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    work = out / "work"
    umount_all(out)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "_sentinel").mkdir()
    (work / "_sentinel" / "keep.txt").write_text("must never change")
    SNAP["sentinel"] = tree(work / "_sentinel")
    base_dataset(work)
    root = os.geteuid() == 0
    outcomes: list[Outcome] = []
    selected = [c for c in cases() if (args.only is None or args.only in c.fault) and not (args.no_ray and c.ray)]
    try:
        for i, case in enumerate(selected):
            d = work / f"case{i:03d}"
            d.mkdir()
            if case.root_only and not root:
                outcomes.append(Outcome(case.fault, "skipped", "needs root (tmpfs)", case.kept, 0.0))
                continue
            try:
                if case.setup is not None:
                    case.setup(d)
                for sub in ("home", "mine"):
                    if (d / sub).exists():
                        SNAP[str(d / sub)] = tree(d / sub)
                if (d / "outside").exists():  # by stat only: reading would change the atime checked
                    SNAP[str(d / "outside")] = stat_tree(d / "outside")
                STARTED["t"] = time.time()
                proc, seconds = run_case(case, d)
                verdict, sees, why = classify(case, d, proc)
            except Exception as exc:  # noqa: BLE001 - a probe bug, or a hang
                verdict, sees, why, seconds = "unclear", f"probe: {type(exc).__name__}: {exc}", "", 0.0
            finally:
                for holder in HOLDERS:
                    holder.kill()
                    holder.wait()
                HOLDERS.clear()
            outcomes.append(Outcome(case.fault, verdict, sees[:300], case.kept, round(seconds, 1), why[:500]))
            print(f"[{i + 1:3d}/{len(selected)}] {verdict:7s} {seconds:5.1f}s  {case.fault}", flush=True)
            if verdict != "clear":
                print(f"          sees: {sees[:200]}\n          why: {why[:300]}", flush=True)
    finally:
        umount_all(out)
    counts = {v: sum(o.verdict == v for o in outcomes) for v in ("clear", "unclear", "unsafe", "skipped")}
    print(f"\n{len(outcomes)} cases: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    (out / "report.json").write_text(json.dumps({"counts": counts, "cases": [o.__dict__ for o in outcomes]},
                                                indent=1))
    esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| fault tried | what the user sees | what is kept | verdict |", "| --- | --- | --- | --- |"]
    for o in outcomes:
        seen = re.sub(r"/\S*/outputs/probe/work/case\d+", "…", o.sees)
        lines.append(f"| {esc(o.fault)} | {esc(seen)} | {esc(o.kept)} | {o.verdict} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return 1 if counts["unsafe"] else 0


if __name__ == "__main__":
    sys.exit(main())
