"""Load a structured config: dataclass schema <- YAML file <- ``key.sub=value`` overrides.

Library code never sees a ``DictConfig``: :func:`load_config` returns the typed dataclass
instance. Unknown keys and wrong types are rejected with one message that names the key, the
file it came from and the closest valid key.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sfray.config.legacy import RENAMED, migrate
from sfray.errors import ConfigError
from sfray.io.atomic import atomic_write_text

T = TypeVar("T")


def _valid_keys(node: Any, prefix: str = "") -> list[str]:
    keys: list[str] = []
    if isinstance(node, DictConfig):
        for k in node.keys():
            full = f"{prefix}{k}"
            keys.append(full)
            child = node._get_node(k)
            if isinstance(child, DictConfig):
                keys.extend(_valid_keys(child, full + "."))
    return keys


def _closest(key: str, schema: DictConfig) -> str | None:
    candidates = _valid_keys(schema)
    match = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
    if match:
        return match[0]
    leaf = key.rsplit(".", 1)[-1]
    leaves = {c.rsplit(".", 1)[-1]: c for c in candidates}
    match = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.5)
    return leaves[match[0]] if match else None


def _section_given_a_value(given: Any, schema: Any, prefix: str = "") -> str | None:
    """The dotted key where ``given`` puts a plain value on a section of ``schema`` (OmegaConf's
    merge error names no key for that), or None."""
    if not isinstance(given, DictConfig) or not isinstance(schema, DictConfig):
        return None
    for k in given.keys():
        if k not in schema:
            continue
        node, value = schema._get_node(k), given._get_node(k)
        if isinstance(node, DictConfig) and not isinstance(value, DictConfig):
            return f"{prefix}{k}"
        found = _section_given_a_value(value, node, f"{prefix}{k}.")
        if found:
            return found
    return None


def _explain(exc: OmegaConfBaseException, schema: DictConfig, origin: str, given: Any = None) -> ConfigError:
    key = getattr(exc, "full_key", None) or "?"
    msg = str(exc).splitlines()[0]
    if key == "?":
        section = _section_given_a_value(given, schema)
        if section:
            return ConfigError(f"{origin}: config key '{section}' is a section, not a value; set its keys "
                               f"(e.g. {section}.<key>=...)")
    if "not in" in msg or "Missing key" in msg or "Key '" in msg and "not" in msg:
        if str(key) in RENAMED:
            return ConfigError(f"{origin}: config key '{key}' was renamed to '{RENAMED[key]}' "
                               "(docs/architecture.md lists the renamed keys)")
        hint = _closest(str(key), schema)
        tail = f"; did you mean '{hint}'?" if hint else ""
        return ConfigError(f"{origin}: unknown config key '{key}'{tail}")
    return ConfigError(f"{origin}: bad value for config key '{key}': {msg}")


def _parse_overrides(overrides: Sequence[str]) -> DictConfig:
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override '{item}' is not of the form key.sub=value")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot parse overrides {list(overrides)}: {exc}") from exc


def _load_yaml(p: Path) -> DictConfig:
    """The YAML mapping at ``p``; one ConfigError line for anything else (empty, a list, a scalar,
    not YAML, unreadable)."""
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc})") from None
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not a valid YAML config ({' '.join(str(exc).split())})") from None
    if tree is None:
        raise ConfigError(f"{p}: the config file is empty (or only comments); write the keys to change, "
                          "e.g. 'generate: {num_samples: 16}'")
    if not isinstance(tree, dict):
        raise ConfigError(f"{p}: the top level of a config must be a mapping of keys, found a "
                          f"{type(tree).__name__} ({str(tree)[:60]!r})")
    try:
        loaded = OmegaConf.create(text)
    except Exception as exc:  # OmegaConf's own YAML rules (e.g. interpolation syntax)
        raise ConfigError(f"{p}: not a valid YAML config ({' '.join(str(exc).split())})") from None
    assert isinstance(loaded, DictConfig)
    return loaded


def load_config(
    schema: type[T],
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    *,
    legacy: bool = False,
) -> T:
    """Merge ``schema`` defaults, the YAML at ``path`` and dotlist ``overrides``; validate; return T.

    ``legacy=True`` migrates renamed keys of the YAML (``sfray.config.legacy``) instead of refusing
    them: for configs sfray saved itself before a rename (a dataset's ``config.yaml``).
    """
    base = OmegaConf.structured(schema)
    merged = base
    if path is not None:
        p = Path(path)
        if p.is_dir():
            raise ConfigError(f"{p}: is a directory, expected a config YAML file")
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        loaded = _load_yaml(p)
        if legacy and isinstance(loaded, DictConfig):
            loaded = OmegaConf.create(migrate(OmegaConf.to_container(loaded)))  # type: ignore[arg-type]
        try:
            merged = OmegaConf.merge(merged, loaded)
        except OmegaConfBaseException as exc:
            raise _explain(exc, base, str(p), loaded) from None
    if overrides:
        dot = _parse_overrides(overrides)
        try:
            merged = OmegaConf.merge(merged, dot)
        except OmegaConfBaseException as exc:
            raise _explain(exc, base, "command-line override", dot) from None
    try:
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "?")
        raise ConfigError(f"config key '{key}' is required but missing ({exc})") from exc
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj  # type: ignore[return-value]


def config_from_yaml_text(schema: type[T], text: str) -> T:
    """Rebuild a config from the YAML that :func:`to_yaml` wrote (e.g. shipped to a Ray actor)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.create(text))
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise _explain(exc, OmegaConf.structured(schema), "config text") from exc
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj  # type: ignore[return-value]


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML text (saved next to every output)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config atomically (``sfray.io.atomic``)."""
    atomic_write_text(path, to_yaml(cfg))
