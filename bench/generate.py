"""Generation throughput: the full Ray pipeline vs. a plain loop, measured in the same run.

Both are the same library run (``sfray.generation.run.run_generation``: same samples, same
generator, same LMDB shards + manifest + preview) with a different executor: the in-process one
(a plain loop) or the Ray one; the difference is the Ray overhead (actor pool, object store,
datasink). Prints one JSON line.

    python bench/generate.py --samples 256 --res 256 --actors 2
    python bench/generate.py --samples 2048 --res 512 --actors 1 --gpus-per-actor 1   # on a GPU node
    python bench/generate.py --mode loop --no-write --samples 512 --res 512 --batch 32 --device cuda

``--mode loop`` runs only the in-process loop (no Ray); ``--no-write`` times the producer alone
(generate + annotate + quality figures + record encoding, no LMDB), which needs neither Ray nor
lmdb. ``--mode stages`` runs the Ray pipeline twice in one Ray session, with the generator actors
encoding (``ray.encode_workers=0``, the single-stage layout) and with the CPU encode stage (the
default), and reports for each the wall time and the generator actors' busy time (seconds inside
their calls, summed by the datasink): the two-stage busy time no longer contains the encoding.
``--append`` adds a row to docs/benchmarks.md.

    python bench/generate.py --mode stages --samples 64 --res 256 --shard 16 --actors 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cfg(out: Path, args: argparse.Namespace, *extra: str):
    from sfray.config import GenerateJobConfig, load_config

    return load_config(GenerateJobConfig, ROOT / "configs/generate/quickstart.yaml", [*extra,
        f"output_dir={out}", f"generate.num_samples={args.samples}", f"generate.resolution={args.res}",
        f"generate.batch_size={args.batch}", f"generate.samples_per_shard={args.shard}",
        f"ray.actors_min={args.actors}", f"ray.actors_max={args.actors}",
        f"ray.gpus_per_actor={args.gpus_per_actor}", f"generator.device={args.device}",
    ])


def plain_loop(out: Path, args: argparse.Namespace) -> float:
    """Baseline: one process (torch uses every core), the in-process executor's loop over units."""
    from sfray.generation.executor import InProcessExecutor
    from sfray.generation.run import run_generation

    cfg = _cfg(out, args)
    start = time.perf_counter()  # like the Ray job's timer: includes building the generator stack
    run_generation(cfg, InProcessExecutor(), progress=False)
    return time.perf_counter() - start


def producer_loop(args: argparse.Namespace) -> float:
    """The producer alone, unit by unit as the loop runs it (no LMDB); includes building it."""
    from sfray.generation.plan import plan_units
    from sfray.generation.producer import SampleProducer

    cfg = _cfg(Path(tempfile.gettempdir()) / "sfray-bench-producer", args)
    start = time.perf_counter()
    producer = SampleProducer(cfg)
    for unit in plan_units(cfg.generate.num_samples, cfg.generate.samples_per_shard):
        producer.produce(unit.sample_ids)
    return time.perf_counter() - start


def ray_pipeline(out: Path, args: argparse.Namespace) -> tuple[float, float]:
    """(seconds incl. starting Ray, seconds after Ray is up: actor start-up included, as in the loop)."""
    import ray

    from sfray.distributed.executor import RayExecutor
    from sfray.generation.run import run_generation

    cfg = _cfg(out, args)
    from sfray.distributed.runtime import use_loopback

    use_loopback()
    t0 = time.perf_counter()
    ray.init(num_cpus=max(os.cpu_count() or 2, args.actors), include_dashboard=False, log_to_driver=False)
    t1 = time.perf_counter()
    run_generation(cfg, RayExecutor(cfg.ray), progress=False)
    t2 = time.perf_counter()
    ray.shutdown()
    return t2 - t0, t2 - t1


def ray_stages(out: Path, args: argparse.Namespace) -> dict:
    """Single-stage vs two-stage in one Ray session: wall seconds and generator busy seconds each."""
    import ray

    from sfray.distributed.executor import RayExecutor
    from sfray.distributed.runtime import use_loopback
    from sfray.generation.run import run_generation

    use_loopback()
    ray.init(num_cpus=max(os.cpu_count() or 2, args.actors + 1), include_dashboard=False, log_to_driver=False)
    result = {}
    try:
        for name, extra in (("single_stage", ["ray.encode_workers=0"]), ("two_stage", [])):
            cfg = _cfg(out / name, args, "generate.preview_samples=0", *extra)
            executor = RayExecutor(cfg.ray)
            start = time.perf_counter()
            run_generation(cfg, executor, progress=False)
            wall = time.perf_counter() - start
            stats = executor.last_stats
            busy = stats.get("generator_busy_s", 0.0)
            result[name] = {"wall_s": round(wall, 2), "samples_per_s": round(args.samples / wall, 2),
                            "generator_busy_s": round(busy, 2),
                            "generator_busy_fraction": round(busy / (wall * args.actors), 3),
                            "encode_s": round(stats.get("encode_s", 0.0), 2),
                            "encode_workers": executor.last_budget.encode_workers}
    finally:
        ray.shutdown()
    return result


def reader_throughput(out: Path) -> float:
    """Records fully decoded per second on one core."""
    from sfray.data.torch_dataset import SfrayDataset

    ds = SfrayDataset(out)
    start = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    return len(ds) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--res", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--shard", type=int, default=64)
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--gpus-per-actor", type=float, default=0.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--mode", choices=("both", "loop", "stages"), default="both",
                   help="loop: no Ray; stages: single-stage vs two-stage Ray pipeline")
    p.add_argument("--no-write", action="store_true", help="loop mode: the producer alone (no LMDB)")
    p.add_argument("--append", type=Path, default=None, help="append a row to this markdown file")
    argv = sys.argv[1:]
    args = p.parse_args(argv)
    result = {"bench": "generate", "samples": args.samples, "resolution": args.res, "batch": args.batch,
              "actors": args.actors, "device": args.device, "cpus": os.cpu_count(),
              "machine": platform.processor() or platform.machine()}
    work = Path(tempfile.mkdtemp(prefix="sfray-bench-gen-"))
    try:
        if args.mode == "stages":
            result.update(ray_stages(work, args))
        elif args.mode == "loop" and args.no_write:
            result["producer_samples_per_s"] = round(args.samples / producer_loop(args), 2)
        else:
            loop_s = plain_loop(work / "loop", args)
            result["plain_loop_samples_per_s"] = round(args.samples / loop_s, 2)
            if args.mode == "both":
                ray_total, ray_s = ray_pipeline(work / "ray", args)
                result.update({
                    "ray_samples_per_s": round(args.samples / ray_s, 2),
                    "ray_samples_per_s_incl_ray_start": round(args.samples / ray_total, 2),
                    "ray_vs_loop": round((args.samples / ray_s) / (args.samples / loop_s), 3)})
            result["reader_records_per_s_one_core"] = round(reader_throughput(work / "loop"), 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    if args.append:
        append_row(args.append, argv, result)


def append_row(path: Path, argv: list[str], r: dict) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.common import append_rows, command, machine, today

    dev = machine(r["device"] if r["device"] != "auto" else "cpu")
    what = f"generate, {r['resolution']}², batch {r['batch']}, {r['samples']} samples"
    cmd = command("bench/generate.py", argv)
    if "two_stage" in r:
        one, two = r["single_stage"], r["two_stage"]
        line = (f"| {what}: Ray two-stage, {r['actors']} actor + {two['encode_workers']} encode task(s) | {dev} | "
                f"{today()} | `{cmd}` | wall {two['wall_s']} s ({two['samples_per_s']} samples/s); generator busy "
                f"{two['generator_busy_s']} s = {two['generator_busy_fraction']:.0%} of wall, no encoding in it "
                f"(encoding {two['encode_s']} s in the CPU stage) | single-stage (actor encodes), same run: wall "
                f"{one['wall_s']} s ({one['samples_per_s']} samples/s); generator busy {one['generator_busy_s']} s"
                f" = {one['generator_busy_fraction']:.0%} of wall, of which encoding {one['encode_s']} s |")
    elif "producer_samples_per_s" in r:
        line = (f"| {what}: producer loop (no LMDB) | {dev} | {today()} | `{cmd}` | "
                f"{r['producer_samples_per_s']} samples/s | - |")
    elif "ray_samples_per_s" in r:
        line = (f"| {what}: Ray pipeline, {r['actors']} actors | {dev} | {today()} | `{cmd}` | "
                f"{r['ray_samples_per_s']} samples/s ({r['ray_vs_loop']}x of the loop) | "
                f"plain loop {r['plain_loop_samples_per_s']} samples/s (same run) |")
    else:
        line = (f"| {what}: plain loop with LMDB | {dev} | {today()} | `{cmd}` | "
                f"{r['plain_loop_samples_per_s']} samples/s | - |")
    append_rows(path, "## Generation pipeline (bench/generate.py)", [line])


if __name__ == "__main__":
    main()
