"""Test-only: pickle a tree of proxies the way the official persistence mechanism does.

Moved out of the package (it only serves tests): the writer creates fake modules for the globals
an official ``.pkl`` names (docs/next3d.md §5.2) so ``pickle`` can reference them, and emits the
persistent records as calls of ``torch_utils.persistence._reconstruct_persistent_obj``.
"""

from __future__ import annotations

import collections
import pickle
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sfray.generators.next3d.official_pickle import PERSISTENCE_MODULE, RECONSTRUCT_NAME

@contextmanager
def fake_modules(names: list[str]) -> Iterator[dict[str, types.ModuleType]]:
    """Temporarily register empty modules so pickle can name globals there; restores sys.modules."""
    parents = {n.rsplit(".", i)[0] for n in names for i in range(1, n.count(".") + 1)}
    parents = {p for p in parents if p not in sys.modules and p not in names}
    saved = {n: sys.modules.get(n) for n in [*names, *parents]}
    mods: dict[str, types.ModuleType] = {}
    try:
        for n in [*parents, *names]:
            mods[n] = types.ModuleType(n)
            sys.modules[n] = mods[n]
        yield mods
    finally:
        for n, old in saved.items():
            if old is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = old


class _PersistentProxy:
    """Pickles as ``torch_utils.persistence._reconstruct_persistent_obj(meta)``, like the decorator."""

    reconstruct: Any = None  # set to the fake module's function while writing

    def __init__(self, class_name: str, module_src: str, state: dict[str, Any], version: int = 6):
        self.meta = {"type": "class", "version": version, "module_src": module_src,
                     "class_name": class_name, "state": state}

    def __reduce__(self) -> tuple:
        return (_PersistentProxy.reconstruct, (self.meta,))


class _PlainProxy:
    """Becomes a bare ``cls`` instance at dump time: pickles as NEWOBJ(cls) + BUILD(state)."""

    def __init__(self, cls: type | tuple[str, str], state: dict[str, Any]):
        self.cls, self.state = cls, state


class _DictProxy:
    """A dict subclass instance (e.g. ``dnnlib.util.EasyDict``) to create at dump time."""

    def __init__(self, cls: tuple[str, str], items: dict[str, Any]):
        self.cls, self.items = cls, items


def dump_official(obj: Any, fake_globals: dict[str, dict[str, tuple[type, ...]]], protocol: int = 4) -> bytes:
    """Pickle a tree of proxies; ``fake_globals`` maps module -> {class name: bases} to create."""
    names = sorted(set(fake_globals) | {PERSISTENCE_MODULE})
    with fake_modules(names) as mods:
        def reconstruct(meta: Any) -> Any:  # never called: the writer only needs the global's name
            raise RuntimeError("official persistence stand-in")

        reconstruct.__module__, reconstruct.__qualname__ = PERSISTENCE_MODULE, RECONSTRUCT_NAME
        setattr(mods[PERSISTENCE_MODULE], RECONSTRUCT_NAME, reconstruct)
        for module, classes in fake_globals.items():
            for cls_name, bases in classes.items():
                cls = type(cls_name, bases, {"__module__": module})
                cls.__qualname__ = cls_name
                setattr(mods[module], cls_name, cls)
        _PersistentProxy.reconstruct = reconstruct
        try:
            resolved = _resolve_plain(obj, mods)
            return pickle.dumps(resolved, protocol=protocol)
        finally:
            _PersistentProxy.reconstruct = None


def _resolve_plain(obj: Any, mods: dict[str, types.ModuleType]) -> Any:
    """Replace ('module', 'Class') placeholders of _PlainProxy.cls with the fake classes, recursively."""
    if isinstance(obj, _PlainProxy):
        cls = obj.cls
        if isinstance(cls, tuple):
            cls = getattr(mods[cls[0]], cls[1])
        inst = cls.__new__(cls)  # a bare instance whose __dict__ is the state: pickles as NEWOBJ + BUILD
        inst.__dict__.update(_resolve_plain(obj.state, mods))
        return inst
    if isinstance(obj, _PersistentProxy):
        obj.meta["state"] = _resolve_plain(obj.meta["state"], mods)
        return obj
    if isinstance(obj, _DictProxy):
        inst = getattr(mods[obj.cls[0]], obj.cls[1])()
        inst.update({k: _resolve_plain(v, mods) for k, v in obj.items.items()})
        return inst
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _resolve_plain(v, mods)) for k, v in obj.items())
    if isinstance(obj, dict) and type(obj) is dict:
        return {k: _resolve_plain(v, mods) for k, v in obj.items()}
    return obj
