"""Record codecs: every image format x array codec round-trips, versions, and old records still decode."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from synth_records import random_sample

from sfray.config.registries import ARRAY_CODECS, IMAGE_FORMATS
from sfray.conventions import Field
from sfray.data.manifest import Manifest
from sfray.data.record import decode_record, encode_record, read_header
from sfray.data.shard import write_shard
from sfray.errors import AssetError, ConfigError

LOSSLESS = ("png", "webp_lossless", "zstd")


@pytest.mark.parametrize("array_codec", ARRAY_CODECS.names())
@pytest.mark.parametrize("image_format", IMAGE_FORMATS.names())
def test_every_codec_round_trips(image_format, array_codec):
    sample = random_sample(3, size=40)
    blob = encode_record(sample, image_format=image_format, array_codec=array_codec)
    assert blob == encode_record(sample, image_format=image_format, array_codec=array_codec)  # deterministic
    back = decode_record(blob)
    header, _ = read_header(blob)
    codecs = {name: codec for name, codec, *_ in header["blobs"]}
    assert codecs[Field.IMAGE] == image_format
    assert codecs[Field.SEGMENTATION] == ("zstd" if array_codec == "zstd" else "png")
    assert codecs[Field.DEPTH] == ("zstd" if array_codec == "zstd" else "zraw")
    assert back[Field.IMAGE].shape == (3, 40, 40) and back[Field.IMAGE].dtype == np.uint8
    if image_format in LOSSLESS:
        assert np.array_equal(back[Field.IMAGE], sample[Field.IMAGE])
    else:
        assert np.abs(back[Field.IMAGE].astype(int) - sample[Field.IMAGE]).mean() < 8
    assert np.array_equal(back[Field.SEGMENTATION], sample[Field.SEGMENTATION])
    assert np.array_equal(back[Field.DEPTH], sample[Field.DEPTH].astype(np.float16).astype(np.float32))
    assert np.array_equal(back[Field.MASK], sample[Field.MASK])
    for key in (Field.LANDMARKS_2D, Field.CAMERA, Field.LATENT):
        assert np.array_equal(back[key], sample[key])
    assert back[Field.QUALITY] == sample[Field.QUALITY]
    version = struct.unpack_from("<H", blob, 4)[0]
    new_codec = image_format in ("webp_lossless", "zstd") or array_codec == "zstd"
    assert version == (2 if new_codec else 1)


def test_unknown_array_codec_names_the_config_key():
    with pytest.raises(ConfigError, match="generate.array_codec"):
        encode_record(random_sample(0), array_codec="lz4")


def test_newer_versions_are_refused_with_an_upgrade_hint():
    blob = bytearray(encode_record(random_sample(0), image_format="zstd"))
    struct.pack_into("<H", blob, 4, 3)
    with pytest.raises(AssetError, match="upgrade sfray"):
        decode_record(bytes(blob))


def _hand_made_v1_record(sample: dict) -> bytes:
    """A version-1 record built from the documented layout alone (docs/dataset.md), not the encoder:
    PNG image and label map, float16 zlib depth, packed-bit mask."""
    img = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(sample[Field.IMAGE].transpose(1, 2, 0))).save(img, format="PNG")
    seg = io.BytesIO()
    Image.fromarray(sample[Field.SEGMENTATION]).save(seg, format="PNG", compress_level=9)
    h, w = sample[Field.MASK].shape
    blobs = [
        (Field.DEPTH, "zraw", "<f2", [h, w], zlib.compress(sample[Field.DEPTH].astype("<f2").tobytes(), 1)),
        (Field.IMAGE, "png", "|u1", [3, h, w], img.getvalue()),
        (Field.MASK, "zbits", "|b1", [h, w], zlib.compress(np.packbits(sample[Field.MASK].reshape(-1)).tobytes())),
        (Field.SEGMENTATION, "png", "|u1", [h, w], seg.getvalue()),
    ]
    table, offset = [], 0
    for name, codec, dtype, shape, data in blobs:
        table.append([name, codec, dtype, shape, offset, len(data)])
        offset += len(data)
    header = json.dumps({"blobs": table, "meta": {Field.SAMPLE_ID: 7, Field.GENERATOR: "old"}}).encode()
    return b"SFRY" + struct.pack("<HI", 1, len(header)) + header + b"".join(b[4] for b in blobs)


def test_old_records_still_decode():
    sample = random_sample(7, size=24)
    back = decode_record(_hand_made_v1_record(sample))
    assert back[Field.SAMPLE_ID] == 7 and back[Field.GENERATOR] == "old"
    assert np.array_equal(back[Field.IMAGE], sample[Field.IMAGE])
    assert np.array_equal(back[Field.SEGMENTATION], sample[Field.SEGMENTATION])
    assert np.array_equal(back[Field.MASK], sample[Field.MASK])
    assert np.array_equal(back[Field.DEPTH], sample[Field.DEPTH].astype(np.float16).astype(np.float32))


def test_export_of_a_zstd_dataset_still_writes_png(tmp_path):
    from sfray.data.export import export_facesynthetics_layout

    root = tmp_path / "ds"
    samples = {i: random_sample(i, size=32) for i in range(3)}
    receipt = write_shard(root, [(i, encode_record(s, image_format="zstd", array_codec="zstd"))
                                 for i, s in samples.items()])
    Manifest.commit(root, [receipt])
    out = tmp_path / "export"
    assert export_facesynthetics_layout(root, out) == 3
    for i, s in samples.items():
        with Image.open(out / f"{i:06d}.png") as im:
            assert im.format == "PNG"
            assert np.array_equal(np.array(im).transpose(2, 0, 1), s[Field.IMAGE])
