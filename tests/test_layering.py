"""sfray's dependency rules (docs/architecture.md).

1. The packages form one-way layers: a module imports only packages of lower layers (or its own
   package). Every import counts: module level, inside functions, ``from sfray import x`` and
   ``importlib.import_module("sfray....")`` with a literal name. A package missing from LAYERS
   fails too, so a new package has to be placed in the order before it can land.
2. Only ``sfray.distributed`` and ``sfray.cli`` import ray.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import sfray

ROOT = Path(__file__).resolve().parents[1]
#: Bottom to top. Each entry may import only entries to its left. The first six are leaves (only
#: devices needs torch, the others nothing heavy); they are ordered too, so the whole graph is a DAG.
LAYERS = (
    "errors", "conventions", "registry", "io", "progress", "devices",
    "config",
    "viz",
    "geometry",
    "head",
    "sampling",
    "generators",
    "annotate",
    "align",
    "data",
    "generation",
    "models",
    "losses",
    "benchmarks",
    "evaluate",
    "train",
    "sweep",
    "pipeline",
    "distributed",
    "cli",
)
ALLOWED_RAY = ("sfray.distributed", "sfray.cli")


def _package_of(path: Path, root: Path) -> str | None:
    """``sfray/geometry/camera.py`` -> ``geometry``; ``sfray/errors.py`` -> ``errors``; the root -> None."""
    parts = path.relative_to(root).with_suffix("").parts
    return None if parts[1:] == ("__init__",) else parts[1]


def _module_name(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported(tree: ast.AST, path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, dotted module) for every sfray module this file imports, anywhere in it."""
    found: list[tuple[int, str]] = []
    here = _module_name(path, root)
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_pkg else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "sfray":  # from sfray import geometry
                found += [(node.lineno, f"sfray.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                arg = arg.values[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((node.lineno, arg.value))
    return [(line, m) for line, m in found if m == "sfray" or m.startswith("sfray.")]


def layer_violations(root: Path, layers: tuple[str, ...] = LAYERS) -> list[str]:
    """Every upward (or unlisted-package) import under ``root`` (a directory holding ``sfray/``)."""
    rank = {name: i for i, name in enumerate(layers)}
    problems: list[str] = []
    for path in sorted((root / "sfray").rglob("*.py")):
        rel = path.relative_to(root)
        pkg = _package_of(path, root)
        if pkg is not None and pkg not in rank:
            problems.append(f"{rel}: package '{pkg}' is not in the layer order")
            continue
        tree = ast.parse(path.read_text(), filename=str(rel))
        for line, module in _imported(tree, path, root):
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else None
            if target is None or target == pkg:
                continue
            if target not in rank:
                problems.append(f"{rel}:{line} imports {module}: "
                                f"package '{target}' is not in the layer order")
            elif pkg is None or rank[target] > rank[pkg]:
                problems.append(f"{rel}:{line} imports {module}: '{pkg or 'sfray'}' may not import "
                                f"the higher layer '{target}'")
    return problems


def test_packages_import_only_lower_layers():
    problems = layer_violations(ROOT)
    assert not problems, "\n".join(problems)


def test_every_existing_package_is_placed():
    root = ROOT / "sfray"
    packages = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    packages |= {p.stem for p in root.glob("*.py") if p.name != "__init__.py"}
    assert packages <= set(LAYERS), packages - set(LAYERS)


@pytest.mark.parametrize("lower, higher", [("data", "generation"), ("viz", "data"), ("annotate", "align"),
                                           ("generators", "annotate"), ("sampling", "generators")])
def test_named_pairs_stay_one_way(lower, higher):
    """The pairs that once formed cycles (or were asked for explicitly) stay one-way."""
    assert LAYERS.index(lower) < LAYERS.index(higher)
    bad = [p for p in layer_violations(ROOT) if f"/{lower}/" in p.split(":")[0] and f"sfray.{higher}" in p]
    assert not bad, bad


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def test_checker_catches_an_injected_upward_import(tmp_path):
    """A function-local upward import, a relative one, ``from sfray import x`` and import_module."""
    root = _tree(tmp_path, {
        "sfray/__init__.py": "",
        "sfray/geometry/__init__.py": "",
        "sfray/geometry/ok.py": "from sfray.config import schema\nfrom sfray.geometry import camera\n",
        "sfray/geometry/bad.py": "def f():\n    from sfray.generation.run import run_generation\n",
        "sfray/geometry/rel.py": "from ..annotate import annotator\n",
        "sfray/geometry/pkg.py": "from sfray import data\n",
        "sfray/geometry/dyn.py": "import importlib\nimportlib.import_module(f'sfray.cli.{1}')\n",
        "sfray/config/__init__.py": "", "sfray/generation/__init__.py": "", "sfray/annotate/__init__.py": "",
        "sfray/data/__init__.py": "", "sfray/cli/__init__.py": "",
    })
    problems = layer_violations(root)
    text = "\n".join(problems)
    assert "sfray/geometry/bad.py:2 imports sfray.generation.run" in text
    assert "sfray/geometry/rel.py:1 imports sfray.annotate" in text
    assert "sfray/geometry/pkg.py:1 imports sfray.data" in text
    assert "sfray/geometry/dyn.py:2 imports sfray.cli." in text
    assert not any("ok.py" in p for p in problems)
    assert len(problems) == 4


def test_checker_refuses_an_unlisted_package(tmp_path):
    root = _tree(tmp_path, {"sfray/__init__.py": "", "sfray/extras/__init__.py": "",
                            "sfray/geometry/__init__.py": "from sfray.extras import x\n"})
    problems = layer_violations(root)
    assert any("'extras' is not in the layer order" in p for p in problems)
    assert any("sfray/geometry/__init__.py:1 imports sfray.extras" in p for p in problems)


def _library_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(sfray.__path__, prefix="sfray."):
        if not info.name.startswith(ALLOWED_RAY):
            names.append(info.name)
    return names


def test_library_modules_import_without_ray():
    modules = _library_modules()
    assert "sfray.conventions" in modules
    code = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.'):\n"
        "            raise ImportError('ray is forbidden outside sfray.distributed: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print('ok', len(sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_block_actually_blocks_ray():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import ray\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "blocked" in proc.stderr
