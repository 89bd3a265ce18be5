"""Allow-lists and stand-in classes for reading FLAME-format pickles without chumpy or code execution.

FLAME's ``generic_model.pkl`` stores some arrays as chumpy objects and ``J_regressor`` as a scipy
sparse matrix; RingNet/DECA store embeddings as ``np.save``-d dicts (DECA's with torch tensors
inside). Instead of importing chumpy/scipy classes, the restricted unpickler
(:mod:`sfray.io.restricted_pickle`) resolves those names to inert stand-ins that only remember
their pickled state; :func:`to_numpy` then turns the state into plain arrays. Nothing here calls a
constructor named by the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sfray.errors import AssetError, UnsafePickleError
from sfray.io.restricted_pickle import builtin_globals, load_restricted, numpy_globals


class _StateHolder:
    """Base of the stand-ins: accepts any constructor arguments and keeps the pickled state."""

    pickled_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _StateHolder:
        obj = object.__new__(cls)
        obj.state = {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = {**state[0], **(state[1] or {})}  # (dict, slot-state)
        self.state = state if isinstance(state, dict) else {"state": state}


class ChumpyStandIn(_StateHolder):
    """Any ``chumpy.*`` class. A stored chumpy array (``chumpy.ch.Ch``) keeps its data under ``'x'``."""


class SparseStandIn(_StateHolder):
    """``scipy.sparse`` csc/csr/coo matrices, rebuilt from their ``data``/``indices``/``indptr`` state."""

    fmt = "?"


def _named(base: type, module: str, name: str, **attrs: Any) -> type:
    return type(name, (base,), {"pickled_name": f"{module}.{name}", "__module__": __name__, **attrs})


def _bytes(*args: Any) -> bytes:
    """``bytes()`` as protocol-2 pickles of empty arrays use it; no integer sizes (no huge allocations)."""
    if not args:
        return b""
    if isinstance(args[0], int) or len(args) > 2:
        raise UnsafePickleError("a pickle asked for bytes(n) with a size; refused (nothing was executed)")
    return bytes(*args)


def _extra_builtins() -> dict[tuple[str, str], Any]:
    return {(mod, "bytes"): _bytes for mod in ("builtins", "__builtin__")}


def _sparse_globals() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {}
    for fmt in ("csc", "csr", "coo"):
        for mod in (f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}"):
            name = f"{fmt}_matrix"
            table[(mod, name)] = _named(SparseStandIn, mod, name, fmt=fmt)
            table[(mod, f"{fmt}_array")] = _named(SparseStandIn, mod, f"{fmt}_array", fmt=fmt)
    return table


class PickleTable(Mapping):
    """An allow-list that also maps every ``chumpy`` / ``chumpy.*`` class to a :class:`ChumpyStandIn`."""

    def __init__(self, table: dict[tuple[str, str], Any], chumpy: bool = False):
        self._table = table
        self._chumpy = chumpy
        self._cache: dict[tuple[str, str], type] = {}

    def __getitem__(self, key: tuple[str, str]) -> Any:
        if key in self._table:
            return self._table[key]
        module, name = key
        if self._chumpy and (module == "chumpy" or module.startswith("chumpy.")) and name.isidentifier():
            if key not in self._cache:
                self._cache[key] = _named(ChumpyStandIn, module, name)
            return self._cache[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def model_allowed() -> PickleTable:
    """Globals a FLAME ``generic_model.pkl`` (2020 or 2023) may name: numpy, chumpy, scipy.sparse."""
    table = {**numpy_globals(), **builtin_globals(), **_extra_builtins(), **_sparse_globals()}
    return PickleTable(table, chumpy=True)


def embedding_allowed() -> PickleTable:
    """Globals of landmark embeddings and masks: numpy plus DECA's torch tensors (safe rebuild path)."""
    from sfray.head.flame_tensors import torch_tensor_globals

    table = {**numpy_globals(), **builtin_globals(), **_extra_builtins(), **torch_tensor_globals()}
    return PickleTable(table)


def to_numpy(obj: Any, *, source: str, key: str) -> np.ndarray:
    """A plain ndarray from an array, a chumpy stand-in, a sparse stand-in, a tensor or a list."""
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, ChumpyStandIn):
        if "x" not in obj.state:
            raise AssetError(
                f"{source}: '{key}' is a chumpy expression ({obj.pickled_name}), not a stored array, and "
                "sfray evaluates no chumpy code; convert the file once with chumpy installed "
                "(e.g. np.array(value) for each key) and load the converted pickle")
        return to_numpy(obj.state["x"], source=source, key=key)
    if isinstance(obj, SparseStandIn):
        return _sparse_to_dense(obj, source=source, key=key)
    try:
        import torch

        if isinstance(obj, torch.Tensor):
            return obj.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    if isinstance(obj, (list, tuple, int, float)):
        return np.asarray(obj)
    raise AssetError(f"{source}: '{key}' holds a {type(obj).__name__}, expected an array")


def _sparse_to_dense(obj: SparseStandIn, *, source: str, key: str) -> np.ndarray:
    import scipy.sparse as sp

    st = obj.state
    shape = st.get("_shape", st.get("shape"))
    try:
        shape = tuple(int(s) for s in shape)
        data = np.asarray(st["data"])
        if obj.fmt == "coo":
            rows = np.asarray(st["row"] if "row" in st else st["coords"][0])
            cols = np.asarray(st["col"] if "col" in st else st["coords"][1])
            return sp.coo_matrix((data, (rows, cols)), shape=shape).toarray()
        ctor = sp.csc_matrix if obj.fmt == "csc" else sp.csr_matrix
        return ctor((data, np.asarray(st["indices"]), np.asarray(st["indptr"])), shape=shape).toarray()
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise AssetError(f"{source}: '{key}' is a malformed {obj.pickled_name} ({exc})") from exc


def load_pickle_file(path: str | os.PathLike, allowed: Mapping, *, what: str) -> Any:
    """Unpickle ``path`` through the restricted unpickler (python-2 pickles decode as latin1)."""
    return load_restricted(path, allowed, what=what)


def load_npy_object(path: str | os.PathLike, allowed: Mapping, *, what: str) -> Any:
    """Read an ``np.save``-d object (e.g. a dict) from a ``.npy`` file without ``allow_pickle=True``.

    The ``.npy`` header is parsed with numpy's public format helpers; an object array's payload is
    a pickle, which goes through the restricted unpickler. A plain numeric ``.npy`` is returned as
    an array (read with ``allow_pickle=False``).
    """
    p = Path(path)
    if not p.is_file():
        raise AssetError(f"{p}: file not found (expected a {what})")
    fmt = np.lib.format
    with open(p, "rb") as fh:
        try:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, _fortran, dtype = fmt.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _fortran, dtype = fmt.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as exc:
            raise AssetError(f"{p}: not a .npy file ({exc}); expected a {what}") from exc
        if not dtype.hasobject:
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
        arr = load_restricted(fh, allowed, what=what)  # errors name fh.name, i.e. the path
    if isinstance(arr, np.ndarray) and arr.dtype.hasobject:
        return arr[()] if arr.shape == () else arr
    return arr
