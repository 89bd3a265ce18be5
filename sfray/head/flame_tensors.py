"""Decode torch tensors embedded in a plain pickle (DECA's ``landmark_embedding.npy``) safely.

``np.save`` of a dict holding torch tensors pickles each tensor as
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`` where the
storage is ``torch.storage._load_from_bytes(b)`` and ``b`` is a *legacy* ``torch.save`` of that one
storage: five pickles in a row (magic number, protocol version, sys info, the storage as a
persistent id ``('storage', torch.XStorage, key, location, numel, view)``, the list of keys) followed
by, per key, an int64 element count and the raw little-endian data.

Both names resolve here to sfray's own functions: the legacy bytes are parsed with the restricted
unpickler (storage types map to inert dtype tokens) and the tensor is rebuilt with a bounds-checked
``as_strided``. torch's own loaders are never called on file content.
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from typing import Any

import torch

from sfray.errors import AssetError, UnsafePickleError
from sfray.io.restricted_pickle import RestrictedUnpickler, builtin_globals

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _StorageType:
    """Token standing for ``torch.XStorage`` inside a persistent id; never called."""

    def __init__(self, name: str, dtype: torch.dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class Storage:
    """A decoded storage: a flat CPU tensor of its dtype."""

    def __init__(self, data: torch.Tensor, view: Any = None):
        self.data = data
        self.view = view  # (view key, offset, numel) for legacy storage views, else None


#: storage key -> (dtype, element count, the Storage objects waiting for its data)
_Entry = tuple[torch.dtype, int, list[Storage]]


class _LegacyUnpickler(RestrictedUnpickler):
    """Restricted unpickler that turns storage persistent ids into lazily filled :class:`Storage`."""

    def __init__(self, fh: io.BytesIO, source: str, storages: dict[str, _Entry]):
        storage_types = {("torch", n): _StorageType(n, d) for n, d in _STORAGE_DTYPES.items()}
        table = {**builtin_globals(), **storage_types}
        super().__init__(fh, table, source=source)
        self._storages = storages

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        ok = isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
        if not (ok and isinstance(pid[1], _StorageType)):
            raise UnsafePickleError(f"{self._source}: unexpected persistent id {pid!r:.80} in an embedded "
                                    "torch storage (nothing was executed)")
        _, stype, key, _location, numel, view = pid
        views = self._storages.setdefault(str(key), (stype.dtype, int(numel), []))[2]
        out = Storage(torch.empty(0, dtype=stype.dtype), view)
        views.append(out)
        return out


def load_legacy_storage(data: bytes, source: str = "<embedded torch storage>") -> Storage:
    """Parse the legacy ``torch.save`` bytes of one storage (see module docstring)."""
    if not isinstance(data, (bytes, bytearray)):
        raise AssetError(f"{source}: embedded torch storage is a {type(data).__name__}, expected bytes")
    fh = io.BytesIO(bytes(data))
    storages: dict[str, _Entry] = {}
    try:
        if RestrictedUnpickler(fh, builtin_globals(), source=source).load() != _LEGACY_MAGIC:
            raise AssetError(f"{source}: embedded torch storage has a wrong magic number "
                             "(not a legacy torch.save)")
        if RestrictedUnpickler(fh, builtin_globals(), source=source).load() != _LEGACY_PROTOCOL:
            raise AssetError(f"{source}: embedded torch storage has an unsupported protocol version")
        info = RestrictedUnpickler(fh, builtin_globals(), source=source).load()
        if not (isinstance(info, dict) and info.get("little_endian", False)):
            raise AssetError(f"{source}: embedded torch storage is not little-endian")
        result = _LegacyUnpickler(fh, source, storages).load()
        keys = RestrictedUnpickler(fh, builtin_globals(), source=source).load()
        for key in keys:
            dtype, numel, views = storages[str(key)]
            count = int.from_bytes(fh.read(8), "little", signed=True)
            nbytes = count * torch.empty(0, dtype=dtype).element_size()
            raw = fh.read(nbytes)
            if count != numel or len(raw) != nbytes:
                raise AssetError(f"{source}: embedded torch storage {key} is truncated or inconsistent")
            flat = torch.frombuffer(bytearray(raw), dtype=dtype) if nbytes else torch.empty(0, dtype=dtype)
            for st in views:
                if st.view is None:
                    st.data = flat
                else:
                    _vkey, offset, size = st.view
                    if not 0 <= int(offset) <= int(offset) + int(size) <= numel:
                        raise AssetError(f"{source}: embedded torch storage view out of range")
                    st.data = flat[int(offset): int(offset) + int(size)]
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
        raise AssetError(f"{source}: malformed embedded torch storage ({type(exc).__name__}: {exc})") from exc
    if not isinstance(result, Storage):
        raise AssetError(f"{source}: embedded torch bytes hold a {type(result).__name__}, expected a storage")
    return result


def rebuild_tensor_v2(storage: Storage, storage_offset: int, size: Any, stride: Any,
                      requires_grad: bool = False, backward_hooks: Any = None,
                      metadata: Any = None) -> torch.Tensor:
    """Safe stand-in for ``torch._utils._rebuild_tensor_v2``: a bounds-checked strided copy."""
    if not isinstance(storage, Storage):
        raise AssetError(f"tensor rebuild got a {type(storage).__name__} instead of a storage")
    if backward_hooks:
        raise UnsafePickleError("a pickled tensor carries backward hooks; refused (nothing was executed)")
    size, stride, offset = tuple(int(s) for s in size), tuple(int(s) for s in stride), int(storage_offset)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise AssetError(f"malformed pickled tensor (size {size}, stride {stride}, offset {offset})")
    if not all(size):
        return torch.empty(size, dtype=storage.data.dtype)
    n = storage.data.numel()
    if offset + sum((sz - 1) * st for sz, st in zip(size, stride)) >= n:
        raise AssetError(f"pickled tensor (size {size}, stride {stride}, offset {offset}) exceeds its "
                         f"storage of {n} elements")
    return torch.as_strided(storage.data, size, stride, offset).clone()


def torch_tensor_globals() -> dict[tuple[str, str], Any]:
    """The two globals a pickled CPU tensor names, mapped to the safe functions above."""
    return {
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
        ("torch.storage", "_load_from_bytes"): load_legacy_storage,
        ("collections", "OrderedDict"): OrderedDict,
    }
