"""Test modules outside packages must have distinct file names.

pytest's default import mode puts each test folder on ``sys.path`` and imports
the module by its bare name, so two ``test_run.py`` files in different folders
collide and abort collection on a clean checkout (a warm ``__pycache__`` can
hide it locally).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _in_package(path: Path) -> bool:
    return (path.parent / "__init__.py").exists()


def test_test_module_names_are_unique():
    seen: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        if "__pycache__" in path.parts or _in_package(path):
            continue
        seen[path.stem].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, f"rename one of each: {clashes}"
