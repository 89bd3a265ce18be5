"""Helpers shared by the bench scripts: machine description and appending rows to docs/benchmarks.md.

Rows go at the end of a section's table (the section and its header are created when missing),
so a script run on a GPU node lands next to the CPU rows of the same benchmark. Writes are atomic.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HEADER = ["| run | machine | date | command | result | baseline |", "|---|---|---|---|---|---|"]


def machine(device: torch.device | str) -> str:
    """One-line description: GPU name, or CPU architecture and core count, plus torch."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"{platform.machine()} {os.cpu_count()} cpu, torch {torch.__version__}"


def today() -> str:
    return datetime.date.today().isoformat()


def command(script: str, argv: list[str]) -> str:
    """The command line that produced the rows, without the --append option."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--append":
            skip = True
            continue
        if not a.startswith("--append="):
            out.append(a)
    return " ".join(["python", script, *out])


def append_rows(path: Path, section: str, lines: list[str], header: list[str] | None = None) -> None:
    """Insert ``lines`` at the end of the first table under ``section`` in ``path``."""
    from sfray.io.atomic import atomic_write_text

    text = path.read_text().splitlines() if path.exists() else ["# Benchmarks"]
    if section not in text:
        text += ["", section, "", *(header or HEADER)]
    i = text.index(section) + 1
    while i < len(text) and not text[i].startswith(("|", "## ")):
        i += 1
    if i >= len(text) or not text[i].startswith("|"):  # a section without a table: start one
        text[i:i] = ["", *(header or HEADER)]
        i += 1
    while i < len(text) and text[i].startswith("|"):
        i += 1
    text[i:i] = lines
    atomic_write_text(path, "\n".join(text) + "\n")
