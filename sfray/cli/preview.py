"""``sfray preview CONFIG [key=value ...]``: render a few samples in-process and show them.

No Ray, no shards: the same head, generator and annotator a generation job would build, run on
``generate.preview_samples`` sample ids (0, 1, ...), drawn as one contact sheet with a row per
sample: image | landmarks (green visible, red occluded) | segmentation overlay | depth. The
quickest way to check a config (camera ranges, expressions, a new checkpoint) before a long job.
"""

from __future__ import annotations

import argparse
from pathlib import Path

PREVIEW_FILE = "preview.png"
CONFIG_FILE = "preview_config.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    from sfray.cli.common import add_config_args

    p = sub.add_parser(
        "preview",
        help="render a few annotated samples in-process and write a contact sheet",
        description="Render generate.preview_samples samples without Ray and write OUTPUT/preview.png "
        "(image | landmarks | segmentation | depth per sample) and the resolved config next to it.",
    )
    add_config_args(p)
    p.add_argument("--panel", type=int, default=256, help="panel size in pixels (default 256)")
    p.add_argument("--per-row", type=int, default=2, help="samples side by side per sheet row (default 2)")
    p.add_argument("--device", default=None, help="override generator.device (cpu, cuda, ...)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sfray.cli.common import load_from_args
    from sfray.config.schema import GenerateJobConfig
    from sfray.errors import ConfigError

    cfg = load_from_args(GenerateJobConfig, args)
    if cfg.generate.preview_samples < 1:
        raise ConfigError("config key 'generate.preview_samples' must be >= 1 for sfray preview")
    if args.panel < 16 or args.per_row < 1:
        raise ConfigError("--panel must be >= 16 and --per-row >= 1")
    path = write_preview(cfg, panel=args.panel, per_row=args.per_row, device=args.device)
    print(path)
    return 0


def write_preview(cfg, *, panel: int = 256, per_row: int = 2, device: str | None = None) -> Path:
    """Render, annotate and draw ``cfg.generate.preview_samples`` samples; returns the PNG path."""
    import numpy as np
    import torch
    from PIL import Image

    from sfray.annotate.annotator import Annotator
    from sfray.config.loader import save_config
    from sfray.generation.producer import resolve_device
    from sfray.generators.factory import build_generator
    from sfray.head import build_head
    from sfray.sampling import make_specs
    from sfray.viz import colorize_depth, contact_sheet, draw_landmarks, overlay_segmentation, to_hwc

    dev = torch.device(device) if device else resolve_device(cfg.generator.device)
    head = build_head(cfg.head).to(dev)
    generator = build_generator(cfg, head, dev)
    annotator = Annotator(head, cfg.generate.resolution, cfg.annotate, None)
    n, bs = cfg.generate.preview_samples, cfg.generate.batch_size
    panels: list[Image.Image] = []
    size = (panel, panel)
    with torch.no_grad():
        for start in range(0, n, bs):
            ids = np.arange(start, min(n, start + bs), dtype=np.int64)
            specs = make_specs(ids, cfg.seed, cfg.sampling, cfg.camera, n_shape=head.n_shape,
                               n_expression=head.n_expression, latent_dim=generator.latent_dim)
            out = generator.generate(specs.to(dev))
            ann = annotator.annotate(out)
            for i in range(len(ids)):
                image = Image.fromarray(to_hwc(out.image[i])).resize(size, Image.BILINEAR)
                img = np.asarray(image)
                scale = panel / cfg.generate.resolution
                seg = ann.segmentation[i].cpu().numpy()
                depth = ann.depth[i].cpu().numpy()
                mask = ann.mask[i].cpu().numpy()
                panels += [
                    image,
                    Image.fromarray(draw_landmarks(img, ann.landmarks_2d[i].cpu().numpy(),
                                                   ann.landmarks_visible[i].cpu().numpy(), scale=scale)),
                    Image.fromarray(overlay_segmentation(img, seg)),
                    Image.fromarray(colorize_depth(depth, mask)).resize(size, Image.NEAREST),
                ]
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(panels, ncols=4 * min(per_row, n), cell=size)
    path = out_dir / PREVIEW_FILE
    tmp = out_dir / (PREVIEW_FILE + ".tmp")
    sheet.save(tmp, format="PNG", optimize=True)
    tmp.replace(path)
    save_config(cfg, out_dir / CONFIG_FILE)
    return path
