"""Probe cases, part 2: inspect/convert, dataset commands, damaged datasets, signals, full disks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.hardening import hostile
from tests.hardening.probe_support import (
    BASE,
    QUICKSTART,
    SMALL,
    SNAP,
    STARTED,
    Case,
    delete_key,
    evil,
    gen,
    hold_lock,
    killed_run,
    mount,
    path_names,
    payload,
    rows,
    sfray,
    shard_of,
    tree,
    verified,
    with_dataset,
    write_pickle,
)


def dataset_cases() -> list[Case]:  # noqa: C901 - a flat list of cases reads best
    C: list[Case] = []
    key = lambda *k: (lambda d: list(k))  # noqa: E731
    path = path_names
    untouched = lambda sub: (lambda d, p: None if tree(d / sub) == SNAP.get(str(d / sub)) else f"{sub} changed")  # noqa: E731

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
    C.append(Case("disk fills up while the Ray workers store shards", lambda d: gen(d, out=str(d / "full" / "ds")),
                  lambda d: ["no space left on"], ray=True, root_only=True,
                  setup=lambda d: None if mount(d / "full", "size=100k") else 1 / 0,
                  kept="the shards finished before; nothing half-written"))
    C.append(Case("disk fills up when the manifest is written", lambda d: gen(d, out=str(d / "full" / "ds")),
                  lambda d: ["manifest.parquet"], ray=True, root_only=True,
                  setup=lambda d: None if mount(d / "full", "size=120k") else 1 / 0,
                  kept="every shard and its receipt; the next run commits them"))
    C.append(Case("disk fills up during a run (out of inodes after the preflight)",
                  lambda d: gen(d, out=str(d / "full" / "ds")), lambda d: ["no space left on"], ray=True,
                  root_only=True,
                  setup=lambda d: None if mount(d / "full", "size=64m,nr_inodes=12") else 1 / 0,
                  kept="the shards finished before; nothing half-written"))
    return C
