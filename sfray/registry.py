"""Named registries: the single place where the valid values of a name-valued config key live.

A :class:`Registry` maps names (``procedural``, ``tiny``, ``gaussian``) to builders. Config schemas
ask it for the valid names (so their messages list them), and factories ask it for the builder, so
a name is never checked in two places. An unknown name raises a :class:`ConfigError` that names
the config key, the valid names and the closest one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from sfray.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """``name -> T`` for the config key ``key`` (e.g. ``model.size``), filled with :meth:`register`."""

    def __init__(self, key: str, what: str):
        self.key, self.what = key, what
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("tiny")`` records the decorated object under ``name``."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.what} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return add

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def check(self, name: str) -> None:
        """Raise ConfigError naming the key, the valid names and the closest one if ``name`` is unknown."""
        if name in self._items:
            return
        valid = " | ".join(self._items)
        close = difflib.get_close_matches(str(name), list(self._items), n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"bad value for config key '{self.key}': unknown {self.what} '{name}' "
                          f"(valid: {valid}){hint}")

    def get(self, name: str) -> T:
        self.check(name)
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
