"""Record container: round trips, determinism, checksums, version checks."""

from __future__ import annotations

import copy
import struct

import numpy as np
import pytest
import torch
from synth_records import random_sample

from sfray.conventions import Field
from sfray.data.record import (
    IMAGE_FORMATS,
    MAX_FORMAT_VERSION,
    decode_record,
    encode_record,
    read_header,
    record_checksum,
)
from sfray.errors import AssetError, SfrayError


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_round_trip_every_field(fmt):
    s = random_sample(3, size=48)
    out = decode_record(encode_record(s, image_format=fmt, image_quality=90))
    assert set(out) == set(s)
    if fmt == "png":
        assert np.array_equal(out[Field.IMAGE], s[Field.IMAGE])
    else:  # lossy, but close on a smooth image
        err = np.abs(out[Field.IMAGE].astype(int) - s[Field.IMAGE].astype(int)).mean()
        assert out[Field.IMAGE].shape == (3, 48, 48) and out[Field.IMAGE].dtype == np.uint8 and err < 6
    assert np.array_equal(out[Field.SEGMENTATION], s[Field.SEGMENTATION])
    assert out[Field.DEPTH].dtype == np.float32
    assert np.array_equal(out[Field.DEPTH], s[Field.DEPTH].astype(np.float16).astype(np.float32))
    assert np.allclose(out[Field.DEPTH], s[Field.DEPTH], rtol=1e-3)
    for name in (Field.MASK, Field.LANDMARKS_VISIBLE):
        assert out[name].dtype == np.bool_ and np.array_equal(out[name], s[name])
    for name in (Field.LANDMARKS_2D, Field.LANDMARKS_3D, Field.CAMERA, Field.SHAPE, Field.EXPRESSION,
                 Field.POSE, Field.LATENT):
        assert out[name].dtype == np.float32 and np.array_equal(out[name], s[name]), name
    for name in (Field.SAMPLE_ID, Field.SEED, Field.GENERATOR, Field.QUALITY):
        assert out[name] == s[name], name


def test_identical_inputs_give_identical_bytes():
    s = random_sample(5)
    a = encode_record(s, image_format="webp", image_quality=80)
    b = encode_record(copy.deepcopy(s), image_format="webp", image_quality=80)
    reordered = dict(reversed(list(s.items())))
    assert a == b == encode_record(reordered, image_format="webp", image_quality=80)
    as_torch = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in s.items()}
    assert encode_record(as_torch, image_format="webp", image_quality=80) == a
    assert encode_record(random_sample(6), image_format="webp", image_quality=80) != a


def test_checksum_changes_with_one_byte():
    data = bytearray(encode_record(random_sample(1)))
    before = record_checksum(bytes(data))
    data[len(data) // 2] ^= 0x01
    assert record_checksum(bytes(data)) != before
    assert len(before) == 64


def test_partial_decode_and_extras():
    s = random_sample(2)
    s["fan_kps"] = np.arange(6, dtype=np.float64).reshape(3, 2)
    s["depth_kind"] = "relative"
    blob = encode_record(s)
    part = decode_record(blob, fields=[Field.CAMERA])
    assert Field.CAMERA in part and Field.IMAGE not in part and part["depth_kind"] == "relative"
    full = decode_record(blob)
    assert full["fan_kps"].dtype == np.float64 and np.array_equal(full["fan_kps"], s["fan_kps"])


def test_bad_inputs_and_versions():
    with pytest.raises(AssetError, match="not an sfray record"):
        decode_record(b"PNG\x00" + b"\x00" * 16)
    blob = bytearray(encode_record(random_sample(0)))
    struct.pack_into("<H", blob, 4, MAX_FORMAT_VERSION + 1)
    with pytest.raises(AssetError, match="newer"):
        read_header(bytes(blob))
    with pytest.raises(SfrayError, match="image"):
        encode_record({Field.SAMPLE_ID: 0, Field.IMAGE: np.zeros((8, 8, 3), np.uint8)})
    with pytest.raises(SfrayError, match="sample_id"):
        encode_record({Field.SEED: 1})
    with pytest.raises(SfrayError, match="image_format"):
        encode_record(random_sample(0), image_format="gif")
