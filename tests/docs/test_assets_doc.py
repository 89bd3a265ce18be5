"""docs/assets.md stays true to the code: every config key it names exists in the generation
schema, and every asset path the cluster commands use is one it tells the user to create."""

from __future__ import annotations

import re

from omegaconf import OmegaConf

from sfray.config import GenerateJobConfig
from tests.cluster.cluster_files import DOCS, ROOT, code_blocks, documented_submissions, of_kind

ASSETS_DOC = ROOT / "docs" / "assets.md"
#: Sections of the generation config a key in the doc can start with.
SECTIONS = ("head", "generator", "annotate", "quality", "sampling", "camera", "generate", "ray")
KEY_RE = re.compile(rf"(?<![\w/.-])((?:{'|'.join(SECTIONS)})\.[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)")
_ABSENT = object()


def _code_text(markdown: str) -> str:
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M))
    return "\n".join([*inline, *code_blocks(markdown)])


def test_every_key_in_the_assets_doc_exists_in_the_schema():
    keys = set(KEY_RE.findall(_code_text(ASSETS_DOC.read_text())))
    assert {"head.path", "head.masks", "generator.next3d.checkpoint"} <= keys, sorted(keys)
    schema = OmegaConf.structured(GenerateJobConfig)
    missing = sorted(k for k in keys if OmegaConf.select(schema, k, default=_ABSENT) is _ABSENT)
    assert not missing, f"docs/assets.md names config keys the schema does not have: {missing}"


def test_key_finder_sees_keys_and_skips_file_names():
    text = "`jobs/generate.py` `head_template.obj` `head.path=/x` `generator.device` `next3d.safetensors`"
    assert set(KEY_RE.findall(text)) == {"head.path", "generator.device"}


def test_cluster_commands_use_the_asset_layout_the_doc_describes():
    entries = [job["spec"]["entrypoint"] for _name, job in of_kind("RayJob")]
    entries += documented_submissions(DOCS.read_text())
    used = {p for e in entries for p in re.findall(r"/mnt/sfray/assets/\S+", e)}
    assert used, "no cluster command uses an asset path"
    layout = code_blocks(ASSETS_DOC.read_text())[0]
    assert layout.startswith("/mnt/sfray/assets/"), "the first code block of docs/assets.md is the layout"
    described = {f"/mnt/sfray/assets/{rel}" for rel in re.findall(r"^\s*(\S+/\S+)", layout, flags=re.M)}
    assert used <= described, f"paths used by cluster commands but absent from docs/assets.md: {used - described}"
