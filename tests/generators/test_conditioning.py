"""``camera.conditioning`` reaches the generator: Next3D's mapping network gets the configured label."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sfray.config.loader import load_config
from sfray.config.schema import GenerateJobConfig
from sfray.generators.next3d.wrapper import RANDOM_SMALL, build_next3d_generator
from sfray.geometry.camera import frontal_camera_label
from sfray.sampling import make_specs
from tests.generators.next3d.helpers import FakeHead, make_synthetic_head


@pytest.mark.parametrize("mode", ["frontal", "render"])
def test_mapping_network_is_conditioned_on_the_configured_camera(mode):
    cfg = load_config(GenerateJobConfig, None, [
        f"camera.conditioning={mode}", "generator.kind=next3d", f"generator.next3d.checkpoint={RANDOM_SMALL}",
        "generate.resolution=32"])
    head = FakeHead(make_synthetic_head(n_rings=16, n_segments=24))
    gen = build_next3d_generator(cfg, head, "cpu")
    seen = []
    mapping = gen.model.mapping

    def spy(z, c, *args, **kwargs):
        seen.append(c.detach().clone())
        return mapping(z, c, *args, **kwargs)

    gen.model.mapping = spy
    specs = make_specs(np.arange(3), cfg.seed, cfg.sampling, cfg.camera, n_shape=head.n_shape,
                       n_expression=head.n_expression, latent_dim=gen.latent_dim)
    gen.generate(specs)
    assert len(seen) == 1
    if mode == "render":
        torch.testing.assert_close(seen[0], specs.camera)
        assert len({tuple(c.tolist()) for c in seen[0]}) == 3  # one camera per sample
    else:
        frontal = frontal_camera_label(cfg.camera.cond_fov, cfg.camera.radius, cfg.camera.pivot).float()
        torch.testing.assert_close(seen[0], frontal.expand(3, -1))
    assert dataclasses.asdict(cfg.camera)["conditioning"] == mode
