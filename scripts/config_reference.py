"""Write docs/config-reference.md from the structured configs (every ``*JobConfig`` in sfray/config).

    python scripts/config_reference.py            # rewrite docs/config-reference.md
    python scripts/config_reference.py --check    # exit 1 when the committed file is stale

Each key is listed with its type, its default and the comment written beside it in the schema, so
the reference cannot drift from the code: a test regenerates it and compares.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import io
import pkgutil
import sys
import textwrap
import tokenize
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "config-reference.md"
COMMAND = "python scripts/config_reference.py"
#: Modules listed first, in this order (the jobs in the order a user meets them); the rest follow by name.
FIRST = ("schema", "train", "finetune", "evaluate", "sweep", "pipeline")


def job_configs() -> list[type]:
    """Every dataclass named ``*JobConfig`` defined in a module of ``sfray.config``, in module order."""
    import sfray.config as pkg

    found: list[type] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: (m.name not in FIRST, FIRST.index(m.name)
                                                                          if m.name in FIRST else 0, m.name)):
        module = importlib.import_module(f"sfray.config.{info.name}")
        for name, obj in vars(module).items():
            if (name.endswith("JobConfig") and inspect.isclass(obj) and dataclasses.is_dataclass(obj)
                    and obj.__module__ == module.__name__):
                found.append(obj)
    return found


def _field_comments(cls: type) -> dict[str, str]:
    """{field: the ``# comment`` on its line} for the fields ``cls`` itself declares."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    body = ast.parse(source).body[0]
    out: dict[str, str] = {}
    for node in getattr(body, "body", []):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = comments.get(node.end_lineno or node.lineno) or comments.get(node.lineno)
            if text:
                out[node.target.id] = text
    return out


def _comment(cls: type, name: str) -> str:
    for klass in cls.__mro__:
        if name in getattr(klass, "__annotations__", {}):
            text = _field_comments(klass).get(name)
            if text:
                return text
    return ""


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return "(required)"


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"' if value else '""'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v).strip('"') for v in value) + "]"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def rows(cls: type, prefix: str = "", instance: Any = None) -> list[tuple[str, str, str, str]]:
    """(key, type, default, comment) for every leaf key of ``cls``, sections flattened with dots.
    ``instance`` is the section's default object when its owner sets values other than the class's."""
    out: list[tuple[str, str, str, str]] = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        default = getattr(instance, f.name) if instance is not None else _default(f)
        if dataclasses.is_dataclass(default):
            out += rows(type(default), f"{key}.", default)
            continue
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        out.append((key, str(kind), _show(default), _comment(cls, f.name)))
    return out


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        f"Generated from the structured configs in `sfray/config/` by `{COMMAND}`; do not edit by hand",
        "(a test fails when this file is stale). Every command takes a config YAML (`configs/<job>/*.yaml`) and",
        "dotlist overrides (`key.sub=value`); the YAML and the overrides change only the keys they name, the",
        "rest keep the defaults below. Lists are written `[a,b]` on the command line.",
        "",
    ]
    for cls in job_configs():
        module = sys.modules[cls.__module__]
        doc = " ".join((cls.__doc__ or "").split())
        lines += [f"## {cls.__name__}", "", f"{doc} Schema: `{Path(module.__file__).relative_to(ROOT)}`.", "",
                  "| key | type | default | meaning |", "|---|---|---|---|"]
        lines += [f"| `{k}` | `{_cell(t)}` | `{_cell(d)}` | {_cell(c)} |" for k, t, d, c in rows(cls)]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/config-reference.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    sys.path.insert(0, str(ROOT))
    from sfray.io.atomic import atomic_write_text

    atomic_write_text(OUTPUT, text)
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
