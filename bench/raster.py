"""Rasterizer throughput: a ~10k-face mesh at 512², batch 8, perspective-correct, in images/s.

    python bench/raster.py --device cpu            # CPU (default: batch 8, 10k faces, 512²)
    python bench/raster.py --device cuda           # GPU, when available
    python bench/raster.py --device cpu --faces 20000 --res 256 --batch 4 --baselines none
    ... --append docs/benchmarks.md                # one table row per sfray backend

sfray's own backends (``--backends``, default ``span,bbox``) are timed on the same inputs and must
agree pixel for pixel (``backends_identical``); ``images_per_s`` is the device's default backend
(span on CPU, bbox on CUDA).

Prints one JSON line. The mesh is a UV sphere of radius 0.25 around the default pivot, radially
perturbed per image (8 different meshes, same topology) and seen through 8 cameras of the
``release`` preset, so it fills ~55% of the frame like a head. Baselines, measured in the same run
on the same inputs (``--baselines``):

* ``bbox``: every pixel centre of each face's bounding box is edge-tested (vectorised);
* ``tiles``: faces binned into 16x16 screen tiles, all 256 pixels of each face-tile pair tested;
* ``pytorch3d``: ``pytorch3d.renderer.mesh.rasterize_meshes`` when installed.

The bbox and tiles baselines stop at the per-pixel (depth, face) keys (no barycentric resolve), so
their rates are upper bounds for those designs; ``pixel_agreement`` is the fraction of pixels whose
winning face equals sfray's (edge pixels differ: the baselines have no tie rule).

sfray's rasterizer walks exact per-row spans instead (``sfray/geometry/rasterizer.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import append_rows, command, machine, today  # noqa: E402
from sfray.config.schema import CameraConfig  # noqa: E402
from sfray.geometry.camera import project_points  # noqa: E402
from sfray.geometry.camera_sampling import camera_labels_from_uniform  # noqa: E402
from sfray.geometry.rasterizer import default_backend, rasterize  # noqa: E402

SECTION = "## Rasterizer backends (bench/raster.py)"

_KEY_MAX = torch.iinfo(torch.int64).max


def uv_sphere(target_faces: int, radius: float = 0.25,
              centre: tuple[float, float, float] = (0.0, 0.0, 0.2)) -> tuple[torch.Tensor, torch.Tensor]:
    """A UV sphere with about ``target_faces`` triangles: vertices (V, 3), faces (F, 3)."""
    n_lat = max(3, round(0.5 + math.sqrt(0.25 + target_faces / 4)))  # F = 4 n_lat (n_lat - 1)
    n_lon = 2 * n_lat
    th = torch.linspace(0, math.pi, n_lat + 1, dtype=torch.float64)[1:-1]
    ph = torch.arange(n_lon, dtype=torch.float64) * (2 * math.pi / n_lon)
    t, p = torch.meshgrid(th, ph, indexing="ij")
    ring = torch.stack([t.sin() * p.cos(), t.cos(), t.sin() * p.sin()], -1).reshape(-1, 3)
    verts = torch.cat([torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64), ring,
                       torch.tensor([[0.0, -1.0, 0.0]], dtype=torch.float64)]) * radius
    verts = verts + torch.tensor(centre, dtype=torch.float64)
    i = torch.arange(n_lat - 2)[:, None]
    j = torch.arange(n_lon)[None, :]
    a, b = 1 + i * n_lon + j, 1 + i * n_lon + (j + 1) % n_lon
    c, d = a + n_lon, b + n_lon
    quads = torch.stack([torch.stack([a, b, c], -1), torch.stack([b, d, c], -1)], 2).reshape(-1, 3)
    top = torch.stack([torch.zeros(n_lon, dtype=torch.long), 1 + (j[0] + 1) % n_lon, 1 + j[0]], -1)
    last, base = verts.shape[0] - 1, 1 + (n_lat - 2) * n_lon
    bottom = torch.stack([torch.full((n_lon,), last), base + j[0], base + (j[0] + 1) % n_lon], -1)
    return verts.float(), torch.cat([top, quads, bottom])


def make_inputs(batch: int, faces: int, res: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen-space vertices (B, V, 3) of perturbed spheres under release-preset cameras, faces (F, 3)."""
    g = torch.Generator().manual_seed(seed)
    verts, tris = uv_sphere(faces)
    centre = torch.tensor([0.0, 0.0, 0.2])
    bumps = 1 + 0.05 * torch.sin(verts[None, :, :1] * (10 + 10 * torch.rand(batch, 1, 1, generator=g)))
    world = centre + (verts[None] - centre) * bumps
    labels = camera_labels_from_uniform(torch.rand(batch, 3, generator=g), CameraConfig(preset="release"))
    pix, depth = project_points(world, labels, res)
    return torch.cat([pix, depth[..., None]], -1), tris


# ---------------------------------------------------------------------------------------------
# Baselines: the same depth test and output, other ways of enumerating (face, pixel) candidates
# ---------------------------------------------------------------------------------------------
def _key(depth: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    bits = depth.contiguous().view(torch.int32)
    return (torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits).long() << 32) | face


def _test_samples(tri: torch.Tensor, g: torch.Tensor, px: torch.Tensor,
                  py: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inside test (>= 0, no tie rule) and perspective-correct depth of samples (face g, point)."""
    t = tri.index_select(0, g)  # (N, 9)
    x, y, z = t[:, 0::3], t[:, 1::3], t[:, 2::3]
    e = [(x[:, (i + 2) % 3] - x[:, (i + 1) % 3]) * (py - y[:, (i + 1) % 3])
         - (y[:, (i + 2) % 3] - y[:, (i + 1) % 3]) * (px - x[:, (i + 1) % 3]) for i in range(3)]
    area = e[0] + e[1] + e[2]
    inside = ((e[0] * area >= 0) & (e[1] * area >= 0) & (e[2] * area >= 0) & (area != 0)
              & (z > 0).all(1))
    inv_z = (e[0] / z[:, 0] + e[1] / z[:, 1] + e[2] / z[:, 2]) / area
    return inside, 1.0 / inv_z


def _expand(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts,
                                    output_size=total)
    return owner, torch.arange(total, device=counts.device) - (torch.cumsum(counts, 0) - counts)[owner]


def _bbox(tri: torch.Tensor, h: int, w: int):
    x, y = tri[:, 0::3], tri[:, 1::3]
    c0 = torch.ceil(x.amin(1).clamp(-1, w) - 0.5).clamp(0, w - 1).long()
    c1 = torch.floor(x.amax(1).clamp(-1, w) - 0.5).clamp(-1, w - 1).long()
    r0 = torch.ceil(y.amin(1).clamp(-1, h) - 0.5).clamp(0, h - 1).long()
    r1 = torch.floor(y.amax(1).clamp(-1, h) - 0.5).clamp(-1, h - 1).long()
    return c0, c1, r0, r1


def _chunked(counts: torch.Tensor, budget: int):
    cum = torch.cumsum(counts, 0).cpu()
    start = 0
    while start < counts.shape[0]:
        before = int(cum[start - 1]) if start else 0
        end = max(int(torch.searchsorted(cum, before + budget, right=True)), start + 1)
        yield start, end
        start = end


def baseline_bbox(screen: torch.Tensor, faces: torch.Tensor, h: int, w: int,
                  budget: int = 1 << 20) -> torch.Tensor:
    b, f = screen.shape[0], faces.shape[0]
    tri = screen[:, faces].reshape(b * f, 9)
    c0, c1, r0, r1 = _bbox(tri, h, w)
    bw, bh = (c1 - c0 + 1).clamp_min(0), (r1 - r0 + 1).clamp_min(0)
    keys = torch.full((b * h * w,), _KEY_MAX, dtype=torch.long, device=screen.device)
    ids = torch.arange(b * f, device=screen.device)
    for s, e in _chunked(bw * bh, budget):
        owner, k = _expand((bw * bh)[s:e])
        g = ids[s:e][owner]
        row, col = r0[g] + k // bw[g], c0[g] + k % bw[g]
        inside, depth = _test_samples(tri, g, col.float() + 0.5, row.float() + 0.5)
        key = torch.where(inside, _key(depth, g % f), _KEY_MAX)
        keys.scatter_reduce_(0, (g // f * h + row) * w + col, key, "amin")
    return keys


def baseline_tiles(screen: torch.Tensor, faces: torch.Tensor, h: int, w: int, tile: int = 16,
                   budget: int = 1 << 20) -> torch.Tensor:
    b, f = screen.shape[0], faces.shape[0]
    tri = screen[:, faces].reshape(b * f, 9)
    c0, c1, r0, r1 = _bbox(tri, h, w)
    tx0, ty0 = c0 // tile, r0 // tile
    ntx = ((c1 // tile) - tx0 + 1).clamp_min(0) * (c1 >= c0)
    nty = ((r1 // tile) - ty0 + 1).clamp_min(0) * (r1 >= r0)
    keys = torch.full((b * h * w,), _KEY_MAX, dtype=torch.long, device=screen.device)
    ids = torch.arange(b * f, device=screen.device)
    local = torch.arange(tile * tile, device=screen.device)
    for s, e in _chunked(ntx * nty * tile * tile, budget):
        owner, k = _expand((ntx * nty)[s:e])  # (face, tile) pairs
        g = ids[s:e][owner]
        ty, tx = ty0[g] + k // ntx[g], tx0[g] + k % ntx[g]
        row = (ty[:, None] * tile + local // tile).reshape(-1)
        col = (tx[:, None] * tile + local % tile).reshape(-1)
        gg = g.repeat_interleave(tile * tile)
        inside, depth = _test_samples(tri, gg, col.float() + 0.5, row.float() + 0.5)
        inside &= (row < h) & (col < w)
        key = torch.where(inside, _key(depth, gg % f), _KEY_MAX)
        pix = (gg // f * h + row.clamp(max=h - 1)) * w + col.clamp(max=w - 1)
        keys.scatter_reduce_(0, pix, key, "amin")
    return keys


def baseline_pytorch3d(screen: torch.Tensor, faces: torch.Tensor, h: int, w: int) -> torch.Tensor:
    from sfray.geometry.pytorch3d_backend import rasterize as rasterize_p3d

    return rasterize_p3d(screen, faces, (h, w)).face_index


# ---------------------------------------------------------------------------------------------
def _time(fn, device: torch.device, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return times


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--faces", type=int, default=10000)
    ap.add_argument("--res", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--baselines", default="bbox,tiles,pytorch3d", help="comma list or 'none'")
    ap.add_argument("--backends", default="span,bbox", help="sfray backends to time (comma list)")
    ap.add_argument("--append", type=Path, default=None, help="append one row per backend to this markdown file")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    screen, faces = make_inputs(args.batch, args.faces, args.res)
    screen, faces = screen.to(device), faces.to(device)
    h = w = args.res

    frags = rasterize(screen, faces, (h, w))
    backends = {}
    for name in [b for b in args.backends.split(",") if b]:
        out = rasterize(screen, faces, (h, w), backend=name)
        same = bool(torch.equal(out.face_index, frags.face_index) and torch.equal(out.bary, frags.bary)
                    and torch.equal(out.zbuf, frags.zbuf))
        times = _time(lambda n=name: rasterize(screen, faces, (h, w), backend=n), device, args.repeats, args.warmup)
        backends[name] = {"images_per_s": round(args.batch / statistics.median(times), 2),
                          "images_per_s_best": round(args.batch / min(times), 2), "identical_to_default": same}
    default = default_backend(device)
    ours = _time(lambda: rasterize(screen, faces, (h, w)), device, args.repeats, args.warmup)
    result = {
        "benchmark": "raster", "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model(),
        "nproc": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "batch": args.batch, "faces": int(faces.shape[0]), "res": args.res,
        "coverage": round(float(frags.coverage.float().mean()), 4),
        "images_per_s": round(args.batch / statistics.median(ours), 2),
        "images_per_s_best": round(args.batch / min(ours), 2),
        "ms_per_image": round(1000 * statistics.median(ours) / args.batch, 2),
        "default_backend": default, "backends": backends,
        "backends_identical": all(v["identical_to_default"] for v in backends.values()),
        "baselines": {},
    }
    names = [] if args.baselines == "none" else [n for n in args.baselines.split(",") if n]
    fns = {"bbox": baseline_bbox, "tiles": baseline_tiles, "pytorch3d": baseline_pytorch3d}
    for name in names:
        if name == "pytorch3d":
            try:
                import pytorch3d  # noqa: F401
            except ImportError:
                result["baselines"][name] = "not installed"
                continue
        fn = fns[name]
        out = fn(screen, faces, h, w)
        face = out if name == "pytorch3d" else torch.where(out == _KEY_MAX, -1, out & 0xFFFFFFFF)
        agree = float((face.reshape(frags.face_index.shape) == frags.face_index).float().mean())
        times = _time(lambda: fn(screen, faces, h, w), device, args.repeats, args.warmup)
        result["baselines"][name] = {"images_per_s": round(args.batch / statistics.median(times), 2),
                                     "pixel_agreement": round(agree, 5)}
    print(json.dumps(result))
    if args.append and backends:
        cmd = command("bench/raster.py", argv)
        ref = next(iter(backends))
        lines = [f"| raster {name}{' (default)' if name == default else ''}, {args.faces // 1000}k faces, "
                 f"{args.res}², batch {args.batch} | {machine(device)} | {today()} | `{cmd}` | "
                 f"{v['images_per_s']} img/s median (best {v['images_per_s_best']}); identical fragments: "
                 f"{v['identical_to_default']} | {ref}: {backends[ref]['images_per_s']} img/s (same run) |"
                 for name, v in backends.items()]
        append_rows(args.append, SECTION, lines)
    return result


if __name__ == "__main__":
    main()
