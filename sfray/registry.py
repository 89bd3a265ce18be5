"""Named registries: the single place where the valid values of a name-valued config key live.

A :class:`Registry` maps names (``procedural``, ``tiny``, ``gaussian``) to builders. Config schemas
ask it for the valid names (so their messages list them), and factories ask it for the builder, so
a name is never checked in two places. An unknown name raises a :class:`ConfigError` that names
the config key, the valid names and the closest one.

A registry may be *declared* low in the layer order with its names only (``names=...``, e.g. in
``sfray.config.registries``, so the schema can validate without importing upward) and get its
builders attached later by the package that implements them (``@REG.register("name")``).
``get`` of a declared name whose builder was never attached is a programming error (the module
that registers it was not imported), reported as :class:`LookupError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from sfray.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """``name -> T`` for the config key ``key`` (e.g. ``model.size``), filled with :meth:`register`."""

    def __init__(self, key: str, what: str, names: Iterable[str] = ()):
        self.key, self.what = key, what
        self._names: list[str] = list(dict.fromkeys(names))
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("tiny")`` records the decorated object under ``name``
        (declaring the name if the registry did not list it yet)."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.what} '{name}' is registered twice")
            if name not in self._names:
                self._names.append(name)
            self._items[name] = obj
            return obj

        return add

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def names(self) -> tuple[str, ...]:
        return tuple(self._names)

    def describe(self) -> str:
        """The valid names as ``a | b | c`` (for help texts and messages)."""
        return " | ".join(self._names)

    def check(self, name: object, key: str | None = None) -> None:
        """Raise ConfigError naming the key, the valid names and the closest one if ``name`` is unknown.

        ``key`` overrides the registry's own config key (one registry serving two keys)."""
        if name in self._names:
            return
        close = difflib.get_close_matches(str(name), self._names, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"bad value for config key '{key or self.key}': unknown {self.what} '{name}' "
                          f"(valid: {self.describe()}){hint}")

    def get(self, name: str) -> T:
        self.check(name)
        if name not in self._items:
            raise LookupError(f"{self.what} '{name}' is declared but no builder is registered for it; "
                              f"import the module that registers the {self.what}s")
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
