"""Readers for the files the cluster tests check: pyproject pins, the Dockerfile, cluster configs,
and the documented job entrypoint form ``python jobs/X.py CONFIG [key=value ...]``.

Written from the formats themselves (TOML, Dockerfile instructions, YAML), not from sfray code, so
that the tests stay independent of what they check.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
LAUNCHER_FILES = (CLUSTER / "aws.yaml", CLUSTER / "gcp.yaml")
KUBERAY_DIR = CLUSTER / "kuberay"
DOCS = ROOT / "docs" / "cluster.md"

#: Where every node mounts the shared storage (assets, datasets, checkpoints).
SHARED_MOUNT = "/mnt/sfray"

#: Every job entrypoint of the project (``jobs/<name>.py``), as documented.
JOB_NAMES = ("generate", "train_stage1", "finetune", "evaluate", "sweep", "pipeline")
#: The RayJob manifests and the job each one runs.
RAYJOB_FILES = {"rayjob-generate.yaml": "generate", "rayjob-train.yaml": "train_stage1",
                "rayjob-sweep.yaml": "sweep"}

#: rayproject/ray tags with an explicit Python and CUDA build, e.g. 2.60.0-py311-cu128.
BASE_TAG_RE = re.compile(r"^(?P<ray>\d+\.\d+\.\d+)-py(?P<py>3\d{1,2})-cu(?P<cuda>\d{3,4})$")
#: A dotlist override: key.sub=value (the value may not be empty).
OVERRIDE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*=\S+$")
#: Characters a shell would interpret: an entrypoint must not need quoting.
SHELL_META = set("'\"`$\\;&|<>()[]*?{}~#!")
#: Values the user must replace before launching (docs/cluster.md lists each one).
PLACEHOLDER_RE = re.compile(r"REPLACE_ME_[A-Z0-9_]+|registry\.example\.com")


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def ray_pin() -> str:
    """The exact Ray version pinned in pyproject.toml (``ray[...]==X.Y.Z``)."""
    pins = [d for d in pyproject()["project"]["dependencies"] if re.match(r"^ray(\[[^\]]*\])?\s*==", d)]
    assert len(pins) == 1, f"expected one exact ray pin in pyproject.toml, got {pins}"
    return pins[0].split("==", 1)[1].strip()


def sfray_version() -> str:
    return pyproject()["project"]["version"]


def dockerfile_instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, comments dropped and ``\\`` continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, f"{path}: ends inside a continued line"
    return out


def dockerfile_args() -> dict[str, str]:
    """``ARG NAME=default`` values of the Dockerfile."""
    args = {}
    for ins, rest in dockerfile_instructions():
        if ins == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            args[name.strip()] = value.strip().strip('"')
    return args


def dockerfile_base() -> tuple[str, str]:
    """``(image, tag)`` of the single ``FROM``."""
    froms = [rest for ins, rest in dockerfile_instructions() if ins == "FROM"]
    assert len(froms) == 1, f"expected one FROM (one build stage), got {froms}"
    ref = froms[0].split()[0]
    image, _, tag = ref.rpartition(":")
    assert image and "/" not in tag, f"FROM {ref}: no explicit tag"
    return image, tag


def expected_image_tag() -> str:
    """The sfray image tag: ``<sfray version>-ray<base tag>`` (e.g. 0.1.0-ray2.60.0-py311-cu128)."""
    return f"{sfray_version()}-ray{dockerfile_base()[1]}"


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kuberay_docs() -> dict[str, list[dict[str, Any]]]:
    return {p.name: yaml_docs(p) for p in sorted(KUBERAY_DIR.glob("*.yaml"))}


def of_kind(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, d) for name, docs in kuberay_docs().items() for d in docs if d.get("kind") == kind]


def container_images(obj: Any) -> Iterator[str]:
    """Every ``image`` of every container (and init container) anywhere in a Kubernetes object."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c["image"] for c in value if isinstance(c, dict) and "image" in c)
            else:
                yield from container_images(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from container_images(item)


def launcher_images(cfg: dict[str, Any]) -> list[str]:
    """Every image a cluster-launcher config can start (global, head, worker and per-type images)."""
    docker = cfg.get("docker") or {}
    images = [docker[k] for k in ("image", "head_image", "worker_image") if k in docker]
    for node in cfg["available_node_types"].values():
        images += [v for k, v in (node.get("docker") or {}).items() if k.endswith("image")]
    return images


def header_comment(path: Path) -> str:
    """The leading comment block of a file, without the ``#`` marks."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return "\n".join(lines)


@dataclass
class Entrypoint:
    job: str  # name of jobs/<job>.py
    config: str  # path under configs/
    overrides: list[str]

    @property
    def job_file(self) -> Path:
        return ROOT / "jobs" / f"{self.job}.py"

    def override(self, key: str) -> str | None:
        values = [o.split("=", 1)[1] for o in self.overrides if o.split("=", 1)[0] == key]
        return values[-1] if values else None


def parse_entrypoint(text: str) -> Entrypoint:
    """Check the documented form ``python jobs/X.py configs/....yaml [key=value ...]`` (unquoted,
    nothing a shell would interpret, no options after the job file) and split it."""
    bad = sorted(SHELL_META & set(text))
    if bad:
        raise ValueError(f"entrypoint needs shell quoting ({''.join(bad)}): {text!r}")
    tokens = shlex.split(text)
    if len(tokens) < 3 or tokens[0] != "python":
        raise ValueError(f"expected 'python jobs/X.py CONFIG [key=value ...]', got {text!r}")
    m = re.fullmatch(r"jobs/([a-z0-9_]+)\.py", tokens[1])
    if not m or m.group(1) not in JOB_NAMES:
        raise ValueError(f"{tokens[1]!r} is not one of jobs/{{{','.join(JOB_NAMES)}}}.py")
    if not re.fullmatch(r"configs/[a-z0-9_/]+\.yaml", tokens[2]):
        raise ValueError(f"{tokens[2]!r} is not a config under configs/")
    for tok in tokens[3:]:
        if not OVERRIDE_RE.match(tok):
            raise ValueError(f"{tok!r} is not a key=value override")
    return Entrypoint(job=m.group(1), config=tokens[2], overrides=tokens[3:])


def code_blocks(markdown: str) -> list[str]:
    """The fenced code blocks of a Markdown text, backslash-continued lines joined."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", markdown, flags=re.S | re.M)
    return [re.sub(r"\\\n\s*", " ", b) for b in blocks]


def markdown_sections(markdown: str) -> dict[str, str]:
    """``## heading`` -> the text under it (up to the next ``## ``)."""
    parts = re.split(r"^## +(.+)$", markdown, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def documented_submissions(markdown: str) -> list[str]:
    """The entrypoint (what follows `` -- ``) of every ``ray job submit`` command in the code blocks
    of a Markdown text. Commands whose entrypoint is elided with ``...`` are skipped."""
    out = []
    for block in code_blocks(markdown):
        for line in block.splitlines():
            if "ray job submit" in line and " -- " in line:
                entry = line.split(" -- ", 1)[1].strip()
                if "..." not in entry:
                    out.append(entry)
    return out
