"""Restricted unpickling: read model files without ever running code embedded in them.

A pickle can name any importable callable and have the loader call it (``os.system`` through
``__reduce__`` is the classic). :class:`RestrictedUnpickler` resolves a global only through an
explicit allow-list of ``(module, name) -> object`` entries; anything else raises
:class:`~sfray.errors.UnsafePickleError` *before* the callable could be looked up, let alone called.
Loaders compose their allow-list from the building blocks below plus stand-in classes of their own.

Untrusted files also get resource limits (docs/reliability.md): every allowed callable that can
allocate memory charges what it asks for to the load in progress (:func:`charge`), and a load may
not allocate more than about twice the file's own size, so a 2 kB file cannot ask for 40 TB; the
object it builds may not nest deeper than :data:`MAX_DEPTH`. :func:`scan_pickle` walks a pickle's
opcodes without building anything, which lets a preflight check every global a file names
against the allow-list before any worker starts.
"""

from __future__ import annotations

import collections
import copyreg
import io
import os
import pickle
import pickletools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from sfray.errors import AssetError, UnsafePickleError
from sfray.io.paths import require_file
from sfray.io.space import human_bytes

#: Deepest nesting of containers and object states a loaded file may have (real model files: < 40).
MAX_DEPTH = 200
#: What a load may allocate through allowed callables: this many times the file size, plus a floor.
BUDGET_FACTOR, BUDGET_FLOOR = 2, 64 * 2**20
_LOAD = threading.local()


@dataclass
class _Budget:
    source: str
    file_bytes: int
    limit: int
    used: int = 0


def charge(nbytes: int, what: str) -> None:
    """Count ``nbytes`` that an allowed callable is about to allocate against the load in progress;
    AssetError when the load would exceed its budget (nothing is allocated). Outside a load, free."""
    budget: _Budget | None = getattr(_LOAD, "budget", None)
    if budget is None:
        return
    budget.used += max(int(nbytes), 0)
    if budget.used > budget.limit:
        raise AssetError(f"{budget.source}: refused to load: {what} asks for {human_bytes(nbytes)} "
                         f"({human_bytes(budget.used)} in all) from a file of {human_bytes(budget.file_bytes)}; "
                         "nothing was allocated (a corrupt or hostile file?)")

Allowed = Mapping[tuple[str, str], Any]


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray as ma  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as ma  # type: ignore[no-redef]

    real_reconstruct = ma._reconstruct

    def reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
        try:
            n = int(np.prod(np.asarray(shape, dtype=np.int64))) * np.dtype(dtype).itemsize
        except (TypeError, ValueError, OverflowError):
            n = 0  # numpy itself refuses such arguments
        charge(n, "a numpy array")
        return real_reconstruct(subtype, shape, dtype)

    scalar = ma.scalar
    table: dict[tuple[str, str], Any] = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(mod, "_reconstruct")] = reconstruct
        table[(mod, "scalar")] = scalar
    for mod in ("numpy", "numpy.core.numeric", "numpy._core.numeric"):
        table[(mod, "ndarray")] = np.ndarray
        table[(mod, "dtype")] = np.dtype
    table[("numpy", "ndarray")] = np.ndarray
    table[("numpy.core.numeric", "_frombuffer")] = _frombuffer
    table[("numpy._core.numeric", "_frombuffer")] = _frombuffer
    # numpy >= 1.25 pickles dtypes of builtin types by their DType class
    for mod in ("numpy.dtypes",):
        for name in dir(np.dtypes):
            if name.endswith("DType"):
                table[(mod, name)] = getattr(np.dtypes, name)
    return table


def _frombuffer(buf: bytes, dtype: Any, shape: Any, order: str) -> np.ndarray:
    """numpy's own ``_frombuffer`` helper for protocol-5 pickles, re-implemented (no code from the file)."""
    charge(len(buf), "a numpy array")
    arr = np.frombuffer(buf, dtype=dtype)
    if shape is not None:
        arr = arr.reshape(shape, order=order)
    return arr.copy()


def numpy_globals() -> dict[tuple[str, str], Any]:
    """Globals needed to rebuild plain numpy arrays, dtypes and scalars."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _numpy_globals()


def builtin_globals() -> dict[tuple[str, str], Any]:
    """Containers and the copyreg reconstructor (which only instantiates allowed classes)."""
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("builtins", "complex"): complex,
        ("builtins", "object"): object,
        ("__builtin__", "set"): set,
        ("__builtin__", "frozenset"): frozenset,
        ("__builtin__", "object"): object,
        ("_codecs", "encode"): _codecs_encode,
    }
    for mod in ("copyreg", "copy_reg"):
        table[(mod, "_reconstructor")] = _checked_reconstructor
    return table


def _codecs_encode(obj: str, encoding: str = "utf-8") -> bytes:
    """Python 2 pickles store byte strings as ``_codecs.encode(text, 'latin1')``."""
    if encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise UnsafePickleError(f"pickle asked for an unexpected codec {encoding!r}")
    return obj.encode(encoding)


#: Bases ``copyreg._reconstructor`` may call ``base.__new__(cls, state)`` on: plain Python types,
#: whose constructors allocate no more than their (already loaded) state.
_RECONSTRUCT_BASES = (object, dict, list, set, frozenset, tuple, str, bytes, int, float, complex)


def _checked_reconstructor(cls: type, base: type, state: Any) -> Any:
    # cls and base already passed find_class, so they are allow-listed; mirror copyreg's logic for
    # plain Python bases only (an allowed tensor class as base would allocate what the file asks).
    if base is object:
        return object.__new__(cls)
    if base not in _RECONSTRUCT_BASES:
        budget = getattr(_LOAD, "budget", None)
        where = f"{budget.source}: " if budget is not None else ""
        raise UnsafePickleError(f"{where}refused to load: the pickle asks to rebuild a "
                                f"{getattr(cls, '__name__', cls)} on base {getattr(base, '__name__', base)}, "
                                "which sfray does not allow (nothing was executed)")
    return copyreg._reconstructor(cls, base, state)  # type: ignore[attr-defined]


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves globals only from an allow-list."""

    def __init__(self, file: BinaryIO, allowed: Allowed, *, source: str, encoding: str = "latin1"):
        super().__init__(file, encoding=encoding)
        self._allowed = allowed
        self._source = source

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refused to load: the pickle asks for '{module}.{name}', which is "
                "not on sfray's allow-list for this file type (nothing in the file was executed). "
                "Is this the right file?"
            ) from None

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        raise UnsafePickleError(
            f"{self._source}: unexpected persistent id in pickle (a torch zip checkpoint?); "
            "nothing was executed"
        )


def _check_depth(obj: Any, label: str, limit: int = MAX_DEPTH) -> None:
    """AssetError when ``obj`` nests containers or object states deeper than ``limit`` (checked
    without recursion, so a hostile file gets an answer instead of a RecursionError)."""
    stack: list[tuple[Any, int]] = [(obj, 0)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if depth > limit:
            raise AssetError(f"{label}: refused to load: its objects nest deeper than {limit} levels "
                             "(a corrupt or hostile file?)")
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            children = list(item)
        elif isinstance(item, np.ndarray):
            children = list(item.reshape(-1)) if item.dtype == object else []
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            children = list(vars(item).values())
        else:
            continue
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list, tuple, set, frozenset,
                                                                          np.ndarray)) or hasattr(c, "__dict__"))


def load_restricted(source: str | os.PathLike | bytes | BinaryIO, allowed: Allowed, *, what: str) -> Any:
    """Unpickle ``source`` (a path, bytes or a binary file) resolving globals only from ``allowed``.

    ``what`` names the expected content for error messages ("FLAME model", "Next3D checkpoint").
    Raises AssetError for a missing, truncated or non-pickle file, a file that asks for more memory
    than its size explains or nests too deep, and UnsafePickleError for a refused global.
    """
    if isinstance(source, (str, os.PathLike)):
        path = require_file(source, f"a {what}")
        label = str(path)
        size = path.stat().st_size
        fh: BinaryIO = open(path, "rb")  # noqa: SIM115
    elif isinstance(source, (bytes, bytearray)):
        label, fh, size = f"<{what} bytes>", io.BytesIO(source), len(source)
    else:
        label, fh = getattr(source, "name", f"<{what} stream>"), source
        try:
            size = os.fstat(fh.fileno()).st_size
        except (AttributeError, OSError, io.UnsupportedOperation):
            size = len(fh.getvalue()) if isinstance(fh, io.BytesIO) else 0
    outer = getattr(_LOAD, "budget", None)
    _LOAD.budget = outer or _Budget(label, size, BUDGET_FACTOR * size + BUDGET_FLOOR)
    try:
        obj = RestrictedUnpickler(fh, allowed, source=label).load()
        _check_depth(obj, label)
        return obj
    except (UnsafePickleError, AssetError):
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, OverflowError, MemoryError, RecursionError) as exc:
        raise AssetError(f"{label}: not a readable {what} ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:300]})") from None
    finally:
        _LOAD.budget = outer
        if isinstance(source, (str, os.PathLike)):
            fh.close()


# ---------------------------------------------------------------------------------------------
# Scanning without loading
# ---------------------------------------------------------------------------------------------

_MARK = object()
_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
               "BINUNICODE8"}
_INT_OPS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"}
_TUPLE_OPS = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}


@dataclass
class PickleScan:
    """What one pickle asks for, found without building anything: the globals it names (None where
    a name is computed, not written), its persistent ids (as far as they are literal), and where it ends."""

    globals: list[tuple[str, str] | None] = field(default_factory=list)
    persistent_ids: list[Any] = field(default_factory=list)
    end: int = 0


def scan_pickle(fh: BinaryIO, *, label: str = "<pickle>") -> PickleScan:
    """Walk the opcodes of the pickle at ``fh``'s position (``pickletools.genops``) with an abstract
    stack that tracks only literal strings, ints, tuples and globals. Stops after STOP."""
    scan = PickleScan()
    stack: list[Any] = []
    memo: dict[int, Any] = {}

    def pop() -> Any:
        return stack.pop() if stack else None

    def pop_mark() -> list[Any]:
        items: list[Any] = []
        while stack and stack[-1] is not _MARK:
            items.append(stack.pop())
        if stack:
            stack.pop()
        return items[::-1]

    try:
        for op, arg, pos in pickletools.genops(fh):
            name = op.name
            scan.end = pos + 1
            if name == "STOP":
                break
            if name in ("GLOBAL", "INST"):
                module, _, qual = str(arg).partition(" ")
                scan.globals.append((module, qual))
            if name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = stack[-1] if stack else None
                continue
            if name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else None
                continue
            if name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(int(arg)))
                continue
            if name == "DUP":
                stack.append(stack[-1] if stack else None)
                continue
            before = op.stack_before
            if pickletools.markobject in before:
                items = pop_mark()
                for _ in range(before.index(pickletools.markobject)):
                    pop()
            else:
                items = [pop() for _ in before][::-1]
            if name == "MARK":
                stack.append(_MARK)
            elif name in _STRING_OPS:
                stack.append(arg.decode("latin1") if isinstance(arg, bytes) else arg)
            elif name in _INT_OPS:
                stack.append(int(arg))
            elif name == "TUPLE" or name in _TUPLE_OPS:
                stack.append(tuple(items))
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name in ("GLOBAL", "INST"):
                stack.append(("global", *scan.globals[-1]))
            elif name == "STACK_GLOBAL":
                module, qual = items
                known = isinstance(module, str) and isinstance(qual, str)
                scan.globals.append((module, qual) if known else None)
                stack.append(("global", module, qual) if known else None)
            elif name in ("BINPERSID", "PERSID"):
                scan.persistent_ids.append(items[0] if items else arg)
                stack.append(None)
            else:
                stack.extend(None for _ in op.stack_after)
    except (ValueError, EOFError) as exc:
        raise AssetError(f"{label}: not a readable pickle ({' '.join(str(exc).split())[:200]})") from None
    return scan


def check_globals(source: str | os.PathLike | bytes, allowed: Allowed, *, what: str,
                  persistent_ok: Callable[[Any], bool] | None = None) -> PickleScan:
    """Refuse (UnsafePickleError) a pickle naming a global outside ``allowed`` or one whose name
    it computes instead of writing; AssetError for a file that is not a pickle. Builds nothing."""
    if isinstance(source, (bytes, bytearray)):
        label, fh = f"<{what} bytes>", io.BytesIO(source)
    else:
        path = require_file(source, f"a {what}")
        label, fh = str(path), open(path, "rb")  # noqa: SIM115
    try:
        scan = scan_pickle(fh, label=label)
    finally:
        fh.close()
    for ref in scan.globals:
        if ref is None:
            raise UnsafePickleError(f"{label}: refused to load: the pickle computes the name of a global "
                                    "instead of writing it, so it cannot be checked (nothing was executed)")
        if ref not in allowed:
            raise UnsafePickleError(f"{label}: refused to load: the pickle asks for '{ref[0]}.{ref[1]}', "
                                    "which is not on sfray's allow-list for this file type (nothing in the "
                                    "file was executed). Is this the right file?")
    for pid in scan.persistent_ids:
        if persistent_ok is None or not persistent_ok(pid):
            raise UnsafePickleError(f"{label}: unexpected persistent id in pickle (a torch zip checkpoint?); "
                                    "nothing was executed")
    return scan
