"""Restricted unpickling: read model files without ever running code embedded in them.

A pickle can name any importable callable and have the loader call it (``os.system`` through
``__reduce__`` is the classic). :class:`RestrictedUnpickler` resolves a global only through an
explicit allow-list of ``(module, name) -> object`` entries; anything else raises
:class:`~sfray.errors.UnsafePickleError` *before* the callable could be looked up, let alone called.
Loaders compose their allow-list from the building blocks below plus stand-in classes of their own.
"""

from __future__ import annotations

import collections
import copyreg
import io
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from sfray.errors import AssetError, UnsafePickleError

Allowed = Mapping[tuple[str, str], Any]


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray as ma  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as ma  # type: ignore[no-redef]

    reconstruct = ma._reconstruct
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


def _checked_reconstructor(cls: type, base: type, state: Any) -> Any:
    # cls and base already passed find_class, so they are allow-listed; mirror copyreg's logic.
    if base is object:
        return object.__new__(cls)
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


def load_restricted(source: str | os.PathLike | bytes | BinaryIO, allowed: Allowed, *, what: str) -> Any:
    """Unpickle ``source`` (a path, bytes or a binary file) resolving globals only from ``allowed``.

    ``what`` names the expected content for error messages ("FLAME model", "Next3D checkpoint").
    Raises AssetError for a missing, truncated or non-pickle file and UnsafePickleError for a
    refused global.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise AssetError(f"{path}: file not found (expected a {what})")
        label = str(path)
        fh: BinaryIO = open(path, "rb")  # noqa: SIM115
    elif isinstance(source, (bytes, bytearray)):
        label, fh = f"<{what} bytes>", io.BytesIO(source)
    else:
        label, fh = getattr(source, "name", f"<{what} stream>"), source
    try:
        return RestrictedUnpickler(fh, allowed, source=label).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise AssetError(f"{label}: not a readable {what} ({type(exc).__name__}: {exc})") from exc
    finally:
        if isinstance(source, (str, os.PathLike)):
            fh.close()
