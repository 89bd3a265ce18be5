"""Cluster configurations in ``cluster/``: each parses and has what the cluster needs (head, CPU and
autoscaling GPU workers, shared storage, token auth, trial-driver resource), every image agrees with
the Dockerfile and pyproject.toml, and every job entrypoint has the documented form and points at
files that exist. Nothing here needs a cloud account or a Kubernetes cluster."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from tests.cluster.cluster_files import (
    DOCS,
    KUBERAY_DIR,
    LAUNCHER_FILES,
    PLACEHOLDER_RE,
    RAYJOB_FILES,
    ROOT,
    SHARED_MOUNT,
    Entrypoint,
    container_images,
    dockerfile_instructions,
    documented_submissions,
    expected_image_tag,
    header_comment,
    kuberay_docs,
    launcher_images,
    markdown_sections,
    of_kind,
    parse_entrypoint,
    ray_pin,
    yaml_docs,
)

#: GPUs and vCPUs of the AWS instance types the launcher config may use (AWS instance specs).
AWS_INSTANCES = {"g5.xlarge": (4, 1), "g5.2xlarge": (8, 1), "g5.4xlarge": (16, 1), "g5.12xlarge": (48, 4),
                 "g6.2xlarge": (8, 1), "g6e.xlarge": (4, 1), "g6e.2xlarge": (8, 1),
                 "p4d.24xlarge": (96, 8), "p5.48xlarge": (192, 8)}


@pytest.fixture(params=LAUNCHER_FILES, ids=lambda p: p.name)
def launcher(request) -> tuple[Path, dict]:
    return request.param, yaml.safe_load(request.param.read_text())


def _gpu_count(cfg: dict, node: dict) -> int:
    if cfg["provider"]["type"] == "gcp":
        return sum(a["acceleratorCount"] for a in node["node_config"].get("guestAccelerators", []))
    return AWS_INSTANCES.get(node["node_config"]["InstanceType"], (0, 0))[1]


def _is_spot(cfg: dict, node: dict) -> bool:
    nc = node["node_config"]
    if cfg["provider"]["type"] == "aws":
        return (nc.get("InstanceMarketOptions") or {}).get("MarketType") == "spot"
    sched = nc.get("scheduling") or {}
    return bool(sched.get("preemptible")) or sched.get("provisioningModel") == "SPOT"


# --- cluster launcher -----------------------------------------------------------------------------

def test_launcher_config_passes_ray_up_validation(launcher):
    """The checks `ray up` runs before it touches the cloud: defaults merged, then the schema."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    _path, cfg = launcher
    validate_config(prepare_config(copy.deepcopy(cfg)))
    broken = copy.deepcopy(cfg)
    broken["available_node_types"][cfg["head_node_type"]]["resources"]["GPU"] = 0.5
    with pytest.raises(Exception, match="integer"):
        validate_config(prepare_config(broken))


def test_launcher_has_head_cpu_and_autoscaling_gpu_workers(launcher):
    _path, cfg = launcher
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    assert head["resources"].get("CPU") == 0, "the head must not run tasks (CPU: 0)"
    workers = {n: t for n, t in types.items() if n != cfg["head_node_type"]}
    gpu = {n: t for n, t in workers.items() if t["resources"].get("GPU", 0) > 0}
    cpu = {n: t for n, t in workers.items() if t["resources"].get("GPU", 0) == 0}
    assert len(gpu) == 1 and cpu, f"want one GPU worker type and a CPU worker type, got {sorted(workers)}"
    (name, node), = gpu.items()
    assert node.get("min_workers", 0) == 0 < node["max_workers"], f"{name} must autoscale from 0"
    assert node["resources"]["GPU"] == _gpu_count(cfg, node), (
        f"{name}: resources say {node['resources']['GPU']} GPU, the machine has {_gpu_count(cfg, node)}")
    if cfg["provider"]["type"] == "aws":
        assert node["resources"]["CPU"] == AWS_INSTANCES[node["node_config"]["InstanceType"]][0]
    else:
        assert node["node_config"]["scheduling"]["onHostMaintenance"] == "TERMINATE", "GCP GPUs need TERMINATE"
    for t in cpu.values():
        assert t["max_workers"] > 0 and _gpu_count(cfg, t) == 0
    assert cfg["max_workers"] >= sum(t.get("max_workers", 0) for t in workers.values()), (
        "the cluster-wide max_workers would cap the node types below their own maxima")


def test_train_driver_resource_only_on_nodes_that_are_never_preempted(launcher):
    _path, cfg = launcher
    for name, node in cfg["available_node_types"].items():
        has = node["resources"].get("TRAIN_DRIVER_RESOURCE", 0) > 0
        assert has != _is_spot(cfg, node), (
            f"{name}: TRAIN_DRIVER_RESOURCE must be on every non-spot node and on no spot node")
    assert cfg["available_node_types"][cfg["head_node_type"]]["resources"]["TRAIN_DRIVER_RESOURCE"] >= 1
    assert any(_is_spot(cfg, n) for n in cfg["available_node_types"].values()), "no spot worker type left"


def test_launcher_mounts_shared_storage_and_turns_token_auth_on(launcher):
    _path, cfg = launcher
    init = "\n".join(cfg["initialization_commands"])
    assert re.search(rf"mount\s+-t\s+nfs4?\b.*\s{re.escape(SHARED_MOUNT)}(\s|$)", init), "no NFS mount"
    opts = cfg["docker"]["run_options"]
    assert f"--volume={SHARED_MOUNT}:{SHARED_MOUNT}" in opts, "the container does not see the shared mount"
    assert "--env=RAY_AUTH_MODE=token" in opts
    assert cfg["file_mounts"].get("/home/ray/.ray/auth_token") == "~/.ray/auth_token", (
        "every node needs the cluster's token where Ray looks for it")
    assert not cfg.get("setup_commands"), "sfray comes from the image, not from setup commands"


# --- KubeRay --------------------------------------------------------------------------------------

def _pod_specs(cluster: dict) -> dict[str, dict]:
    spec = cluster["spec"]
    pods = {"head": spec["headGroupSpec"]["template"]["spec"]}
    pods.update({g["groupName"]: g["template"]["spec"] for g in spec["workerGroupSpecs"]})
    return pods


def test_raycluster_autoscales_with_v2_and_keeps_work_off_the_head():
    (name, cluster), = of_kind("RayCluster")
    assert cluster["apiVersion"] == "ray.io/v1"
    spec = cluster["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["version"] == "v2"
    assert spec["rayVersion"] == ray_pin()
    assert spec["authOptions"]["mode"] == "token"
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert float(head["resources"]["TRAIN_DRIVER_RESOURCE"]) >= 1


def test_raycluster_has_a_cpu_group_and_an_autoscaling_gpu_group():
    (_name, cluster), = of_kind("RayCluster")
    groups = cluster["spec"]["workerGroupSpecs"]
    gpu, cpu = [], []
    for g in groups:
        c = g["template"]["spec"]["containers"][0]
        limits = c["resources"]["limits"]
        assert g["minReplicas"] <= g.get("replicas", 0) <= g["maxReplicas"], g["groupName"]
        (gpu if int(limits.get("nvidia.com/gpu", 0)) > 0 else cpu).append(g)
    assert len(gpu) == 1 and len(cpu) >= 1, [g["groupName"] for g in groups]
    g = gpu[0]
    assert g["minReplicas"] == 0 < g["maxReplicas"], "the GPU group must scale from 0"
    c = g["template"]["spec"]["containers"][0]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"]
    tolerations = g["template"]["spec"].get("tolerations", [])
    assert any(t["key"] == "nvidia.com/gpu" and t["operator"] == "Exists" for t in tolerations), (
        "GPU nodes carry the nvidia.com/gpu taint; the GPU group must tolerate it")
    assert "TRAIN_DRIVER_RESOURCE" in cpu[0].get("resources", {})


def test_every_ray_pod_mounts_the_shared_claim_and_memory_backed_shm():
    (pvc_file, pvc), = of_kind("PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], "several nodes write: ReadWriteMany"
    (_name, cluster), = of_kind("RayCluster")
    for group, pod in _pod_specs(cluster).items():
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
        assert SHARED_MOUNT in mounts, f"{group}: {SHARED_MOUNT} not mounted"
        claim = volumes[mounts[SHARED_MOUNT]].get("persistentVolumeClaim", {}).get("claimName")
        assert claim == pvc["metadata"]["name"], \
            f"{group}: mounts {claim}, storage.yaml claims {pvc['metadata']['name']}"
        assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory", \
            f"{group}: object store in 64 MiB shm"


def test_rayjobs_run_the_expected_jobs_on_the_cluster():
    (_name, cluster), = of_kind("RayCluster")
    workdir = [rest for ins, rest in dockerfile_instructions() if ins == "WORKDIR"][-1]
    jobs = {}
    for name, job in of_kind("RayJob"):
        assert job["apiVersion"] == "ray.io/v1"
        spec = job["spec"]
        assert spec["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}, name
        assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"working_dir": workdir}, (
            f"{name}: the submitter must upload the image's code dir {workdir}")
        jobs[name] = parse_entrypoint(spec["entrypoint"]).job
    assert jobs == RAYJOB_FILES


# --- images -------------------------------------------------------------------------------------------

def _all_images() -> dict[str, list[str]]:
    found = {p.name: launcher_images(yaml.safe_load(p.read_text())) for p in LAUNCHER_FILES}
    for name, docs in kuberay_docs().items():
        found[f"kuberay/{name}"] = [img for d in docs for img in container_images(d)]
    return found


def test_every_cluster_file_runs_the_same_image_built_from_the_dockerfile():
    found = _all_images()
    images = {img for imgs in found.values() for img in imgs}
    assert len(images) == 1, f"cluster files disagree on the image: {found}"
    image = images.pop()
    repo, _, tag = image.rpartition(":")
    assert repo.endswith("/sfray") and tag == expected_image_tag(), (
        f"{image}: want <registry>/sfray:{expected_image_tag()} (sfray version + Dockerfile base tag)")
    assert f"-ray{ray_pin()}-" in tag
    assert "latest" not in image
    for p in LAUNCHER_FILES:
        assert found[p.name], f"{p.name} names no image"
    assert found["kuberay/raycluster.yaml"], "raycluster.yaml names no image"


def test_raycluster_defines_its_image_once():
    text = (KUBERAY_DIR / "raycluster.yaml").read_text()
    assert len(re.findall(r"image:\s*&\w+\s+\S+", text)) == 1
    assert len(re.findall(r"image:\s*[^&*\s]", text)) == 0, "an image written out again instead of *alias"


# --- entrypoints ------------------------------------------------------------------------------------

#: The section of docs/cluster.md about a head on your own machine (no shared storage there).
LOCAL_SECTION = "A local head (what the tests do)"


def _all_entrypoints() -> list[tuple[str, str, bool]]:
    """(where, entrypoint, runs on a multi-node cluster) for every RayJob and documented command."""
    found = [(name, job["spec"]["entrypoint"], True) for name, job in of_kind("RayJob")]
    sections = markdown_sections(DOCS.read_text())
    assert LOCAL_SECTION in sections, f"docs/cluster.md has no section '{LOCAL_SECTION}'"
    for title, text in sections.items():
        found += [(f"docs/cluster.md ({title})", e, title != LOCAL_SECTION) for e in documented_submissions(text)]
    readme = (ROOT / "cluster" / "README.md").read_text()
    found += [("cluster/README.md", e, True) for e in documented_submissions(readme)]
    return found


def _check_files(ep: Entrypoint, where: str) -> None:
    job_ok, cfg_ok = ep.job_file.exists(), (ROOT / ep.config).exists()
    if job_ok and cfg_ok:
        return
    pytest.fail(f"{where}: {ep.config} does not exist" + ("" if job_ok else f", nor does jobs/{ep.job}.py"))


@pytest.mark.parametrize("where, entry, on_cluster", [
    pytest.param(w, e, c, id=f"{w}:{e.split()[1]}") for w, e, c in _all_entrypoints()])
def test_entrypoint_has_the_documented_form_and_its_files_exist(where, entry, on_cluster):
    ep = parse_entrypoint(entry)
    out = ep.override("output_dir")
    if on_cluster:
        assert out is not None and out.startswith(SHARED_MOUNT + "/"), (
            f"{where}: output_dir={out} is not on the shared storage; other nodes write there")
    _check_files(ep, where)


def test_documentation_covers_every_job_the_manifests_run():
    documented = {parse_entrypoint(e).job for where, e, on_cluster in _all_entrypoints()
                  if where.startswith("docs/") and on_cluster}
    assert set(RAYJOB_FILES.values()) <= documented


def test_generate_entrypoints_load_against_the_generate_schema():
    """Every override key of a generate entrypoint exists in the schema (a typo fails here, not on a
    cluster an hour later), and the asset paths are on the shared storage."""
    from sfray.config import GenerateJobConfig, load_config

    seen = 0
    for where, entry, on_cluster in _all_entrypoints():
        ep = parse_entrypoint(entry)
        if ep.job != "generate" or not on_cluster:
            continue
        cfg = load_config(GenerateJobConfig, ROOT / ep.config, ep.overrides)
        assert cfg.output_dir.startswith(SHARED_MOUNT + "/"), where
        for path in (cfg.generator.next3d.checkpoint, cfg.head.path, cfg.head.landmark_embedding,
                     cfg.head.template_obj, cfg.head.masks):
            assert path is None or path.startswith(SHARED_MOUNT + "/assets/"), f"{where}: {path}"
        if cfg.ray.gpus_per_actor > 0:
            assert cfg.ray.actors_min == cfg.ray.actors_max, (
                f"{where}: a GPU pool on an autoscaling cluster must have a fixed size (docs/cluster.md)")
        seen += 1
    assert seen >= 2


@pytest.mark.parametrize("bad", [
    "'python jobs/generate.py configs/generate/quickstart.yaml'",  # quoted: /bin/sh: not found
    "python jobs/generate.py",  # no config
    "python jobs/generate.py --address x configs/generate/quickstart.yaml",  # options after --
    "python jobs/nope.py configs/generate/quickstart.yaml",  # not a job of the project
    "python generate.py configs/generate/quickstart.yaml",  # not under jobs/
    "python jobs/generate.py quickstart.yaml",  # not under configs/
    "python jobs/generate.py configs/generate/quickstart.yaml camera.fov_range=[12,27]",  # needs quotes
    "python jobs/generate.py configs/generate/quickstart.yaml seed",  # not key=value
    "python jobs/generate.py configs/generate/quickstart.yaml; rm -rf /",
])
def test_entrypoint_checker_rejects_undocumented_forms(bad):
    with pytest.raises(ValueError):
        parse_entrypoint(bad)


# --- documentation of each file ---------------------------------------------------------------------

def _command_for(path: Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    return f"ray up {rel}" if path in LAUNCHER_FILES else f"kubectl apply -f {rel}"


@pytest.mark.parametrize("path", [*LAUNCHER_FILES, *sorted(KUBERAY_DIR.glob("*.yaml"))],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_each_cluster_file_documents_its_command_line(path):
    command = _command_for(path)
    assert command in header_comment(path), f"{path.name}: header comment lacks '{command}'"
    assert command in DOCS.read_text(), f"docs/cluster.md lacks '{command}'"
    assert yaml_docs(path), f"{path.name} is empty"


def test_every_placeholder_is_explained_in_the_docs():
    docs = DOCS.read_text()
    files = [*LAUNCHER_FILES, *KUBERAY_DIR.glob("*.yaml")]
    placeholders = {m for p in files for m in PLACEHOLDER_RE.findall(p.read_text())}
    assert placeholders, "no placeholder found: did the pattern or the files change?"
    missing = sorted(p for p in placeholders if f"`{p}`" not in docs)
    assert not missing, f"docs/cluster.md does not say what to put in place of {missing}"
