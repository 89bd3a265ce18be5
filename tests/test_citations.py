"""The code and docs cite only documents inside the repository, and those documents exist.

A user of the package has the repository, nothing else: a citation of a planning document, a
reference note or a tracker issue is a dead end for them. Every fact the code relies on lives in
``docs/*.md`` (docs/conventions.md, docs/next3d.md, docs/synthforge.md, ...), and a cited
``docs/<page>.md §<section>`` must exist.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("sfray", "tests", "bench", "jobs", "configs", "docs", "cluster", "scripts", "README.md",
           "Dockerfile", "pyproject.toml", ".ci")
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".sh", ".toml", ".txt", ""}
#: Documents outside the repository (and tracker issues), however they are spelled.
OUTSIDE = re.compile(r"SYNTHFORGE\.md|SYNTHFORGE\s*§|\bSPEC(\.md)?\s*(§|table)|RAY\.md"
                     r"|DESIGN(\.md)?\s*§|DESIGN\.md|STYLE\.md|HELPERS\.md|shared/(reference|next3d)"
                     r"|\bissues?\s+#?\d+")
CITED = re.compile(r"docs/([\w-]+\.md)(?:\s*§\s*(\d+(?:\.\d+)?))?")


def _files() -> list[Path]:
    out: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out += [p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES
                    and "__pycache__" not in p.parts and p != Path(__file__).resolve()]
    return out


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        return ""


def test_nothing_cites_a_document_outside_the_repository():
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()[:100]}" for p in _files()
            for i, line in enumerate(_text(p).splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, "\n".join(hits)


def test_the_pattern_catches_outside_citations():
    for bad in ("see SYNTHFORGE.md §1.2", "(SPEC §2.4)", "RAY.md §B2", "DESIGN.md §4", "DESIGN §5",
                "fixed in issue 11", "issue #7", "shared/next3d/SPEC.md", "SPEC table 1.4"):
        assert OUTSIDE.search(bad), bad
    for good in ("docs/next3d.md §2.4", "docs/conventions.md", "MESH_TO_WORLD_SYNTHFORGE", "a design issue"):
        assert not OUTSIDE.search(good), good


def _sections(page: Path) -> set[str]:
    """Section numbers of a page's headings: '## 2. Forward pass' -> '2', '### 2.4 Views' -> '2.4'."""
    return {m.group(1) for m in re.finditer(r"^#+\s+(\d+(?:\.\d+)?)[.\s]", _text(page), flags=re.M)}


def test_cited_docs_and_sections_exist():
    missing = []
    for path in _files():
        for page, section in CITED.findall(_text(path)):
            target = ROOT / "docs" / page
            if not target.is_file():
                missing.append(f"{path.relative_to(ROOT)} cites docs/{page}, which does not exist")
            elif section and section not in _sections(target):
                missing.append(f"{path.relative_to(ROOT)} cites docs/{page} §{section}, "
                               "which has no such section")
    assert not missing, "\n".join(sorted(set(missing)))
