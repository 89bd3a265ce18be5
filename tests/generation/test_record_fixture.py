"""Byte-identical records: a small run must reproduce the committed fixture checksum for checksum.

The fixture (``record_fixture.json``) was recorded before the package was restructured; any later
change that alters a record's bytes (sampling, rendering, annotation, encoding, shard naming)
fails here. Records are a pure function of (seed, sample id, config) for fixed library versions,
so the test is skipped, with the reason, when torch, numpy or pillow differ in major.minor from the
versions the fixture was recorded with (their numerics and PNG encoder legitimately change bytes).

Regenerate (only after a deliberate format or numerics change):
``python tests/generation/test_record_fixture.py --write``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).with_name("record_fixture.json")
#: The run: procedural defaults, 16 samples at 64x64, two shards of 8, batches of 4.
OVERRIDES = ["seed=7", "generate.num_samples=16", "generate.resolution=64", "generate.batch_size=4",
             "generate.samples_per_shard=8"]


def _versions() -> dict[str, str]:
    import numpy
    import PIL
    import torch

    return {"torch": torch.__version__, "numpy": numpy.__version__, "pillow": PIL.__version__}


def _major_minor(v: str) -> str:
    return ".".join(v.split("+")[0].split(".")[:2])


def produce_manifest(out: Path) -> list[dict]:
    """Run the in-process producer over the planned units, write shards, commit; manifest rows."""
    from sfray.config.loader import load_config
    from sfray.config.schema import GenerateJobConfig
    from sfray.data.manifest import Manifest
    from sfray.data.shard import write_shard
    from sfray.generation.plan import plan_units
    from sfray.generation.producer import SampleProducer

    cfg = load_config(GenerateJobConfig, None, [f"output_dir={out}", *OVERRIDES])
    producer = SampleProducer(cfg, device="cpu")
    for unit in plan_units(cfg.generate.num_samples, cfg.generate.samples_per_shard):
        produced = producer.produce(unit.sample_ids)
        assert all(p.record for p in produced), "the default quality policy keeps every sample"
        receipt = write_shard(out, [(p.sample_id, p.record) for p in produced])
        Manifest.commit(out, [receipt])
    rows = Manifest.load(out).rows()
    return [{k: r[k] for k in ("sample_id", "shard", "key", "checksum", "nbytes", "status")} for r in rows]


def test_records_match_the_fixture(tmp_path):
    fixture = json.loads(FIXTURE.read_text())
    now = _versions()
    for lib, recorded in fixture["versions"].items():
        if _major_minor(recorded) != _major_minor(now[lib]):
            pytest.skip(f"fixture recorded with {lib} {recorded}, running {now[lib]}")
    rows = produce_manifest(tmp_path / "ds")
    assert [r["sample_id"] for r in rows] == list(range(16))
    assert rows == fixture["rows"]


if __name__ == "__main__":  # pragma: no cover - regenerates the fixture
    if "--write" not in sys.argv:
        sys.exit("usage: python tests/generation/test_record_fixture.py --write")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = produce_manifest(Path(tmp) / "ds")
    FIXTURE.write_text(json.dumps({"overrides": OVERRIDES, "versions": _versions(), "rows": rows},
                                  indent=1) + "\n")
    print(f"wrote {FIXTURE} ({len(rows)} rows)")
