"""Next3D texture-rasterization parity, end to end: sfray's generator vs a pytorch3d-faithful reference.

The reference is the same generator (same random weights, same inputs, same per-sample seeds)
with the texture rasterizer swapped for the per-pixel restatement of pytorch3d's kernel in
``tests/generators/next3d/pytorch3d_reference.py``; everything else is shared, so a difference can
only come from the rasterization. Runs: ``raster_compat=pytorch3d`` (the default kernel), the
reference, ``raster_compat=exact``, and with ``--speed`` also the fast paths in fp32 (``fast``) and
bf16 autocast with the reference ops (``bf16``) and with the fast paths (``bf16_fast``). Prints
one JSON line with max|a - b| / max|b|, the L2 ratio and max|a - b| of ``image``, ``image_raw``
and ``image_depth`` of each run against the reference.

    python bench/next3d_parity.py --config full            # released architecture, 512² (CPU: minutes)
    python bench/next3d_parity.py --config full --speed    # + fast paths and bf16 tolerances
    python bench/next3d_parity.py --config small           # CI-sized network, seconds

The mesh is the procedural head's topology (FLAME's is not shipped), expression/shape random.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "generators" / "next3d"))

from bench.next3d import build, specs_for  # noqa: E402


def relative(a: torch.Tensor, b: torch.Tensor) -> dict:
    a, b = a.double(), b.double()
    return {"max_rel": float((a - b).abs().max() / b.abs().max()), "l2_rel": float((a - b).norm() / b.norm()),
            "max_abs": float((a - b).abs().max())}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=("full", "small"), default="full")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--speed", action="store_true", help="also the fast paths and bf16 against the reference")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from pytorch3d_reference import reference_rasterize_ndc

    from sfray.generators.next3d import texture_raster
    from sfray.generators.next3d.layers import seeded_generators
    from sfray.generators.next3d.perf import FastPaths, apply_fast_paths

    device = torch.device("cpu")
    gen, head = build(args.config, device, "fp32", None)
    specs = specs_for(gen, head, args.batch, device)
    model = gen.model
    head_out = head(specs.shape, specs.expression, specs.pose)
    v = torch.cat([head_out.vertices.float(), head_out.landmarks.float()], 1)
    outs, secs = {}, {}
    default_kernel = texture_raster._default_rasterize_ndc
    runs = [("compat", "pytorch3d", None, FastPaths(), None), ("reference", "pytorch3d", reference_rasterize_ndc,
                                                                FastPaths(), None),
            ("exact", "exact", None, FastPaths(), None)]
    if args.speed:
        runs += [("fast", "pytorch3d", None, FastPaths(True, True), None),
                 ("bf16", "pytorch3d", None, FastPaths(), torch.bfloat16),
                 ("bf16_fast", "pytorch3d", None, FastPaths(True, True), torch.bfloat16)]
    for name, mode, kernel, paths, autocast in runs:
        texture_raster._default_rasterize_ndc = (lambda k=kernel: k) if kernel else default_kernel
        model.set_raster_compat(mode)
        apply_fast_paths(model, paths)
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", dtype=autocast or torch.float32, enabled=autocast is not None):
            outs[name] = model(specs.latent, specs.cond_camera, specs.camera, v, 0.7, 14, "const",
                               seeded_generators(specs.seed, device))
        secs[name] = round(time.perf_counter() - t0, 1)
    texture_raster._default_rasterize_ndc = default_kernel
    model.set_raster_compat("pytorch3d")
    apply_fast_paths(model, FastPaths())
    result = {"benchmark": "next3d_parity", "config": args.config, "batch": args.batch,
              "faces": int(model.faces.shape[1]), "seconds": secs}
    for name in [r[0] for r in runs if r[0] != "reference"]:
        result[name] = {k: relative(outs[name][k], outs["reference"][k]) for k in ("image", "image_raw", "image_depth")}
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
