"""Probe cases, part 1: configs, output locations, the resume guard and model files."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

from tests.hardening import hostile
from tests.hardening.probe_support import (
    MARKER,
    SNAP,
    Case,
    evil,
    gen,
    mount,
    path_names,
    payload,
    sfray,
    tree,
    with_dataset,
    write_pickle,
)


def input_cases() -> list[Case]:  # noqa: C901 - a flat list of cases reads best
    C: list[Case] = []
    key = lambda *k: (lambda d: list(k))  # noqa: E731
    path = path_names
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

    return C
