"""The recorded rows of ``record_fixture.json``, for tests that run the fixture's config another way."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURE = Path(__file__).with_name("record_fixture.json")
KEYS = ("sample_id", "shard", "key", "checksum", "nbytes", "status")


def fixture() -> dict:
    return json.loads(FIXTURE.read_text())


def expected_rows() -> list[dict] | None:
    """The recorded rows, or None when torch, numpy or pillow differ in major.minor from the
    versions the fixture was recorded with (their numerics and PNG encoder change bytes)."""
    import numpy
    import PIL
    import torch

    now = {"torch": torch.__version__, "numpy": numpy.__version__, "pillow": PIL.__version__}
    same = all(v.split("+")[0].split(".")[:2] == now[k].split("+")[0].split(".")[:2]
               for k, v in fixture()["versions"].items())
    return fixture()["rows"] if same else None


def manifest_rows(dataset_dir: str | Path) -> list[dict]:
    from sfray.data.manifest import Manifest

    return [{k: r[k] for k in KEYS} for r in Manifest.load(dataset_dir).rows()]
