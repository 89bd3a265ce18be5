"""May this config write into that dataset directory? (the resume compatibility check)

A resumed run must make samples byte-identical to the ones already committed, so every config
key that changes a sample's bytes must equal the one saved in ``DATASET/config.yaml``. The keys
in :data:`FREE_KEYS` do not change a sample and may differ. A dataset saved before keys were
renamed (``sfray.config.legacy``) is read with the old names migrated, so it can still resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from sfray.config.loader import load_config, save_config
from sfray.config.schema import GenerateJobConfig
from sfray.data import layout
from sfray.errors import ConfigError

#: Dotted keys (or prefixes ending in ".") that do not change a sample's bytes: a resumed run may
#: change them freely. ``faults.fail_*`` kill processes but change no sample; ``faults.misalign``
#: changes the images and is therefore not free.
FREE_KEYS = ("output_dir", "ray.", "generate.num_samples", "generate.samples_per_shard",
             "generate.preview_samples", "generator.device", "faults.fail_actor_after_batches",
             "faults.fail_driver_after_shards")


def flat_config(cfg: GenerateJobConfig) -> dict[str, Any]:
    """``{"generate.resolution": 256, ...}`` for every leaf key of ``cfg``."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk(OmegaConf.to_container(OmegaConf.structured(cfg)), "")
    return flat


def incompatible_keys(old: GenerateJobConfig, new: GenerateJobConfig) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) of every non-free key whose value differs."""
    a, b = flat_config(old), flat_config(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if not k.startswith(FREE_KEYS) and a.get(k) != b.get(k)]


def prepare_dataset_dir(cfg: GenerateJobConfig) -> None:
    """Create ``output_dir``; refuse one made with settings that change sample bytes; save config."""
    root = Path(cfg.output_dir)
    previous = root / layout.CONFIG_FILE
    if previous.is_file() and (root / layout.MANIFEST_FILE).is_file():
        diffs = incompatible_keys(load_config(GenerateJobConfig, previous, legacy=True), cfg)
        if diffs:
            detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in diffs[:4])
            raise ConfigError(
                f"{root} already holds a dataset generated with other settings ({detail}); "
                "resuming would mix incompatible samples. Use a new output_dir or the original settings."
            )
    root.mkdir(parents=True, exist_ok=True)
    save_config(cfg, previous)
