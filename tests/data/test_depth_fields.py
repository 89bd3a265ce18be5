"""The two depth maps of a record (the mesh's and the generator's), their sources and units, and
datasets written before the generator's depth was stored (docs/dataset.md)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sfray.cli import main
from sfray.conventions import WORLD_UNITS_PER_METRE, DepthKind, DepthSource, Field
from sfray.data.depth import RELATIVE_UNIT, WORLD_UNIT, depth_maps
from sfray.data.export import DEPTH_PNG_SOURCE
from sfray.data.manifest import Manifest
from sfray.data.record import decode_record
from sfray.data.shard import write_shard
from sfray.data.torch_dataset import SfrayDataset
from sfray.data.verify import verify_dataset

LEGACY = Path(__file__).with_name("legacy_records_v1.json")


def _produce(overrides: list[str], ids=(0, 1)) -> list[dict]:
    from sfray.config.loader import load_config
    from sfray.config.schema import GenerateJobConfig
    from sfray.generation.producer import SampleProducer

    cfg = load_config(GenerateJobConfig, None, ["seed=5", "generate.resolution=64", *overrides])
    return [decode_record(p.record) for p in SampleProducer(cfg, device="cpu").produce(np.asarray(ids))]


def test_procedural_records_hold_both_depths_in_world_units():
    """``depth``: the mesh z-buffer; ``generator_depth``: the renderer's own, hair cap included."""
    rec = _produce(["generator.procedural.hair_cap_prob=1.0"])[0]
    maps = depth_maps(rec)
    mesh, gen = maps[Field.DEPTH], maps[Field.GENERATOR_DEPTH]
    assert (mesh.source, gen.source) == (DepthSource.MESH, DepthSource.RASTER)
    assert mesh.unit == gen.unit == WORLD_UNIT and mesh.values.shape == gen.values.shape == (64, 64)
    # world units: a visible landmark's camera z is the mesh depth at its pixel (within a pixel's slope)
    lm, z = rec[Field.LANDMARKS_2D], rec[Field.LANDMARKS_3D][:, 2]
    vis = rec[Field.LANDMARKS_VISIBLE] & mesh.mask[lm[:, 1].astype(int).clip(0, 63), lm[:, 0].astype(int).clip(0, 63)]
    at = mesh.values[lm[vis, 1].astype(int), lm[vis, 0].astype(int)]
    assert np.median(np.abs(at - z[vis])) < 0.01 and 2.0 < float(np.median(at)) < 3.0
    np.testing.assert_allclose(mesh.metres(), mesh.values / WORLD_UNITS_PER_METRE)
    # the hair cap: covered by the generator, not by the mesh, and in front of the mesh on the scalp
    assert (gen.mask & ~mesh.mask).sum() > 20
    both = gen.mask & mesh.mask & (rec[Field.GENERATOR_MASK] == 1.0)
    assert float(np.median(np.abs(gen.values[both] - mesh.values[both]))) < 1e-3
    assert (gen.values[both] < mesh.values[both] - 0.005).sum() > 10


def test_next3d_records_store_volume_depth_at_its_native_resolution():
    rec = _produce(["generator.kind=next3d", "generator.next3d.checkpoint=random-small", "generate.resolution=32"],
                   ids=(0,))[0]
    gen = depth_maps(rec)[Field.GENERATOR_DEPTH]
    assert gen.source == DepthSource.VOLUME and gen.kind == DepthKind.METRIC
    assert gen.values.shape == rec[Field.GENERATOR_MASK].shape != rec[Field.DEPTH].shape  # the ray grid
    assert np.isfinite(gen.values).all() and gen.values.max() > 0


def _legacy_records() -> list[tuple[int, bytes]]:
    data = json.loads(LEGACY.read_text())
    out = []
    for r in data["records"]:
        raw = base64.b64decode(r["base64"])
        assert hashlib.sha256(raw).hexdigest() == r["sha256"]  # the pinned bytes, untouched
        out.append((int(r["sample_id"]), raw))
    return out


def test_records_written_before_the_generator_depth_still_read_verify_and_export(tmp_path):
    root = tmp_path / "old"
    Manifest.commit(root, [write_shard(root, _legacy_records())])
    assert verify_dataset(root).ok
    ds = SfrayDataset(root, with_meta=True)
    assert len(ds) == 2
    rec = {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in ds[1].items()}
    assert Field.GENERATOR_DEPTH not in rec and Field.DEPTH_SOURCE not in rec
    maps = depth_maps(rec)
    assert list(maps) == [Field.DEPTH] and maps[Field.DEPTH].source == DepthSource.MESH
    assert maps[Field.DEPTH].unit == WORLD_UNIT and maps[Field.DEPTH].values.shape == (32, 32)
    # the authors' layout falls back to the record's own depth and says so
    out = tmp_path / "authors"
    assert main(["dataset", "export", str(root), "--layout", "synthforge", "--out", str(out)]) == 0
    ann = json.loads((out / "annotations" / "00001.json").read_text())
    assert ann[DEPTH_PNG_SOURCE] == DepthSource.MESH and ann[Field.DEPTH_SOURCE] == DepthSource.MESH
    assert Field.GENERATOR_DEPTH_SOURCE not in ann
    png = np.asarray(Image.open(out / "depth" / "00001.png"))
    assert png.shape == (32, 32) and (png[~maps[Field.DEPTH].mask] == 255).all()


@pytest.mark.parametrize("declared", [False, True])
def test_an_old_dataset_resumed_with_records_that_carry_the_generator_depth_still_verifies(tmp_path, declared):
    """Old records first (with or without a dataset.yaml declaring their format), new ones after."""
    from sfray.data.dataset_yaml import update_dataset_yaml
    from sfray.data.record import encode_record, read_header
    from sfray.data.record_format import record_format

    root = tmp_path / "old"
    old = _legacy_records()
    Manifest.commit(root, [write_shard(root, old)])
    if declared:
        update_dataset_yaml(root, record_format=record_format(read_header(old[0][1])[0]))
    new = _produce(["generate.resolution=32"], ids=(2,))[0]
    assert Field.GENERATOR_DEPTH in new
    Manifest.commit(root, [write_shard(root, [(2, encode_record(new))])])
    report = verify_dataset(root)
    assert report.ok, report.problems
    assert len(SfrayDataset(root)) == 3


def test_authors_layout_exports_the_generator_depth_and_reimports_both(tmp_path):
    root = tmp_path / "ds"
    recs = _produce(["generator.procedural.hair_cap_prob=1.0"], ids=(0,))
    from sfray.data.record import encode_record

    Manifest.commit(root, [write_shard(root, [(0, encode_record(recs[0]))])])
    out, back = tmp_path / "authors", tmp_path / "back"
    assert main(["dataset", "export", str(root), "--layout", "synthforge", "--out", str(out)]) == 0
    ann = json.loads((out / "annotations" / "00000.json").read_text())
    assert ann[DEPTH_PNG_SOURCE] == DepthSource.RASTER and ann[Field.GENERATOR_DEPTH_SOURCE] == DepthSource.RASTER
    png = np.asarray(Image.open(out / "depth" / "00000.png"))
    gen_mask = recs[0][Field.GENERATOR_MASK] >= 0.5
    assert (png[~gen_mask] == 255).all() and png[gen_mask].min() == 0
    assert (gen_mask & ~recs[0][Field.MASK]).any()  # the PNG shows the hair cap the mesh lacks
    with np.load(out / "depth_metric" / "00000.npz") as z:
        assert set(z.files) == {"depth", "mask", Field.GENERATOR_DEPTH, Field.GENERATOR_MASK}
    assert main(["dataset", "import", "--layout", "synthforge", str(out), "--out", str(back)]) == 0
    got = {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in SfrayDataset(back, with_meta=True)[0].items()}
    for name in (Field.DEPTH, Field.GENERATOR_DEPTH, Field.GENERATOR_MASK):
        np.testing.assert_array_equal(got[name], recs[0][name])
    assert got[Field.GENERATOR_DEPTH_SOURCE] == DepthSource.RASTER and got[Field.DEPTH_SOURCE] == DepthSource.MESH


def test_relative_depth_has_no_metric_scale():
    maps = depth_maps({Field.DEPTH: np.full((4, 4), 0.5, np.float32), Field.DEPTH_KIND: DepthKind.RELATIVE})
    assert maps[Field.DEPTH].unit == RELATIVE_UNIT
    with pytest.raises(ValueError, match="relative"):
        maps[Field.DEPTH].metres()
