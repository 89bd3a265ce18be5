"""Structured configs: schemas and the loader (no other sfray imports, per the layering rule)."""

from sfray.config.loader import load_config, save_config, to_yaml
from sfray.config.schema import GenerateJobConfig

__all__ = ["GenerateJobConfig", "load_config", "save_config", "to_yaml"]
