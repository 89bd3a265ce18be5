"""docs/config-reference.md is what scripts/config_reference.py makes of the schemas today."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("config_reference_script", ROOT / "scripts" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_reference_is_current():
    script = _script()
    committed = (ROOT / "docs" / "config-reference.md").read_text(encoding="utf-8")
    assert committed == script.render(), f"docs/config-reference.md is stale: run `{script.COMMAND}`"


def test_reference_lists_every_leaf_key_of_every_job_config():
    script = _script()
    configs = script.job_configs()
    names = {c.__name__ for c in configs}
    assert {"GenerateJobConfig", "TrainJobConfig", "PipelineJobConfig"} <= names

    def leaves(cls, prefix=""):
        for f in dataclasses.fields(cls):
            nested = (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            if dataclasses.is_dataclass(nested):
                yield from leaves(type(nested), f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}"

    text = script.render()
    from sfray.config.train import TrainJobConfig

    for key in leaves(TrainJobConfig):
        assert f"| `{key}` |" in text, key
    # a default and a comment come from the schema itself
    assert ("| `train.checkpoint_every` | `int` | `500` | optimizer steps between checkpoints (0: only at the end) |"
            in text)
    assert "| `lapa_like.test` | `int` | `32` |" in text
