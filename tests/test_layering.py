"""The dependency rule of DESIGN.md §3: only sfray.distributed (and jobs/, the CLI) import ray."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import sfray

ALLOWED_RAY = ("sfray.distributed", "sfray.cli")


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
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
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
