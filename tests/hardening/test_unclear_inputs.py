"""Unclear cases of the hostile-input probe, without Ray: configs, untrusted pickles, the preflight,
devices and output locations. Each ends in one ``sfray: error:`` line (exit 2) naming the file or
key, with nothing written (docs/reliability.md). The Ray ones are in ``test_ray_cases.py``.
"""

from __future__ import annotations

import pytest
import torch

from sfray.errors import AssetError, ConfigError, UnsafePickleError
from tests.hardening import hostile
from tests.hardening.helpers import ROOT, generate, tiny_cfg, tree
from tests.hardening.helpers import one_error_line as error_line
from tests.hardening.helpers import run_main as run

QUICKSTART = str(ROOT / "configs" / "generate" / "quickstart.yaml")

# -- configs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, words", [
    ("- a\n- b\n", "top level of a config must be a mapping"),
    ("42\n", "top level of a config must be a mapping"),
    ("", "empty"),
    ("# only a comment\n", "empty"),
    ("generate: [unclosed\n", "not a valid YAML config"),
    (b"\xff\xfe\x00garbage", "cannot read the config file"),
])
def test_a_config_file_that_is_not_a_mapping_is_one_line(tmp_path, capsys, content, words):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, _, err = run(capsys, "generate", str(path), f"output_dir={tmp_path / 'ds'}")
    line = error_line(err)
    assert code == 2 and str(path) in line and words in line
    assert not (tmp_path / "ds").exists()


def test_a_directory_given_as_config_or_flame_file_says_so(tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    code, _, err = run(capsys, "generate", str(folder))
    assert code == 2 and "is a directory" in error_line(err)
    code, _, err = run(capsys, "generate", QUICKSTART, f"output_dir={tmp_path / 'ds'}", "head.kind=flame",
                       f"head.path={folder}")
    line = error_line(err)
    assert code == 2 and str(folder) in line and "is a directory" in line
    code, _, err = run(capsys, "inspect", "checkpoint", str(folder))
    assert code == 2 and "is a directory" in error_line(err)


@pytest.mark.parametrize("override, key", [
    ("generate.num_samples=1e14", "generate.num_samples"),
    ("generate.num_samples=0", "generate.num_samples"),
    ("generate.batch_size=100000000", "generate.batch_size"),
    ("generate.resume_check=everything", "generate.resume_check"),
])
def test_out_of_range_values_are_refused_before_anything_is_allocated(tmp_path, capsys, override, key):
    code, _, err = run(capsys, "generate", QUICKSTART, f"output_dir={tmp_path / 'ds'}", override)
    assert code == 2 and key in error_line(err)
    assert not (tmp_path / "ds").exists()


# -- untrusted pickles --------------------------------------------------------------------------------

HOSTILE = {
    "os.system": (hostile.call("os", "system", ("echo pwned",)), UnsafePickleError, "os.system"),
    "os.system via STACK_GLOBAL": (hostile.stack_call("os", "system", ("echo pwned",)), UnsafePickleError,
                                   "os.system"),
    "torch.Tensor(1e13)": (hostile.call("torch", "Tensor", (10**13,)), AssetError, "asks for"),
    "numpy array of 8 TB": (hostile.call("numpy.core.multiarray", "_reconstruct",
                                         (__import__("numpy").ndarray, (10**12,), b"f8")), AssetError, "asks for"),
    "tensor base for copyreg": (hostile.call("copyreg", "_reconstructor", (torch.Tensor, torch.Tensor, 10**13)),
                                UnsafePickleError, "base"),
    "storage declaring 2 GiB": (hostile.call("torch.storage", "_load_from_bytes", (hostile.huge_storage_blob(),)),
                                AssetError, "asks for"),
    "5000-deep nesting": (hostile.deep_list(5000), AssetError, "nest deeper"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_pickles_are_refused_with_resource_limits(tmp_path, capsys, name):
    from sfray.generators.next3d.official_pickle import read_official_pickle

    data, error, words = HOSTILE[name]
    path = hostile.write(tmp_path / "evil.pkl", hostile.in_dict("G_ema", data))
    with pytest.raises(error, match=words):
        read_official_pickle(path)
    code, _, err = run(capsys, "inspect", "checkpoint", str(path))
    line = error_line(err)
    assert code == 2 and str(path) in line


def test_the_preflight_scans_a_checkpoint_before_any_worker_starts(tmp_path):
    """Only the checkpoint's existence used to be checked, so a hostile file reached the workers."""
    from sfray.generation.run import run_generation

    class NoWorkers:
        max_attempts = 1

        def session(self, cfg):
            raise AssertionError("no worker may start")

        def execute(self, cfg, units):
            raise AssertionError("no worker may start")

    pkl = hostile.write(tmp_path / "evil.pkl", hostile.in_dict("G_ema", hostile.call("os", "system", ("x",))))
    out = tmp_path / "ds"
    with pytest.raises(UnsafePickleError, match=r"os\.system.*generator\.next3d\.checkpoint"):
        run_generation(tiny_cfg(out, "generator.kind=next3d", f"generator.next3d.checkpoint={pkl}"), NoWorkers())
    for content in (b"", b"\x80\x04garbage", b"not a checkpoint at all"):
        pkl.write_bytes(content)
        with pytest.raises(AssetError, match="evil.pkl"):
            run_generation(tiny_cfg(out, "generator.kind=next3d", f"generator.next3d.checkpoint={pkl}"),
                           NoWorkers())
    assert not out.exists()


# -- devices and output locations ----------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_device_without_cuda_is_one_line(tmp_path):
    from sfray.distributed.executor import RayExecutor
    from sfray.generation.executor import InProcessExecutor

    cfg = tiny_cfg(tmp_path / "ds", "generator.device=cuda")
    with pytest.raises(ConfigError, match=r"generator\.device.*no usable CUDA"):
        generate(tmp_path / "ds", "generator.device=cuda", executor=InProcessExecutor())
    with pytest.raises(ConfigError, match=r"ray\.gpus_per_actor is 0"):
        RayExecutor(cfg.ray).check(cfg)
    gpu = tiny_cfg(tmp_path / "ds", "ray.gpus_per_actor=1")
    with pytest.raises(ConfigError, match=r"ray\.gpus_per_actor.*no usable CUDA.*forever"):
        RayExecutor(gpu.ray).check(gpu)  # a local Ray would wait forever for the GPU
    assert not (tmp_path / "ds").exists()


def test_output_locations_that_cannot_hold_a_dataset(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("mine")
    before = tree(tmp_path)
    for out, words in ((a_file, "not a directory"), (a_file / "ds", "is not a directory"),
                       (tmp_path / "mine", "not empty and is not an sfray dataset")):
        with pytest.raises(ConfigError, match=words) as err:
            generate(out)
        assert str(out) in str(err.value)
    assert tree(tmp_path) == before


