"""Hostile files for the hardening tests and the probe: pickles written opcode by opcode, so the
test does not depend on the attacker's Python having the classes they name."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any


def _body(obj: Any) -> bytes:
    """The opcodes that push ``obj`` (a protocol-2 dump without PROTO and STOP)."""
    data = pickle.dumps(obj, protocol=2)
    assert data[:2] == b"\x80\x02" and data[-1:] == b"."
    return data[2:-1]


def call(module: str, name: str, args: tuple) -> bytes:
    """A pickle whose load calls ``module.name(*args)`` (GLOBAL + REDUCE)."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + _body(args) + b"R."


def stack_call(module: str, name: str, args: tuple) -> bytes:
    """The same through STACK_GLOBAL (protocol 4), the way modern pickles name globals."""
    return (b"\x80\x04" + _body(module) + _body(name) + b"\x93" + _body(args) + b"R.")


def computed_global() -> bytes:
    """STACK_GLOBAL whose module name is computed (a REDUCE result), not written: unverifiable."""
    return (b"\x80\x04" + call("_codecs", "encode", ("os", "latin1"))[2:-1] + _body("system") + b"\x93"
            + _body(("true",)) + b"R.")


def deep_list(depth: int) -> bytes:
    """A list nested ``depth`` levels deep, built without recursion."""
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


def in_dict(key: str, value_opcodes: bytes) -> bytes:
    """``{key: <value>}`` where ``value_opcodes`` is a whole pickle (its PROTO and STOP are cut)."""
    inner = value_opcodes[2:-1]
    return b"\x80\x02}" + _body(key) + inner + b"s."


def huge_storage_blob(numel: int = 2**31 - 1) -> bytes:
    """A legacy ``torch.save`` blob of a 16-byte storage whose header declares ``numel`` bytes."""
    import torch

    buf = io.BytesIO()
    torch.save(torch.arange(4, dtype=torch.float32).untyped_storage(), buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    old = b"K\x10N"  # BININT1 16, NONE: the end of ('storage', cls, key, location, 16, None)
    assert data.count(old) == 1
    return data.replace(old, b"J" + numel.to_bytes(4, "little", signed=True) + b"N", 1)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
