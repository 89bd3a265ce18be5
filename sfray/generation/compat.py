"""May this config write into that dataset directory? (the resume guard)

A resumed run must make samples byte-identical to the ones already there, so every config key
that changes a sample's bytes must equal the one the dataset was made with. The guard holds on
every artefact a dataset can have, not only on a complete one (docs/reliability.md):

1. the saved config, ``DATASET/config.yaml`` (or, if that was lost, the config in
   ``dataset.yaml``): every key outside :data:`FREE_KEYS` must be equal;
2. without either, the records themselves: one record of every shard (committed, logged in a
   receipt, or merely on disk) must have the image shape and codec this config makes and the
   per-sample seed this config gives its id.

A directory that holds anything else and is not empty is not a dataset and is refused. A
dataset saved before keys were renamed (``sfray.config.legacy``) is read with the old names
migrated, so it can still resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sfray.config.legacy import migrate
from sfray.config.loader import save_config
from sfray.config.schema import GenerateJobConfig
from sfray.conventions import Field
from sfray.data import layout
from sfray.data.manifest import Manifest
from sfray.data.receipts import receipt_shards
from sfray.data.record_format import config_expectation, format_problems, record_format
from sfray.data.shard import ShardReader
from sfray.errors import AssetError, ConfigError
from sfray.sampling.rng import sample_seeds

#: Dotted keys (or prefixes ending in ".") that do not change a sample's bytes: a resumed run may
#: change them freely. ``faults.fail_*`` kill processes but change no sample; ``faults.misalign``
#: changes the images and is therefore not free.
FREE_KEYS = ("output_dir", "ray.", "generate.num_samples", "generate.samples_per_shard",
             "generate.preview_samples", "generate.resume_check", "generator.device",
             "faults.fail_actor_after_batches", "faults.fail_driver_after_shards")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def flat_config(cfg: GenerateJobConfig) -> dict[str, Any]:
    """``{"generate.resolution": 256, ...}`` for every leaf key of ``cfg``."""
    return _flatten(OmegaConf.to_container(OmegaConf.structured(cfg)))


def _flat_saved(tree: Any, origin: str) -> dict[str, Any]:
    """A saved config tree (any sfray version's layout) with the schema's defaults filled in.
    Not validated: an old dataset stays resumable when a later sfray tightens a rule."""
    if not isinstance(tree, dict):
        raise ConfigError(f"{origin}: the dataset's saved config is not a mapping; restore it or use a "
                          "new output_dir")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(GenerateJobConfig), OmegaConf.create(migrate(tree)))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{origin}: the dataset's saved config does not fit this sfray "
                          f"({str(exc).splitlines()[0]})") from None
    return _flatten(OmegaConf.to_container(merged))


def saved_config(dataset_dir: str | Path) -> tuple[str, dict[str, Any]] | None:
    """(file it came from, flat config) of the settings a dataset was made with, or None."""
    root = Path(dataset_dir)
    for name in (layout.CONFIG_FILE, layout.DATASET_YAML):
        path = root / name
        if not path.is_file():
            continue
        try:
            tree = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: the dataset's saved config is unreadable ({type(exc).__name__}); "
                              "restore it or use a new output_dir") from None
        if name == layout.DATASET_YAML:
            tree = tree.get("config") if isinstance(tree, dict) else None
            if not tree:
                continue
        return str(path), _flat_saved(tree, str(path))
    return None


def incompatible_keys(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) of every non-free key whose value differs (flat configs)."""
    return [(k, old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
            if not k.startswith(FREE_KEYS) and old.get(k) != new.get(k)]


def _refuse(root: Path, detail: str) -> ConfigError:
    return ConfigError(f"{root} already holds a dataset generated with other settings ({detail}); resuming "
                       "would mix incompatible samples. Use a new output_dir or the original settings.")


def _artefact_shards(root: Path) -> list[str]:
    names = set(layout.complete_shards(root)) | receipt_shards(root)
    if (root / layout.MANIFEST_FILE).is_file():
        names |= set(Manifest.load(root).shards())
    return sorted(n for n in names if layout.is_shard_name(n))


def check_records_against(root: Path, cfg: GenerateJobConfig) -> None:
    """Without a saved config: one record per shard must look made by ``cfg`` (image, seed)."""
    expect = config_expectation(OmegaConf.to_container(OmegaConf.structured(cfg)))  # type: ignore[arg-type]
    for name in _artefact_shards(root):
        path = layout.shard_path(root, name)
        if not path.is_file():
            continue
        try:
            with ShardReader(path) as reader:
                key = reader.meta()["keys"][0]
                header, _, _ = reader.header(key)
        except (AssetError, KeyError, IndexError):
            continue  # an unreadable shard is not committed data; the run's checks handle it
        problems = format_problems(record_format(header), expect, partial=True)
        meta = header["meta"]
        sid, seed = meta.get(Field.SAMPLE_ID), meta.get(Field.SEED)
        if isinstance(sid, int) and isinstance(seed, int) and sid >= 0 \
                and int(sample_seeds(np.array([sid]), cfg.seed)[0]) != seed:
            problems.append(f"sample {sid} has the seed of another dataset seed than seed={cfg.seed}")
        if problems:
            gen = cfg.generate
            raise _refuse(root, f"no config.yaml; shard {name}: {'; '.join(problems)}; this config makes "
                                f"generate.resolution={gen.resolution}, generate.image_format={gen.image_format}")


def refuse_foreign_dir(output_dir: str | Path) -> None:
    """ConfigError unless ``output_dir`` is absent, an empty directory, or (the start of) a dataset:
    a run must never write its files, or sweep temporary files, among a user's own files."""
    root = Path(output_dir)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"output_dir {root} exists and is not a directory")
    if not root.is_dir() or layout.is_dataset_dir(root):
        return
    ours = {layout.LOCK_FILE, layout.SHARDS_DIR, layout.RECEIPTS_DIR, layout.ORPHANS_DIR, layout.DAMAGED_DIR,
            layout.LOGS_DIR, layout.FAULTS_DIR, layout.PREVIEW_FILE}
    top_files = set(layout.MARKER_FILES) | {layout.PREVIEW_FILE}  # a crash can leave their tmp files
    foreign = sorted(p.name for p in root.iterdir() if p.name not in ours
                     and not (layout.is_tmp(p.name) and p.name.split(layout.TMP_MARK)[0] in top_files))
    if foreign:
        raise ConfigError(f"output_dir {root} is not empty and is not an sfray dataset (it holds "
                          f"{', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); choose a new "
                          "or empty directory")


def prepare_dataset_dir(cfg: GenerateJobConfig) -> None:
    """Create ``output_dir``; refuse one made with settings that change sample bytes (any
    artefact, see the module docstring) or one that is not a dataset; save config.yaml."""
    root = Path(cfg.output_dir)
    refuse_foreign_dir(root)
    saved = saved_config(root) if root.is_dir() else None
    if saved is not None:
        _origin, old = saved
        diffs = incompatible_keys(old, flat_config(cfg))
        if diffs:
            raise _refuse(root, ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in diffs[:4]))
    elif root.is_dir():
        check_records_against(root, cfg)
    root.mkdir(parents=True, exist_ok=True)
    save_config(cfg, root / layout.CONFIG_FILE)
