"""Next3D forward throughput: full-size network, batch 1/8/32, fp32 vs bf16, with peak memory.

Times ``Next3DGenerator.generate`` (head model + mapping + synthesis + volume rendering + SR +
uint8 conversion) on randomly initialised weights -- speed does not depend on the weight values --
with the full released architecture (``Next3DConfig.full()``) on the procedural head's topology
(FLAME's 9976 faces are not shipped; rasterization is a small share of the time). The baseline,
measured in the same run, is fp32 at batch 1. Prints one JSON object per row.

    python bench/next3d.py --device cuda --batches 1 8 32 --precisions fp32 bf16      # GPU rows
    python bench/next3d.py --device cpu --config small --batches 1 8                    # CPU, small net
    python bench/next3d.py --device cpu --config full --batches 1 --repeat 1            # CPU, full net
    ... --append docs/benchmarks.md   (adds the rows to the Next3D table)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(config: str, device: torch.device, precision: str, nrr: int | None):
    from sfray.config.schema import HeadConfig
    from sfray.generators.next3d.config import Next3DConfig
    from sfray.generators.next3d.generator import Next3DTriPlane
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
    return Next3DGenerator(model, head, identity=f"bench-{config}", device=device, precision=precision,
                           neural_rendering_resolution=nrr), head


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


def time_row(gen, head, batch: int, device: torch.device, repeat: int) -> dict:
    specs = specs_for(gen, head, batch, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    gen.generate(specs)  # warm-up (allocator, cuDNN autotune)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        gen.generate(specs)
        sync()
        times.append(time.perf_counter() - t0)
    best = min(times)
    row = {"batch": batch, "seconds": round(best, 4), "samples_per_s": round(batch / best, 3)}
    if device.type == "cuda":
        row["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return row


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} {os.cpu_count()} cpu, torch {torch.__version__}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--config", choices=("full", "small"), default="full")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--neural-rendering-resolution", type=int, default=None, help="default: the config's (64)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--append", type=Path, default=None, help="append the rows to this markdown file")
    args = ap.parse_args()
    device = torch.device(args.device)
    rows = []
    with torch.inference_mode():
        for prec in args.precisions:
            gen, head = build(args.config, device, prec, args.neural_rendering_resolution)
            for b in args.batches:
                row = {"config": args.config, "precision": prec, "device": machine(device), **time_row(gen, head, b, device, args.repeat)}
                print(json.dumps(row), flush=True)
                rows.append(row)
            del gen
    base = next((r for r in rows if r["precision"] == "fp32" and r["batch"] == 1), None)
    if args.append and rows:
        cmd = "python bench/next3d.py " + " ".join(sys.argv[1:]).replace(f"--append {args.append}", "").strip()
        today = datetime.date.today().isoformat()
        lines = []
        for r in rows:
            mem = f", peak {r['peak_mem_gib']} GiB" if "peak_mem_gib" in r else ""
            speedup = f" ({r['samples_per_s'] / base['samples_per_s']:.2f}x)" if base else ""
            ref = f"fp32 batch 1: {base['samples_per_s']} samples/s" if base else "-"
            lines.append(f"| {r['config']} {r['precision']} batch {r['batch']} | {r['device']} | {today} | `{cmd}` | "
                         f"{r['samples_per_s']} samples/s{speedup}{mem} | {ref} |")
        append_rows(args.append, lines)


SECTION = "## Next3D generator (bench/next3d.py)"
HEADER = ["| run | machine | date | command | result | baseline |", "|---|---|---|---|---|---|"]


def append_rows(path: Path, lines: list[str]) -> None:
    """Insert rows at the end of the Next3D table of ``path`` (creating the section if needed)."""
    text = path.read_text().splitlines() if path.exists() else ["# Benchmarks"]
    if SECTION not in text:
        text += ["", SECTION, "", *HEADER]
    i = text.index(SECTION) + 1
    while i < len(text) and not text[i].startswith("|"):
        i += 1
    while i < len(text) and text[i].startswith("|"):
        i += 1
    text[i:i] = lines
    path.write_text("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
