"""Every shipped config loads against its schema; bad keys and values fail with the key named."""

from pathlib import Path

import pytest

from sfray.config import AlignJobConfig, GenerateJobConfig, load_config, save_config
from sfray.config.finetune import EvaluateJobConfig, FinetuneJobConfig
from sfray.config.pipeline import PipelineJobConfig
from sfray.config.sweep import SweepJobConfig
from sfray.config.train import TrainJobConfig
from sfray.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = {"generate": GenerateJobConfig, "align": AlignJobConfig, "train": TrainJobConfig,
           "finetune": FinetuneJobConfig, "evaluate": EvaluateJobConfig, "sweep": SweepJobConfig}


def _configs():
    found = sorted((ROOT / "configs").rglob("*.yaml"))
    assert found, "no configs shipped"
    return found


#: Presets that need licensed assets: the config must name what is missing, and load once given.
ASSET_OVERRIDES = {
    "paper.yaml": ["generator.next3d.checkpoint=/assets/next3d.pkl", "head.path=/assets/generic_model.pkl"],
    "release.yaml": ["generator.next3d.checkpoint=/assets/next3d.pkl", "head.path=/assets/generic_model.pkl"],
}


@pytest.mark.parametrize("path", _configs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_config_loads(path):
    rel = path.relative_to(ROOT / "configs")
    schema = PipelineJobConfig if len(rel.parts) == 1 else SCHEMAS[rel.parts[0]]  # configs/*.yaml: pipelines
    overrides = ASSET_OVERRIDES.get(path.name, []) if schema in (GenerateJobConfig, AlignJobConfig) else []
    if schema is FinetuneJobConfig and path.name == "paper.yaml":
        overrides = ["benchmark.root=/data/LaPa"]  # a real benchmark: the user says where it is
    if overrides:
        with pytest.raises(ConfigError, match=r"head\.path|generator\.next3d\.checkpoint|benchmark\.root"):
            load_config(schema, path)
    cfg = load_config(schema, path, overrides)
    assert isinstance(cfg, schema)


def test_unknown_key_names_closest():
    with pytest.raises(ConfigError, match=r"generate\.num_sample'.*did you mean 'generate\.num_samples'"):
        load_config(GenerateJobConfig, None, ["generate.num_sample=3"])


def test_unknown_key_in_yaml_names_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("generate:\n  resolutoin: 256\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*generate\.resolutoin.*generate\.resolution"):
        load_config(GenerateJobConfig, bad)


def test_wrong_type_rejected():
    with pytest.raises(ConfigError, match=r"generate\.num_samples"):
        load_config(GenerateJobConfig, None, ["generate.num_samples=many"])


def test_range_checked():
    with pytest.raises(ConfigError, match=r"camera\.fov_range"):
        load_config(GenerateJobConfig, None, ["camera.fov_range=[30,20]"])


def test_overrides_apply_and_round_trip(tmp_path):
    cfg = load_config(GenerateJobConfig, None, ["seed=7", "generate.resolution=128"])
    assert cfg.seed == 7 and cfg.generate.resolution == 128
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(GenerateJobConfig, tmp_path / "config.yaml")
    assert again == cfg


@pytest.mark.parametrize("override, key", [
    ("generator.procedural.checkpoint=/x.pkl", "generator.procedural.checkpoint"),  # a Next3D key
    ("generator.next3d.hair_cap_prob=0.2", "generator.next3d.hair_cap_prob"),  # a procedural key
    ("generator.procedural.noise_mode=random", "generator.procedural.noise_mode"),
])
def test_a_key_of_the_other_generator_kind_is_refused_by_name(override, key):
    with pytest.raises(ConfigError, match=rf"unknown config key '{key}'"):
        load_config(GenerateJobConfig, None, [override])


@pytest.mark.parametrize("old, new", [
    ("generator.checkpoint=/x.pkl", "generator.next3d.checkpoint"),
    ("generator.misalign=[0,0,0,0,0,0,1]", "faults.misalign"),
    ("ray.fail_actor_after_batches=1", "faults.fail_actor_after_batches"),
    ("generator.hair_cap_prob=0.1", "generator.procedural.hair_cap_prob"),
])
def test_old_key_names_say_where_the_key_went(old, new):
    with pytest.raises(ConfigError, match=rf"'{old.split('=')[0]}' was renamed to '{new}'"):
        load_config(GenerateJobConfig, None, [old])


OLD_LAYOUT = """\
seed: 3
generator:
  kind: procedural
  checkpoint: null
  device: auto
  precision: fp32
  hair_cap_prob: 0.25
  background: [solid]
  misalign: [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
  neural_rendering_resolution: 128
  noise_mode: const
ray:
  fail_actor_after_batches: 2
"""


def test_a_user_yaml_with_old_keys_is_refused_naming_file_and_new_key(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(OLD_LAYOUT)
    with pytest.raises(ConfigError, match=r"old\.yaml: config key 'generator\.checkpoint' was renamed"):
        load_config(GenerateJobConfig, old)


def test_a_saved_config_in_the_old_layout_migrates(tmp_path):
    old = tmp_path / "config.yaml"
    old.write_text(OLD_LAYOUT)
    cfg = load_config(GenerateJobConfig, old, legacy=True)
    assert cfg.seed == 3 and cfg.generator.procedural.hair_cap_prob == 0.25
    assert cfg.generator.procedural.background == ["solid"]
    assert cfg.faults.misalign[0] == 1.0 and cfg.faults.fail_actor_after_batches == 2
    assert cfg.generator.next3d.noise_mode == "const" and cfg.generator.next3d.checkpoint is None


@pytest.mark.parametrize("override, registry", [
    ("head.kind=smpl", "HEAD_KINDS"), ("generator.kind=stylegan", "GENERATOR_KINDS"),
    ("sampling.strategy=halton", "SAMPLING_STRATEGIES"),
    ("annotate.raster_backend=opengl", "RASTER_BACKENDS"),
    ("camera.preset=wide", "CAMERA_PRESETS"), ("generate.image_format=gif", "IMAGE_FORMATS"),
    ("camera.conditioning=side", "CONDITIONING_CAMERAS"),
    ("generator.procedural.background=[sky]", "BACKGROUNDS"), ("quality.policy=purge", "QUALITY_POLICIES"),
])
def test_bad_names_are_reported_with_the_registry_names(override, registry):
    import re

    from sfray.config import registries

    reg = getattr(registries, registry)
    with pytest.raises(ConfigError, match=rf"'{re.escape(reg.key)}'.*valid: {re.escape(reg.describe())}"):
        load_config(GenerateJobConfig, None, [override])


def test_every_name_with_a_builder_registry_has_its_builder():
    """The packages attach a builder to every declared name (no name without an implementation)."""
    import importlib

    from sfray.config import registries

    for module in ("sfray.head.factory", "sfray.generators.factory", "sfray.sampling.strategies",
                   "sfray.geometry.raster_backends", "sfray.generators.procedural.background",
                   "sfray.data.record", "sfray.geometry.camera_sampling"):
        importlib.import_module(module)
    for reg in (registries.HEAD_KINDS, registries.GENERATOR_KINDS, registries.SAMPLING_STRATEGIES,
                registries.RASTER_BACKENDS, registries.BACKGROUNDS, registries.IMAGE_FORMATS,
                registries.CAMERA_PRESETS):
        for name in reg:
            try:
                reg.get(name)
            except LookupError as exc:
                pytest.fail(f"{reg.key}: {exc}")
