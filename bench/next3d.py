"""Next3D forward throughput: full-size network, batch 1/8/32/64, fp32 vs bf16, reference vs fast paths.

Times ``Next3DGenerator.generate`` (head model + mapping + synthesis + texture rasterization +
volume rendering + SR + uint8 conversion) on randomly initialised weights -- speed does not depend
on the weight values -- with the full released architecture (``Next3DConfig.full()``) on the
procedural head's topology (FLAME's 9976 faces are not shipped). Variants per row:

* ``--paths ref`` (the released ops, as measured before the speed work) and/or ``fast`` (split
  modulated conv, fused epilogue, separable FIR, channels-last: the CUDA default);
* ``--compile`` (torch.compile) and ``--cuda-graphs`` (one capture per batch size), CUDA only.

The baseline, measured in the same run, is the first row (use ``--baseline`` to name another
``precision:batch:paths``). Peak memory is ``torch.cuda.max_memory_allocated``. Prints one JSON
object per row.

    python bench/next3d.py --device cuda --batches 1 8 32 64 --precisions fp32 bf16 --paths ref fast
    python bench/next3d.py --device cuda --batches 32 --precisions bf16 --paths fast --compile
    python bench/next3d.py --device cpu --config small --batches 1 8                    # CPU, small net
    ... --append docs/benchmarks.md   (adds the rows to the Next3D table)
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

from bench.common import append_rows, command, machine, today  # noqa: E402

SECTION = "## Next3D generator (bench/next3d.py)"


def build(config: str, device: torch.device, precision: str, nrr: int | None, *, paths: str = "auto",
          compile: bool = False, cuda_graphs: bool = False):
    from sfray.config.schema import HeadConfig
    from sfray.generators.next3d.config import Next3DConfig
    from sfray.generators.next3d.generator import Next3DTriPlane
    from sfray.generators.next3d.perf import FastPaths
    from sfray.generators.next3d.wrapper import Next3DGenerator, topology_from_head
    from sfray.head import build_head

    head = build_head(HeadConfig()).to(device)
    nv = head.assets.num_vertices if hasattr(head, "assets") else head.num_vertices
    topo = topology_from_head(head, 256 if config == "full" else 64)
    base = Next3DConfig.full() if config == "full" else Next3DConfig.small()
    cfg = Next3DConfig.from_dict({**base.to_dict(), "num_vertices": nv, "num_faces": len(topo.faces),
                                  "num_uv": len(topo.uv_coords), "num_dense_faces": 0,
                                  "uv_resolution": topo.uv_face_mask.shape[0] if topo.uv_face_mask is not None
                                  else base.uv_resolution})
    torch.manual_seed(0)
    model = Next3DTriPlane(cfg, topo)
    fast = {"auto": None, "ref": FastPaths(), "fast": FastPaths(True, True)}[paths]
    return Next3DGenerator(model, head, identity=f"bench-{config}", device=device, precision=precision,
                           neural_rendering_resolution=nrr, fast_paths=fast, compile=compile,
                           cuda_graphs=cuda_graphs), head


def specs_for(gen, head, batch: int, device: torch.device):
    from sfray.generators.base import SampleSpecs
    from sfray.geometry.camera import frontal_camera_label

    c = frontal_camera_label().unsqueeze(0).repeat(batch, 1)
    g = torch.Generator().manual_seed(batch)
    return SampleSpecs(
        sample_id=torch.arange(batch), seed=torch.arange(batch), latent=torch.randn(batch, gen.latent_dim, generator=g),
        shape=torch.randn(batch, head.n_shape, generator=g) * 0.5,
        expression=torch.randn(batch, head.n_expression, generator=g) * 0.5, pose=torch.zeros(batch, 15),
        camera=c, cond_camera=c.clone()).to(device)


def time_row(gen, head, batch: int, device: torch.device, repeat: int, warmup: int = 1) -> dict:
    specs = specs_for(gen, head, batch, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    for _ in range(warmup):  # allocator, cuDNN autotune, compilation, graph capture
        gen.generate(specs)
    sync()
    first = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        gen.generate(specs)
        sync()
        times.append(time.perf_counter() - t0)
    best = min(times)
    row = {"batch": batch, "seconds": round(best, 4), "samples_per_s": round(batch / best, 3),
           "warmup_s": round(first, 2)}
    if device.type == "cuda":
        row["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--config", choices=("full", "small"), default="full")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "tf32", "bf16", "fp16"])
    ap.add_argument("--paths", nargs="+", default=["auto"], choices=["auto", "ref", "fast"])
    ap.add_argument("--compile", action="store_true", help="torch.compile (CUDA only)")
    ap.add_argument("--cuda-graphs", action="store_true", help="CUDA graphs per batch size (CUDA only)")
    ap.add_argument("--neural-rendering-resolution", type=int, default=None, help="default: the config's (64)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", default=None, help="precision:batch:paths of the baseline row (default: first)")
    ap.add_argument("--append", type=Path, default=None, help="append the rows to this markdown file")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    rows = []
    with torch.inference_mode():
        for paths in args.paths:
            for prec in args.precisions:
                gen, head = build(args.config, device, prec, args.neural_rendering_resolution, paths=paths,
                                  compile=args.compile, cuda_graphs=args.cuda_graphs)
                used = "fast" if gen.fast_paths.fast_ops else "ref"
                extras = "+".join(k for k, on in (("compile", gen.compiled), ("graphs", gen.cuda_graphs)) if on)
                for b in args.batches:
                    row = {"benchmark": "next3d", "config": args.config, "precision": prec, "paths": used,
                           "extras": extras or "-", "device": machine(device),
                           **time_row(gen, head, b, device, args.repeat)}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
                del gen
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    base = rows[0] if rows else None
    if args.baseline:
        p, b, pa = args.baseline.split(":")
        base = next((r for r in rows if (r["precision"], str(r["batch"]), r["paths"]) == (p, b, pa)), base)
    if args.append and rows:
        cmd = command("bench/next3d.py", argv)
        ref = f"{base['precision']} batch {base['batch']} {base['paths']}: {base['samples_per_s']} samples/s"
        lines = []
        for r in rows:
            mem = f", peak {r['peak_mem_gib']} GiB" if "peak_mem_gib" in r else ""
            name = f"{r['config']} {r['precision']} batch {r['batch']} {r['paths']}" + (
                f" {r['extras']}" if r["extras"] != "-" else "")
            lines.append(f"| {name} | {r['device']} | {today()} | `{cmd}` | {r['samples_per_s']} samples/s "
                         f"({r['samples_per_s'] / base['samples_per_s']:.2f}x){mem} | {ref} (same run) |")
        append_rows(args.append, SECTION, lines)
    return rows


if __name__ == "__main__":
    main()
