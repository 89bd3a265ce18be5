"""One sample on disk: a small, versioned, deterministic binary container.

Layout (all integers little-endian)::

    b"SFRY" | u16 format version | u32 header length | header (UTF-8 JSON) | blob bytes ...

The header is compact JSON with sorted keys: ``{"blobs": [[name, codec, dtype, shape, offset,
length], ...], "meta": {...}}``; blobs are sorted by name and laid out back to back. Identical
inputs therefore give byte-identical records (same library versions), which is what makes a
regenerated shard checksum-equal to the first attempt. Codecs (docs/dataset.md, "Codecs"):

- ``png`` / ``jpeg`` / ``webp`` / ``webp_lossless``: the image ``(3, H, W)`` uint8
  (``GenerateSection.image_format`` and ``image_quality``); with ``array_codec=zlib`` (the default)
  segmentation ``(H, W)`` uint8 ids is lossless PNG;
- ``zraw``: zlib-compressed little-endian array bytes. Depth maps (the mesh's and the generator's)
  and the generator's coverage are stored as float16 (docs/conventions.md), other arrays in their
  own dtype (landmarks, camera and FLAME parameters float32);
- ``zstd``: zstd-compressed little-endian array bytes, in the array's own layout: the image with
  ``image_format=zstd``, label maps and every ``zraw`` array with ``array_codec=zstd``;
- ``zbits``: zlib-compressed ``np.packbits`` of a bool array (mask, landmark visibility).

A record that uses only the first three image codecs, PNG label maps, ``zraw`` and ``zbits`` is
format version 1 (every record written before the other codecs existed); one with a
``webp_lossless`` or ``zstd`` blob is version 2, so an older sfray says "upgrade" instead of
failing on an unknown codec. Readers accept both.

Scalars, strings and the quality dict live in ``meta``. Any extra ndarray key is stored with
``zraw`` and any extra JSON-able scalar in ``meta``, so importers can carry source-specific data
(e.g. ``Field.PUPILS_2D``) without a format change.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import threading
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from PIL import Image

from sfray.config.registries import ARRAY_CODECS
from sfray.config.registries import IMAGE_FORMATS as IMAGE_FORMAT_NAMES
from sfray.conventions import Field
from sfray.errors import AssetError, SfrayError

MAGIC = b"SFRY"
FORMAT_VERSION = 1  # records with the original codecs only (the default config's records)
#: The newest version this sfray reads and writes: version 1 plus the codecs of :data:`V2_CODECS`.
MAX_FORMAT_VERSION = 2
V2_CODECS = frozenset(("webp_lossless", "zstd"))
#: zstd level of ``zstd`` blobs: level 1 encodes a 512² image ~4x faster than level 3 for ~10% more
#: bytes (bench/codecs.py, docs/benchmarks.md); the codec exists for speed, so speed wins.
ZSTD_LEVEL = 1
_PREFIX = struct.Struct("<4sHI")
PNG_COMPRESS_LEVEL = 3  # zlib level for PNG blobs: most of level 9's size at a fraction of the time
ZLIB_LEVEL = 6
#: The image codecs (``generate.image_format``); the encoders are registered below.
IMAGE_FORMATS = IMAGE_FORMAT_NAMES.names()
#: The codecs decoded by Pillow (the other image format, ``zstd``, is an array codec).
PIL_FORMATS = tuple(f for f in IMAGE_FORMATS if f != "zstd")


#: Stored as float16 (docs/conventions.md: depth), decoded to float32.
_FLOAT16 = (Field.DEPTH, Field.GENERATOR_DEPTH, Field.GENERATOR_MASK)
_FLOAT32 = (Field.LANDMARKS_2D, Field.LANDMARKS_3D, Field.CAMERA, Field.SHAPE, Field.EXPRESSION,
            Field.POSE, Field.LATENT, Field.PUPILS_2D)
_BOOL = (Field.MASK, Field.LANDMARKS_VISIBLE)
_LABEL_MAPS = (Field.SEGMENTATION, Field.SOURCE_SEGMENTATION)
_ARRAY_FIELDS = frozenset((Field.IMAGE,) + _FLOAT16 + _FLOAT32 + _BOOL + _LABEL_MAPS)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _json_value(key: str, value: Any) -> Any:
    """Plain JSON types for meta values (numpy scalars and nested dicts included)."""
    if isinstance(value, Mapping):
        return {str(k): _json_value(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(key, v) for v in value]
    if hasattr(value, "item") and np.ndim(value) == 0:  # numpy scalar, 0-d array or 0-d tensor
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise SfrayError(f"record field '{key}': cannot store a value of type {type(value).__name__}")


@IMAGE_FORMAT_NAMES.register("png")
def _png(image: Image.Image, buf: io.BytesIO, quality: int) -> None:
    image.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


@IMAGE_FORMAT_NAMES.register("jpeg")
def _jpeg(image: Image.Image, buf: io.BytesIO, quality: int) -> None:
    image.save(buf, format="JPEG", quality=int(quality))


@IMAGE_FORMAT_NAMES.register("webp")
def _webp(image: Image.Image, buf: io.BytesIO, quality: int) -> None:
    image.save(buf, format="WEBP", quality=int(quality), method=4)


@IMAGE_FORMAT_NAMES.register("webp_lossless")
def _webp_lossless(image: Image.Image, buf: io.BytesIO, quality: int) -> None:
    # lossless: ``quality`` is the effort (bytes vs time), not fidelity; method 0 is the fastest
    image.save(buf, format="WEBP", lossless=True, quality=int(quality), method=0)


@IMAGE_FORMAT_NAMES.register("zstd")
def _zstd_image(image: Image.Image, buf: io.BytesIO, quality: int) -> None:
    raise AssertionError("zstd images are encoded as arrays (_encode_blob)")


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:  # a declared dependency; only a hand-made environment lacks it
        raise SfrayError("the zstd codec needs the 'zstandard' package: pip install zstandard") from None
    return zstandard


_ZSTD = threading.local()  # one (de)compressor context per thread: contexts are not thread-safe


def zstd_compress(data: bytes) -> bytes:
    if not hasattr(_ZSTD, "c"):
        _ZSTD.c = _zstd().ZstdCompressor(level=ZSTD_LEVEL)
    return _ZSTD.c.compress(data)


def zstd_decompress(data: bytes) -> bytes:
    if not hasattr(_ZSTD, "d"):
        _ZSTD.d = _zstd().ZstdDecompressor()
    return _ZSTD.d.decompress(data)


def _encode_image(arr: np.ndarray, fmt: str, quality: int) -> bytes:
    encoder = IMAGE_FORMAT_NAMES.get(fmt)  # ConfigError naming generate.image_format if unknown
    buf = io.BytesIO()
    encoder(Image.fromarray(arr), buf, quality)
    return buf.getvalue()


def _encode_blob(name: str, value: Any, image_format: str, image_quality: int,
                 array_codec: str = "zlib") -> tuple[str, str, list[int], bytes]:
    """(codec, dtype string, shape, payload) of one array field."""
    arr = _to_numpy(value)
    if name == Field.IMAGE:
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[0] != 3:
            raise SfrayError(f"record field '{name}': expected uint8 (3, H, W), got {arr.dtype} {arr.shape}")
        if image_format == "zstd":
            return "zstd", "|u1", list(arr.shape), zstd_compress(np.ascontiguousarray(arr).tobytes())
        data = _encode_image(np.ascontiguousarray(arr.transpose(1, 2, 0)), image_format, image_quality)
        return image_format, "|u1", list(arr.shape), data
    if name in _LABEL_MAPS:
        if arr.dtype != np.uint8 or arr.ndim != 2:
            raise SfrayError(f"record field '{name}': expected uint8 (H, W) ids, got {arr.dtype} {arr.shape}")
        if array_codec == "zstd":
            return "zstd", "|u1", list(arr.shape), zstd_compress(np.ascontiguousarray(arr).tobytes())
        return "png", "|u1", list(arr.shape), _encode_image(np.ascontiguousarray(arr), "png", 100)
    if name in _BOOL or arr.dtype == np.bool_:
        bits = np.packbits(arr.astype(bool).reshape(-1))
        return "zbits", "|b1", list(arr.shape), zlib.compress(bits.tobytes(), ZLIB_LEVEL)
    if name in _FLOAT16:
        arr = arr.astype("<f2")
    elif name in _FLOAT32:
        arr = arr.astype("<f4")
    elif arr.dtype.kind not in "biuf":
        raise SfrayError(f"record field '{name}': unsupported array dtype {arr.dtype}")
    else:
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    arr = np.ascontiguousarray(arr)
    if array_codec == "zstd":
        return "zstd", arr.dtype.str, list(arr.shape), zstd_compress(arr.tobytes())
    return "zraw", arr.dtype.str, list(arr.shape), zlib.compress(arr.tobytes(), ZLIB_LEVEL)


def encode_record(sample: Mapping[str, Any], *, image_format: str = "png", image_quality: int = 95,
                  array_codec: str = "zlib") -> bytes:
    """Serialise one sample dict (keys from ``Field`` plus extras) into record bytes.

    Array values (numpy or CPU torch) become blobs; scalars, strings and dicts become meta.
    ``sample_id`` is required. Deterministic: identical inputs give identical bytes. The defaults
    write format version 1, byte for byte as before the version-2 codecs existed.
    """
    ARRAY_CODECS.check(array_codec)  # ConfigError naming generate.array_codec
    if Field.SAMPLE_ID not in sample:
        raise SfrayError(f"record needs a '{Field.SAMPLE_ID}' entry")
    meta: dict[str, Any] = {}
    blobs: list[tuple[str, str, str, list[int], bytes]] = []
    for name in sorted(sample):
        value = sample[name]
        is_array = isinstance(value, np.ndarray) or hasattr(value, "detach")
        if name in _ARRAY_FIELDS or is_array and np.ndim(value) > 0:
            codec, dtype, shape, data = _encode_blob(name, value, image_format, image_quality, array_codec)
            blobs.append((name, codec, dtype, shape, data))
        else:
            meta[name] = _json_value(name, value)
    table, offset = [], 0
    for name, codec, dtype, shape, data in blobs:
        table.append([name, codec, dtype, shape, offset, len(data)])
        offset += len(data)
    header = json.dumps({"blobs": table, "meta": meta}, sort_keys=True, separators=(",", ":")).encode("utf-8")
    version = MAX_FORMAT_VERSION if any(b[1] in V2_CODECS for b in blobs) else FORMAT_VERSION
    return b"".join([_PREFIX.pack(MAGIC, version, len(header)), header] + [b[4] for b in blobs])


def read_header(data: bytes | memoryview) -> tuple[dict[str, Any], int]:
    """(header dict, offset of the first blob) without decoding any blob."""
    if len(data) < _PREFIX.size:
        raise AssetError(f"record of {len(data)} bytes is too short to be an sfray record")
    magic, version, hlen = _PREFIX.unpack_from(data, 0)
    if magic != MAGIC:
        raise AssetError(f"not an sfray record (magic {bytes(magic)!r}, expected {MAGIC!r})")
    if version > MAX_FORMAT_VERSION:
        raise AssetError(f"record format version {version} is newer than this sfray "
                         f"({MAX_FORMAT_VERSION}); upgrade sfray")
    start = _PREFIX.size
    if start + hlen > len(data):
        raise AssetError(f"record header of {hlen} bytes runs past the record's {len(data)} bytes (truncated)")
    try:
        header = json.loads(bytes(data[start:start + hlen]).decode("utf-8"))
    except ValueError as exc:  # JSON or UTF-8: a corrupt header
        raise AssetError(f"record header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or not isinstance(header.get("blobs"), list) \
            or not isinstance(header.get("meta"), dict):
        raise AssetError("record header lacks its 'blobs' table or 'meta' entry")
    return header, start + hlen


def _decode_blob(codec: str, dtype: str, shape: list[int], raw: bytes) -> np.ndarray:
    if codec == "zstd":
        return np.frombuffer(zstd_decompress(raw), dtype=np.dtype(dtype)).reshape(shape).copy()
    if codec in PIL_FORMATS:
        arr = np.array(Image.open(io.BytesIO(raw)))  # a writable copy (torch.from_numpy wants one)
        if len(shape) == 3:
            return np.ascontiguousarray(arr.reshape(shape[1], shape[2], shape[0]).transpose(2, 0, 1))
        return arr.reshape(shape)
    if codec == "zbits":
        n = int(np.prod(shape)) if shape else 1
        bits = np.frombuffer(zlib.decompress(raw), dtype=np.uint8)
        return np.unpackbits(bits, count=n).astype(bool).reshape(shape)
    if codec == "zraw":
        return np.frombuffer(zlib.decompress(raw), dtype=np.dtype(dtype)).reshape(shape).copy()
    raise AssetError(f"record blob uses unknown codec '{codec}'; written by a newer sfray?")


def decode_record(data: bytes | memoryview, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """Record bytes -> sample dict (image (3, H, W) uint8, depth float32, masks bool, ...).

    ``fields`` restricts which blobs are decoded (meta is always returned); None decodes all.
    """
    header, base = read_header(data)
    wanted = None if fields is None else set(fields)
    out: dict[str, Any] = dict(header["meta"])
    for name, codec, dtype, shape, offset, length in header["blobs"]:
        if wanted is not None and name not in wanted:
            continue
        try:
            arr = _decode_blob(codec, dtype, shape, bytes(data[base + offset:base + offset + length]))
        except AssetError:
            raise
        except Exception as exc:  # zlib, PIL, numpy: a damaged blob, whatever the codec says
            raise AssetError(f"record of sample {out.get(Field.SAMPLE_ID, '?')}: blob '{name}' ({codec}) does "
                             f"not decode ({type(exc).__name__}: {exc}); run `sfray dataset verify`") from None
        out[name] = arr.astype(np.float32) if name in _FLOAT16 else arr
    return out


def record_checksum(data: bytes | memoryview) -> str:
    """sha256 hex digest of the record bytes (the manifest's ``checksum`` column)."""
    return hashlib.sha256(data).hexdigest()
