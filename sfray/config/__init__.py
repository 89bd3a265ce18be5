"""Structured configs: schemas and the loader (no other sfray imports, per the layering rule)."""

from sfray.config.loader import load_config, save_config, to_yaml
from sfray.config.schema import AlignJobConfig, GenerateJobConfig

__all__ = ["AlignJobConfig", "GenerateJobConfig", "load_config", "save_config", "to_yaml"]
