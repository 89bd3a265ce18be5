"""Read the official EG3D/Next3D network pickles without running their code.

An official ``.pkl`` (docs/next3d.md §5) is a plain pickle of ``{'training_set_kwargs', 'G', 'D', 'G_ema',
'augment_pipe'}``. Decorated ("persistent") classes pickle as a call of
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` whose ``meta`` carries the class name,
the instance ``__dict__`` and the *full source of the defining module*, which the official loader
``exec``s. Here that global resolves to :class:`PersistentRecord`, which keeps the source as text;
every other project class resolves to an inert :class:`StubObject` that only stores its state; the
torch/numpy rebuild helpers are the real ones (tensor storages load with ``weights_only=True``).
Anything else is refused by :mod:`sfray.io.restricted_pickle` before it could be called. (The writer
of this format that the tests use lives in ``tests/generators/next3d/official_dump.py``.)

The torch callables that allocate are guarded (``sfray.io.restricted_pickle.charge``): a call of the
allowed ``torch.Tensor`` class is charged for the elements it asks for, and an embedded storage blob
may not declare more bytes than it holds, so a small hostile file cannot ask for terabytes.
:func:`check_official_pickle` checks every global of a file without building anything (preflight).
"""

from __future__ import annotations

import collections
import io
import pickle
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from sfray.errors import AssetError
from sfray.io.restricted_pickle import (
    PickleScan,
    builtin_globals,
    charge,
    check_globals,
    load_restricted,
    numpy_globals,
    scan_pickle,
)

PERSISTENCE_MODULE = "torch_utils.persistence"
RECONSTRUCT_NAME = "_reconstruct_persistent_obj"
#: Module prefixes whose classes may appear in a Next3D/EG3D pickle; they become inert stubs.
STUB_MODULE_PREFIXES = ("training_avatar_texture.", "training.", "torch_utils.", "dnnlib.", "torch.nn.modules.",
                         "pytorch3d.")
#: Plain torch values a module state may hold (dtypes, devices, sizes): constructed, never code.
TORCH_VALUES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool",
                "device", "Size", "Tensor")


class PersistentRecord:
    """One persistent-class instance as stored: ``class_name``, ``state`` and ``module_src`` (text only)."""

    def __init__(self, meta: Any):
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise pickle.UnpicklingError("persistent object record is not a {'type': 'class', ...} dict")
        self.version: int = int(meta.get("version", -1))
        self.class_name: str = str(meta.get("class_name", "?"))
        self.module_src: str = str(meta.get("module_src", ""))
        state = meta.get("state", {})
        self.state: dict[str, Any] = state if isinstance(state, dict) else {}

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name}, v{self.version})"


class StubObject:
    """Stand-in for a non-persistent project or torch.nn class: remembers its name and state."""

    stub_module = "?"
    stub_name = "?"

    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.kwargs = args, kwargs
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
            state = state[0] or {}
        self.state = state if isinstance(state, dict) else {"_raw_state": state}

    @property
    def class_name(self) -> str:
        return self.stub_name

    def __repr__(self) -> str:
        return f"Stub({self.stub_module}.{self.stub_name})"


class EasyDict(dict):
    """``dnnlib.util.EasyDict`` read back as a plain dict subclass."""


_STUBS: dict[tuple[str, str], type] = {}


def stub_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _STUBS:
        _STUBS[key] = type(name, (StubObject,), {"stub_module": module, "stub_name": name})
    return _STUBS[key]


#: Bytes per element of the legacy storage classes a ``torch.save`` blob names.
_STORAGE_ITEMSIZE = {"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
                     "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
                     "BoolStorage": 1, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16,
                     "UntypedStorage": 1}


def declared_storage_bytes(data: bytes) -> int | None:
    """Bytes the storages of a legacy ``torch.save`` blob declare (its persistent ids
    ``('storage', <class>, key, location, numel)``), read without loading; None if unreadable."""
    fh = io.BytesIO(data)
    total = 0
    try:
        for _ in range(4):  # magic number, protocol version, sys info, then the object itself
            scan: PickleScan = scan_pickle(fh)
            fh.seek(scan.end)
        for pid in scan.persistent_ids:
            if not (isinstance(pid, tuple) and len(pid) >= 5 and isinstance(pid[4], int)):
                return None
            cls = pid[1][2] if isinstance(pid[1], tuple) and len(pid[1]) == 3 else ""
            total += int(pid[4]) * _STORAGE_ITEMSIZE.get(str(cls), 4)
    except AssetError:
        return None
    return total


def _load_storage_bytes(data: bytes) -> Any:
    """An embedded legacy ``torch.save`` blob of one storage, loaded without code and onto the CPU.

    torch allocates a storage at the size the blob *declares* before reading its bytes, so the
    declaration is read first and must fit in the blob."""
    declared = declared_storage_bytes(data)
    if declared is None or declared > len(data) + 4096:
        charge(2**62 if declared is None else declared, "an embedded tensor storage")
    charge(len(data), "an embedded tensor storage")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _tensor(*args: Any, **kwargs: Any) -> torch.Tensor:
    """The allowed ``torch.Tensor`` class when a pickle *calls* it: charged for what it asks."""
    n = 1
    ints = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    if ints and len(ints) == len(args):
        for a in ints:
            n *= max(a, 0)
        charge(4 * n, "torch.Tensor(...)")
    elif args and isinstance(args[0], (tuple, list)) and all(isinstance(a, int) for a in args[0]):
        for a in args[0]:
            n *= max(int(a), 0)
        charge(4 * n, "torch.Tensor(...)")
    return torch.Tensor(*args, **kwargs)


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    """torch's helper with the guarded ``torch.Tensor`` stand-in mapped back to the real class."""
    if new_type is _tensor:
        new_type = torch.Tensor
    return torch._tensor._rebuild_from_type_v2(func, new_type, args, state)


class Next3DAllowList(Mapping):
    """(module, name) -> object for the restricted unpickler; project classes resolve to stubs."""

    def __init__(self) -> None:
        table: dict[tuple[str, str], Any] = {**builtin_globals(), **numpy_globals()}
        table[(PERSISTENCE_MODULE, RECONSTRUCT_NAME)] = PersistentRecord
        table[("torch._utils", "_rebuild_tensor_v2")] = torch._utils._rebuild_tensor_v2
        table[("torch._utils", "_rebuild_parameter")] = torch._utils._rebuild_parameter
        table[("torch._utils", "_rebuild_parameter_with_state")] = torch._utils._rebuild_parameter_with_state
        table[("torch.storage", "_load_from_bytes")] = _load_storage_bytes
        # newer torch pickles tensor subclasses / tensors with Python state through this helper; it
        # only calls the (allow-listed) rebuild function it is given and sets attributes
        table[("torch._tensor", "_rebuild_from_type_v2")] = _rebuild_from_type_v2
        table[("torch.nn.parameter", "Parameter")] = torch.nn.Parameter
        for name in TORCH_VALUES:
            table[("torch", name)] = getattr(torch, name)
        table[("torch", "Tensor")] = _tensor
        table[("dnnlib.util", "EasyDict")] = EasyDict
        table[("dnnlib", "EasyDict")] = EasyDict
        self._table = table

    def __getitem__(self, key: tuple[str, str]) -> Any:
        if key in self._table:
            return self._table[key]
        module, name = key
        if module.startswith(STUB_MODULE_PREFIXES) and name.isidentifier() and name[:1].isupper():
            return stub_class(module, name)
        raise KeyError(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


PICKLE_WHAT = "Next3D network pickle (.pkl)"


def read_official_pickle(source: Any) -> Any:
    """Unpickle an official network pickle (path, bytes or file) into records/stubs; nothing is executed."""
    return load_restricted(source, Next3DAllowList(), what=PICKLE_WHAT)


def check_official_pickle(source: Any) -> None:
    """Every global the pickle names is on the allow-list; builds nothing (a preflight check)."""
    check_globals(source, Next3DAllowList(), what=PICKLE_WHAT)


# ---------------------------------------------------------------------------------------------
# Walking records
# ---------------------------------------------------------------------------------------------

def module_state(obj: Any) -> dict[str, Any]:
    """The ``__dict__`` of a pickled module (record or stub); {} for anything else."""
    if isinstance(obj, (PersistentRecord, StubObject)):
        return obj.state
    return {}


def walk_modules(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, record/stub) for ``obj`` and every sub-module, in registration order."""
    yield prefix.rstrip("."), obj
    children = module_state(obj).get("_modules") or {}
    for name, child in children.items():
        if child is not None:
            yield from walk_modules(child, f"{prefix}{name}.")


def extract_tensors(obj: Any) -> collections.OrderedDict[str, torch.Tensor]:
    """State-dict style name -> tensor for parameters and persistent buffers (docs/next3d.md §5.4)."""
    out: collections.OrderedDict[str, torch.Tensor] = collections.OrderedDict()
    for path, mod in walk_modules(obj):
        st = module_state(mod)
        pre = f"{path}." if path else ""
        skip = set(st.get("_non_persistent_buffers_set") or ())
        for kind in ("_parameters", "_buffers"):
            for name, t in (st.get(kind) or {}).items():
                if t is None or (kind == "_buffers" and name in skip):
                    continue
                if not isinstance(t, torch.Tensor):
                    raise AssetError(f"entry '{pre}{name}' is a {type(t).__name__}, not a tensor")
                out[pre + name] = t.detach()
    return out


def find_module(obj: Any, path: str) -> Any:
    for p, mod in walk_modules(obj):
        if p == path:
            return mod
    return None
