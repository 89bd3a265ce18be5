"""Check everything checkable on the driver, before any worker starts (docs/reliability.md).

A missing or wrong file, a device that is not there or a disk that is too small then fails once,
with its own one-line message, instead of inside every worker's constructor (and, on a cluster,
after the workers were scheduled), or hours later when the disk fills up. What is checked:

* the output location: not an existing file or a non-dataset directory with other files in it,
  writable (a file is created and removed in it or in its nearest existing parent), and with room
  for the plan: samples still to make x an estimate of the bytes per record;
* the assets: FLAME files are read and shape-checked (the head is built), the alignment map is
  loaded, the detector imported, and a Next3D checkpoint is checked by content (pickle or
  safetensors header) and, for a pickle, every global it names is checked against the allow-list
  without building a tensor (``sfray.generators.next3d.checkpoint.scan_checkpoint``);
* the device: :func:`check_device` (executors call it for the device their workers will use).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from sfray.annotate.detector import load_detector
from sfray.config.schema import GenerateJobConfig
from sfray.conventions import Column
from sfray.data import layout
from sfray.data.manifest import Manifest
from sfray.errors import AssetError, ConfigError
from sfray.generation.compat import refuse_foreign_dir
from sfray.geometry.alignment_map import load_alignment_map
from sfray.head.factory import build_head
from sfray.io.paths import require_file
from sfray.io.space import check_free_space, existing_ancestor

#: Bytes per pixel of one record, by image codec: image + depth + segmentation + mask. Procedural
#: records measure 1.4 (png) and 0.4 (jpeg) B/px at 512x512; photographic images compress worse, so
#: these are about twice that (docs/reliability.md). Used only by the free-space check, which refuses
#: a run when even the estimate does not fit; a resumed run uses its committed records' mean size.
BYTES_PER_PIXEL = {"png": 2.5, "jpeg": 0.8, "webp": 0.8, "webp_lossless": 2.0, "zstd": 3.5}
RECORD_OVERHEAD = 8 * 1024  # landmarks, FLAME parameters, header, LMDB page slack


def record_bytes_estimate(cfg: GenerateJobConfig, manifest: Manifest | None = None) -> int:
    """Bytes one record of ``cfg`` will take: the committed records' mean when there are any."""
    if manifest is not None and len(manifest):
        nbytes = manifest.table.column(Column.NBYTES).to_numpy()
        kept = nbytes[nbytes > 0]
        if kept.size:
            return int(kept.mean() * 1.1) + RECORD_OVERHEAD
    r = cfg.generate.resolution
    return int(BYTES_PER_PIXEL.get(cfg.generate.image_format, 2.5) * r * r) + RECORD_OVERHEAD


def check_output(cfg: GenerateJobConfig) -> None:
    """The output location is usable and large enough (see the module docstring); writes nothing."""
    root = Path(cfg.output_dir)
    refuse_foreign_dir(root)
    parent = existing_ancestor(root)
    if not parent.is_dir():
        raise ConfigError(f"output_dir {root}: {parent} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=".sfray-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"output_dir {root}: cannot write in {parent} ({exc.strerror or exc})") from None
    manifest = Manifest.load(root) if (root / layout.MANIFEST_FILE).is_file() else None
    done = len(manifest) if manifest is not None else 0
    todo = max(cfg.generate.num_samples - done, 0)
    per = record_bytes_estimate(cfg, manifest)
    check_free_space(root, todo * per, f"{todo:,} samples (~{per:,} bytes each, generate.num_samples)")


def check_device(name: str, key: str = "generator.device") -> None:
    """ConfigError when ``name`` asks for a device this process cannot use."""
    if name in ("auto", "cpu"):
        return
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"bad value for config key '{key}': {name!r} is not a device "
                          "(auto, cpu, cuda, cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"config key '{key}' is {name!r} but this machine has no usable CUDA device "
                              f"(torch.cuda.is_available() is False); use {key}=auto or cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"config key '{key}' is {name!r} but this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"config key '{key}' is {name!r} but MPS is not available here")
    elif dev.type != "cpu":
        raise ConfigError(f"bad value for config key '{key}': {name!r} (auto, cpu, cuda, cuda:N)")


def check_assets(cfg: GenerateJobConfig) -> None:
    """Build the head (FLAME files are read and shape-checked), load the alignment map, import the
    detector, and check the generator checkpoint by content without building it."""
    build_head(cfg.head)
    load_alignment_map(cfg.annotate.alignment_map)
    if cfg.quality.detector:
        load_detector(cfg.quality.detector)
    if cfg.generator.kind != "next3d":
        return
    from sfray.generators.next3d.checkpoint import scan_checkpoint
    from sfray.generators.next3d.wrapper import RANDOM_SMALL

    ckpt = cfg.generator.next3d.checkpoint
    if ckpt != RANDOM_SMALL:
        path = require_file(str(ckpt), "Next3D's next3d_ffhq_512.pkl or an sfray .safetensors",
                            key="generator.next3d.checkpoint")
        try:
            scan_checkpoint(path)
        except AssetError as exc:
            raise type(exc)(f"{exc} (config key generator.next3d.checkpoint)") from None


def preflight(cfg: GenerateJobConfig) -> None:
    """Assets and the output location (see the module docstring). Writes nothing."""
    check_output(cfg)
    check_assets(cfg)
