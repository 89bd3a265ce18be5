"""The Dockerfile, checked statically (no Docker engine here): a pinned rayproject/ray base with an
explicit Python and CUDA tag matching pyproject.toml, torch from the index of that CUDA build,
sfray installed, non-root, small layers; and the tag-check script that guards a release build."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cluster.cluster_files import (
    BASE_TAG_RE,
    ROOT,
    dockerfile_args,
    dockerfile_base,
    dockerfile_instructions,
    ray_pin,
)


def test_base_is_a_pinned_ray_image_with_python_and_cuda_tags():
    image, tag = dockerfile_base()
    assert image == "rayproject/ray", "the base must be the official Ray image (ray-ml is discontinued)"
    m = BASE_TAG_RE.match(tag)
    assert m, f"base tag {tag!r} is not <ray version>-py3XY-cuXYZ (never 'latest' or the '-gpu' alias)"
    assert m.group("ray") == ray_pin(), f"base Ray {m.group('ray')} != pyproject.toml pin {ray_pin()}"


def test_no_floating_tags_anywhere_in_the_dockerfile():
    text = (ROOT / "Dockerfile").read_text()
    code = "\n".join(f"{ins} {rest}" for ins, rest in dockerfile_instructions())
    assert not re.search(r":latest\b|-gpu\b", code), "floating tag in the Dockerfile"
    assert "latest" not in code.lower()
    assert "FROM" in text


def test_torch_comes_pinned_from_the_index_of_the_base_cuda():
    cuda = BASE_TAG_RE.match(dockerfile_base()[1]).group("cuda")
    args = dockerfile_args()
    assert re.fullmatch(r"\d+\.\d+\.\d+", args.get("TORCH_VERSION", "")), "torch must be pinned X.Y.Z"
    assert args.get("TORCH_INDEX_URL") == f"https://download.pytorch.org/whl/cu{cuda}", (
        f"torch index {args.get('TORCH_INDEX_URL')} does not match the base image's CUDA cu{cuda}")
    installs = [rest for ins, rest in dockerfile_instructions() if ins == "RUN" and "torch==" in rest]
    assert len(installs) == 1, installs
    assert '"torch==${TORCH_VERSION}"' in installs[0] and '--index-url "${TORCH_INDEX_URL}"' in installs[0]


def test_torch_pin_is_the_release_the_tests_run():
    """setup.sh installs the torch the suite runs on; the image must use the same release."""
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    m = re.search(r"torch==(\d+\.\d+\.\d+)", setup)
    assert m, "scripts/setup.sh names no torch pin"
    assert dockerfile_args()["TORCH_VERSION"] == m.group(1)


def test_sfray_jobs_and_configs_are_installed_in_the_workdir():
    ins = dockerfile_instructions()
    workdirs = [rest for i, rest in ins if i == "WORKDIR"]
    assert workdirs and workdirs[-1] == "/home/ray/sfray"
    copies = [rest.split()[-2:] for i, rest in ins if i == "COPY"]
    copied = {src for src, _dst in copies}
    assert {"pyproject.toml", "sfray", "jobs", "configs"} <= copied, copied
    runs = [rest for i, rest in ins if i == "RUN"]
    install_at = [k for k, r in enumerate(ins) if r[0] == "RUN" and re.search(r"pip install\b[^&]*\s\.(\s|$)", r[1])]
    sfray_copy_at = [k for k, r in enumerate(ins) if r[0] == "COPY" and r[1].split()[-2] == "sfray"]
    assert install_at and sfray_copy_at and install_at[-1] > sfray_copy_at[0], \
        "sfray is not pip-installed after its COPY"
    assert all("--no-cache-dir" in r for r in runs if "pip install" in r), "pip caches bloat the layers"


def test_runs_as_the_base_images_non_root_user():
    ins = dockerfile_instructions()
    users = [rest for i, rest in ins if i == "USER"]
    assert not users or users[-1] not in ("root", "0"), "the image must not end as root"
    for i, rest in ins:
        if i in ("COPY", "ADD"):
            assert "--chown=ray" in rest, f"{i} {rest}: files must belong to the image's user 'ray'"
    assert not any("sudo" in rest for i, rest in ins if i == "RUN")


def test_dockerignore_keeps_the_context_small_but_keeps_what_is_copied():
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for heavy in (".git", "outputs", "tests"):
        assert heavy in ignored, f"{heavy} goes into the build context"
    copied = {rest.split()[-2] for i, rest in dockerfile_instructions() if i == "COPY"}
    assert not copied & set(ignored), f".dockerignore drops files the Dockerfile copies: {copied & set(ignored)}"


# --- scripts/check_image_tags.sh, run against stand-ins for docker and pip -------------------------

def _stub(path: Path, body: str) -> Path:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _run_check(tmp_path: Path, docker_ok: bool, torch_versions: str) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "calls.log"
    docker = _stub(tmp_path / "docker", f'echo "docker $*" >> {log}\nexit {0 if docker_ok else 1}\n')
    pip = _stub(tmp_path / "pip", f'echo "pip $* find_links=${{PIP_FIND_LINKS:-}}" >> {log}\n'
                                  f'echo "torch (x)"\necho "Available versions: {torch_versions}"\n')
    env = {**os.environ, "DOCKER": str(docker), "PIP": str(pip), "PIP_FIND_LINKS": "/somewhere"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "check_image_tags.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    return proc, log.read_text() if log.exists() else ""


@pytest.mark.parametrize("docker_ok, versions, expect_ok", [
    (True, "2.14.0+cu{c}, {t}+cu{c}, 2.12.0+cu{c}", True),
    (True, "{t}", True),
    (False, "{t}+cu{c}", False),  # base tag missing
    (True, "{t}+cpu, 2.14.0+cu{c}", False),  # torch only as a CPU build
    (True, "{t}1+cu{c}", False),  # a longer version that merely starts with the pin
])
def test_tag_check_script_asks_for_exactly_the_dockerfile_tags(tmp_path, docker_ok, versions, expect_ok):
    image, tag = dockerfile_base()
    torch, index = dockerfile_args()["TORCH_VERSION"], dockerfile_args()["TORCH_INDEX_URL"]
    cuda = BASE_TAG_RE.match(tag).group("cuda")
    proc, calls = _run_check(tmp_path, docker_ok, versions.format(t=torch, c=cuda))
    assert (proc.returncode == 0) == expect_ok, (proc.stdout, proc.stderr)
    assert f"docker manifest inspect {image}:{tag}" in calls
    assert f"pip index versions torch --index-url {index}" in calls
    assert "find_links=\n" in calls or calls.rstrip().endswith("find_links="), "local wheels leak into the check"
